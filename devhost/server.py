"""The HTTP side of devhost (aiohttp): HTTP triggers, the Durable management API, admin endpoints.

Routes:

* ``/api/<route>`` — HTTP-triggered functions (route templates, methods, auth levels).
* ``/runtime/webhooks/durabletask/…`` — the Durable extension's public management API (system key
  ``durabletask_extension`` or the master key as ``code``), and ``/durabletask/…`` — the same handlers
  as the binding's ``rpcBaseUrl`` (no key; answers loopback clients only).
* ``/runtime/webhooks/eventgrid?functionName=NAME`` — Event Grid webhook (array of events).
* ``/admin/host/status`` (anonymous), ``/admin/functions/<name>`` (manual run of a non-HTTP function),
  ``/admin/durabletask/binding`` (the client binding JSON), ``/admin/eventgrid/deadletters[/redrive]``.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devhost.durable import TERMINAL, DurableError, Engine, parse_json_or_raw, parse_time, render_history
from devhost.invoke import build_kwargs, call_async, log_execution, new_invocation_id
from devhost.routes import Keys, RouteTable

if TYPE_CHECKING:
    from devhost.host import Host

STATUSES = ["Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Suspended"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_binding(origin: str, rpc_origin: str, hub: str, code: str | None) -> str:
    """The durable client binding JSON string, shaped like the extension's (protocol §8.1)."""
    base = f"{origin}/runtime/webhooks/durabletask"
    tail = f"taskHub={hub}&connection=Storage" + (f"&code={code}" if code else "")
    return json.dumps(
        {
            "taskHubName": hub,
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                + (f"?code={code}" if code else ""),
                "createAndWaitOnNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                f"?timeout={{timeoutInSeconds}}&pollingInterval="
                f"{{intervalInSeconds}}" + (f"&code={code}" if code else ""),
            },
            "managementUrls": management_urls(base, "INSTANCEID", tail) | {"id": "INSTANCEID"},
            "baseUrl": base,
            "requiredQueryStringParameters": f"code={code}" if code else "",
            "rpcBaseUrl": f"{rpc_origin}/durabletask/",
        }
    )


def management_urls(base: str, iid: str, tail: str) -> dict[str, str]:
    """The managementUrls / check-status payload URLs of one instance."""
    inst = (
        f"{base}/instances/{urllib.parse.quote(iid, safe='')}"
        if iid != "INSTANCEID"
        else f"{base}/instances/INSTANCEID"
    )
    return {
        "statusQueryGetUri": f"{inst}?{tail}",
        "sendEventPostUri": f"{inst}/raiseEvent/{{eventName}}?{tail}",
        "terminatePostUri": f"{inst}/terminate?reason={{text}}&{tail}",
        "rewindPostUri": f"{inst}/rewind?reason={{text}}&{tail}",
        "purgeHistoryDeleteUri": f"{inst}?{tail}",
        "restartPostUri": f"{inst}/restart?{tail}",
        "suspendPostUri": f"{inst}/suspend?reason={{text}}&{tail}",
        "resumePostUri": f"{inst}/resume?reason={{text}}&{tail}",
    }


def _bool(q: Any, name: str, default: bool) -> bool:
    v = q.get(name)
    if v is None or v == "":
        return default
    return str(v).lower() == "true"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json", headers=headers)


def _err(status: int, message: str) -> web.Response:
    return _json({"Message": message, "ExceptionMessage": message}, status)


class Server:
    """aiohttp application wired to a ``Host``."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.engine: Engine = host.engine
        self.keys: Keys = host.keys
        self.routes = RouteTable()
        for info in host.registry.http:
            route = getattr(info.trigger, "route", None) or info.name
            self.routes.add(route, info)
        self.app = web.Application(client_max_size=100 * 1024 * 1024)  # the Functions host limit
        self.app.router.add_route("*", "/{path:.*}", self.dispatch)

    # ------------------------------------------------------------------ helpers

    def origin(self, request: web.Request | None = None) -> str:
        """Scheme://host:port of this server as clients see it."""
        if request is not None:
            return f"{request.scheme}://{request.host}"
        return self.host.public_origin

    def binding(self, request: web.Request | None = None) -> str:
        """Client binding JSON for a function invocation."""
        code = None if self.host.no_auth else self.keys.system["durabletask_extension"]
        return client_binding(self.origin(request), self.host.rpc_origin, self.host.config.hub_name, code)

    def _presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-functions-key") or request.query.get("code")

    def _authorized(self, request: web.Request, level: str, system: str | None = None) -> bool:
        if self.host.no_auth:
            return True
        return self.keys.allows(level, self._presented_key(request), system)

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route every request."""
        path = request.path
        prefix = "/" + self.host.config.route_prefix if self.host.config.route_prefix else ""
        try:
            if path == "/admin/host/status":
                state = "Running" if self.host.running else "Initialized"
                return _json({"state": state, "version": "devhost", "processUptime": int(time.monotonic())})
            if path.startswith("/durabletask/"):
                if request.remote not in ("127.0.0.1", "::1", "localhost"):
                    return _err(403, "rpc endpoint is loopback-only")
                return await self.durable(request, path[len("/durabletask/") :])
            if path.startswith("/runtime/webhooks/durabletask/"):
                if not self._authorized(request, "system", "durabletask_extension"):
                    return web.Response(status=401)
                return await self.durable(request, path[len("/runtime/webhooks/durabletask/") :])
            if path.rstrip("/") == "/runtime/webhooks/eventgrid":
                if not self._authorized(request, "system", "eventgrid_extension"):
                    return web.Response(status=401)
                return await self.eventgrid_webhook(request)
            if path.startswith("/admin/"):
                if not self._authorized(request, "admin"):
                    return web.Response(status=401)
                return await self.admin(request, path[len("/admin/") :])
            if prefix == "" or path == prefix or path.startswith(prefix + "/"):
                return await self.http_trigger(request, path[len(prefix) :])
        except DurableError as exc:
            return _err(exc.status, str(exc))
        return web.Response(status=404)

    # ------------------------------------------------------------------ HTTP triggers

    async def http_trigger(self, request: web.Request, sub: str) -> web.StreamResponse:
        """Invoke the HTTP-triggered function whose route and method match."""
        import azure.functions as func

        matches = self.routes.match(sub)
        method = request.method.upper()
        chosen = None
        for route, params in matches:
            info = route.target
            methods = getattr(info.trigger, "methods", None)
            allowed = None if not methods else {str(getattr(m, "value", m)).upper() for m in methods}
            if allowed is None or method in allowed:
                chosen = (info, params)
                break
        if chosen is None:
            return web.Response(status=405 if matches else 404)
        info, params = chosen
        level = getattr(info.trigger, "auth_level", None)
        level_s = str(getattr(level, "value", level or "function")).lower()
        if not self._authorized(request, level_s):
            return web.Response(status=401)
        body = await request.read()
        req = func.HttpRequest(
            method=method,
            url=str(request.url),
            headers=dict(request.headers),
            params={k: v for k, v in request.query.items()},
            route_params=params,
            body=body,
        )
        inv = new_invocation_id()
        kwargs = build_kwargs(
            info, req, inv, self.host.app_dir_s, self.binding(request) if info.client_binding_name else None
        )
        started = time.monotonic()
        try:
            ret = await call_async(info, kwargs, self.host.config.function_timeout_s)
        except Exception as exc:  # noqa: BLE001 - a user function failure is a 500
            log_execution(info.name, inv, started, exc, statusCode=500)
            return web.Response(status=500)
        resp = self._to_response(ret)
        log_execution(info.name, inv, started, None, statusCode=resp.status)
        return resp

    @staticmethod
    def _to_response(ret: Any) -> web.Response:
        import azure.functions as func

        if ret is None:
            return web.Response(status=204)
        if isinstance(ret, str):
            return web.Response(status=200, text=ret, content_type="text/plain")
        if isinstance(ret, func.HttpResponse):
            headers = {k: v for k, v in ret.headers.items()}
            if not any(k.lower() == "content-type" for k in headers):
                mt = ret.mimetype or "text/plain"
                headers["Content-Type"] = f"{mt}; charset={ret.charset}" if mt.startswith("text/") else mt
            return web.Response(status=ret.status_code, body=ret.get_body(), headers=headers)
        return _json(ret)

    # ------------------------------------------------------------------ Durable management API

    def _payload(self, request: web.Request, iid: str) -> dict[str, Any]:
        base = f"{self.origin(request)}/runtime/webhooks/durabletask"
        code = None if self.host.no_auth else self.keys.system["durabletask_extension"]
        tail = f"taskHub={self.host.config.hub_name}&connection=Storage" + (f"&code={code}" if code else "")
        urls = management_urls(base, iid, tail)
        urls.pop("rewindPostUri")
        return {"id": iid} | urls

    def status_json(
        self, row: dict[str, Any], show_input: bool, show_history: bool, show_output: bool
    ) -> dict[str, Any]:
        """StatusResponsePayload of one instance."""
        out: dict[str, Any] = {
            "name": row["name"],
            "instanceId": row["instance_id"],
            "runtimeStatus": row["status"],
            "input": parse_json_or_raw(row["input"]) if show_input else None,
            "customStatus": parse_json_or_raw(row["custom_status"]),
            "output": parse_json_or_raw(row["output"]),
            "createdTime": row["created_time"],
            "lastUpdatedTime": row["updated_time"],
        }
        if show_history:
            out["historyEvents"] = render_history(json.loads(row["state"]), show_output, show_input)
        return out

    async def durable(self, request: web.Request, sub: str) -> web.StreamResponse:
        """Handle ``orchestrators/…``, ``instances/…``, ``entities/…``."""
        raw = request.raw_path.split("?")[0]
        for pre in ("/runtime/webhooks/durabletask/", "/durabletask/"):
            if raw.startswith(pre):
                sub = raw[len(pre) :]
                break
        parts = [urllib.parse.unquote(p) for p in sub.split("/") if p]
        method = request.method.upper()
        q = request.query
        eng = self.engine
        if not parts:
            return web.Response(status=404)
        head = parts[0]
        if head == "orchestrators" and method == "POST" and len(parts) in (2, 3):
            body = (await request.read()).decode("utf-8")
            serialized = body if body.strip() else None
            if serialized is not None:
                try:
                    json.loads(serialized)
                except ValueError:
                    return _err(400, "The request body must be JSON.")
            iid = eng.start_new(parts[1], parts[2] if len(parts) == 3 else None, serialized)
            payload = self._payload(request, iid)
            if q.get("timeout"):
                deadline = time.monotonic() + float(q["timeout"])
                interval = float(q.get("pollingInterval") or 1)
                while time.monotonic() < deadline:
                    row = eng.get(iid)
                    if row is not None and row["status"] in TERMINAL:
                        if row["status"] == "Completed":
                            return _json(parse_json_or_raw(row["output"]), 200)
                        return _json(self.status_json(row, True, False, False), 200)
                    await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            return _json(payload, 202, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})
        if head == "instances":
            if len(parts) == 1:
                if method == "GET":
                    return self._list(request)
                if method == "DELETE":
                    if "createdTimeFrom" not in q:
                        return _err(400, "createdTimeFrom is required.")
                    n = eng.purge_by(
                        parse_time(q["createdTimeFrom"]),
                        parse_time(q["createdTimeTo"]) if q.get("createdTimeTo") else None,
                        self._statuses(q.get("runtimeStatus")),
                    )
                    if n == 0:
                        return web.Response(status=404)
                    return _json({"instancesDeleted": n})
            iid = parts[1]
            if len(parts) == 2:
                if method == "GET":
                    row = eng.get(iid)
                    if row is None:
                        return web.Response(status=404)
                    sbody = self.status_json(
                        row,
                        _bool(q, "showInput", True),
                        _bool(q, "showHistory", False),
                        _bool(q, "showHistoryOutput", False),
                    )
                    if row["status"] == "Failed" and _bool(q, "returnInternalServerErrorOnFailure", False):
                        return _json(sbody, 500)
                    if row["status"] in TERMINAL:
                        return _json(sbody, 200)
                    loc = self._payload(request, iid)["statusQueryGetUri"]
                    return _json(sbody, 202, {"Location": loc, "Retry-After": "5"})
                if method == "DELETE":
                    try:
                        n = eng.purge(iid)
                    except DurableError as exc:
                        if exc.status == 404:
                            return web.Response(status=404)
                        raise
                    return _json({"instancesDeleted": n})
            if method == "POST" and len(parts) >= 3:
                op = parts[2]
                reason = q.get("reason", "")
                if op == "raiseEvent" and len(parts) == 4:
                    ctype = request.headers.get("Content-Type", "")
                    body = (await request.read()).decode("utf-8")
                    if body.strip() and "json" not in ctype.lower():
                        return _err(400, "Only application/json request content is supported")
                    text = None
                    if body.strip():
                        try:
                            text = json.dumps(json.loads(body))
                        except ValueError:
                            return _err(400, "The request body must be JSON.")
                    eng.raise_event(iid, parts[3], text)
                    return web.Response(status=202)
                if op == "terminate":
                    eng.terminate(iid, reason)
                    return web.Response(status=202)
                if op == "suspend":
                    eng.suspend(iid, reason)
                    return web.Response(status=202)
                if op == "resume":
                    eng.resume(iid, reason)
                    return web.Response(status=202)
                if op == "rewind":
                    eng.rewind(iid, reason)
                    return web.Response(status=202)
                if op == "restart":
                    new_id = _bool(q, "restartWithNewInstanceId", True)
                    try:
                        target = eng.restart(iid, new_id)
                    except DurableError as exc:
                        return _err(exc.status, str(exc))
                    payload = self._payload(request, target)
                    return _json(payload, 202, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})
        if head == "entities":
            return _err(501, "Durable entities are not supported by devhost")
        return web.Response(status=404)

    @staticmethod
    def _statuses(text: str | None) -> list[str] | None:
        if not text:
            return None
        canon = {s.lower(): s for s in STATUSES}
        return [canon.get(s.strip().lower(), s.strip()) for s in text.split(",") if s.strip()]

    def _list(self, request: web.Request) -> web.Response:
        q = request.query
        rows = self.engine.query(
            parse_time(q["createdTimeFrom"]) if q.get("createdTimeFrom") else None,
            parse_time(q["createdTimeTo"]) if q.get("createdTimeTo") else None,
            self._statuses(q.get("runtimeStatus")),
            q.get("instanceIdPrefix"),
        )
        start = 0
        token = request.headers.get("x-ms-continuation-token")
        if token and token.isdigit():
            start = int(token)
        headers: dict[str, str] = {}
        if q.get("top"):
            top = max(1, int(q["top"]))
            if start + top < len(rows):
                headers["x-ms-continuation-token"] = str(start + top)
            rows = rows[start : start + top]
        else:
            rows = rows[start:]
        show_input = _bool(q, "showInput", False)
        return _json([self.status_json(r, show_input, False, False) for r in rows], 200, headers)

    # ------------------------------------------------------------------ Event Grid webhook

    async def eventgrid_webhook(self, request: web.Request) -> web.StreamResponse:
        """Deliver a posted array of events to ``functionName`` (like the real host's webhook)."""
        name = request.query.get("functionName", "")
        info = self.host.registry.eventgrid.get(name)
        if info is None:
            return _err(404, f"No Event Grid function named '{name}'")
        try:
            events = json.loads(await request.read())
        except ValueError:
            return _err(400, "body must be a JSON array of events")
        if isinstance(events, dict):
            events = [events]
        if request.headers.get("aeg-event-type") == "SubscriptionValidation" or (
            events and events[0].get("eventType") == "Microsoft.EventGrid.SubscriptionValidationEvent"
        ):
            return _json({"validationResponse": (events[0].get("data") or {}).get("validationCode")})
        errors = []
        for ev in events:
            err = await self.host.invoke_eventgrid(info, ev)
            if err is not None:
                errors.append({"id": ev.get("id"), "error": err})
        if errors:
            return _json({"errors": errors}, 500)
        return web.Response(status=202)

    # ------------------------------------------------------------------ admin

    async def admin(self, request: web.Request, sub: str) -> web.StreamResponse:
        """Admin endpoints (master key)."""
        parts = [p for p in sub.split("/") if p]
        method = request.method.upper()
        if parts == ["durabletask", "binding"] and method == "GET":
            return web.Response(text=self.binding(request), content_type="application/json")
        if len(parts) == 2 and parts[0] == "functions" and method == "POST":
            ok = await self.host.run_function_manually(parts[1], await request.read())
            return web.Response(status=202) if ok else web.Response(status=404)
        if parts[:2] == ["eventgrid", "deadletters"] and self.host.eventgrid is not None:
            if len(parts) == 2 and method == "GET":
                return _json(self.host.eventgrid.list_deadletters())
            if len(parts) == 3 and parts[2] == "redrive" and method == "POST":
                raw = await request.read()
                body = json.loads(raw) if raw.strip() else {}
                ids = body.get("ids") if isinstance(body, dict) else None
                return _json({"redriven": self.host.eventgrid.redrive(ids)})
        return web.Response(status=404)
