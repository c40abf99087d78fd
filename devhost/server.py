"""The HTTP side of devhost (aiohttp): HTTP triggers, the Durable management API, admin endpoints.

Routes:

* ``/api/<route>`` — HTTP-triggered functions (route templates, methods, auth levels).
* ``/runtime/webhooks/durabletask/…`` — the Durable extension's public management API (system key
  ``durabletask_extension`` or the master key as ``code``), and ``/durabletask/<token>/…`` — the same
  handlers as the binding's ``rpcBaseUrl`` (no key, a per-process token; loopback clients only; refuses
  cross-origin requests and non-JSON bodies). Instance queries page like the extension (``_list``).
* Every error the host itself answers is ``{"error": {"code", "message"}}``.
* ``/runtime/webhooks/eventgrid?functionName=NAME`` — Event Grid webhook (array of events).
* ``/admin/host/status`` (anonymous), ``/admin/functions/<name>`` (manual run of a non-HTTP function),
  ``/admin/durabletask/binding`` (the client binding JSON), ``/admin/eventgrid/deadletters[/redrive]``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import secrets
import time
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from devhost import entities_http
from devhost.engine import Engine
from devhost.invoke import build_kwargs, call_async, log_execution, new_invocation_id
from devhost.protocol import TERMINAL, DurableError, parse_json_or_raw, parse_time, render_history
from devhost.routes import Keys, RouteTable

if TYPE_CHECKING:
    from devhost.host import Host

STATUSES = ["Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Suspended"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_binding(origin: str, rpc_base: str, hub: str, code: str | None) -> str:
    """The durable client binding JSON string, shaped like the extension's (docs/durable-protocol.md §6).

    ``rpc_base`` is the keyless management base the SDK's client calls (``rpcBaseUrl`` without its ``/``).
    """
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
            "rpcBaseUrl": f"{rpc_base}/",
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


ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    501: "not_implemented",
}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A host-level error: ``{"error": {"code", "message"}}`` (never a stack trace)."""
    body = {"error": {"code": code or ERROR_CODES.get(status, "error"), "message": message}}
    return _json(body, status, headers)


def _err(status: int, message: str) -> web.Response:
    """A management API error: the JSON error body plus the extension's ``Message``/``ExceptionMessage``
    (the SDK raises ``ExceptionMessage`` for a 400 from ``start_new``)."""
    body = {
        "error": {"code": ERROR_CODES.get(status, "error"), "message": message},
        "Message": message,
        "ExceptionMessage": message,
    }
    return _json(body, status)


def _unauthorized() -> web.Response:
    return error_response(401, "A valid key is required (x-functions-key header or code query parameter).")


JSON_TYPES = ("application/json",)
BODYLESS_TYPES = ("", "application/json", "application/octet-stream")


def _is_json_type(content_type: str) -> bool:
    return content_type in JSON_TYPES or (content_type.startswith("application/") and content_type.endswith("+json"))


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render aiohttp's own HTTP errors (e.g. a body over the size limit) and unexpected failures as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except Exception:  # noqa: BLE001 - logged; the client gets no internals
        traceback.print_exc()
        return error_response(500, "The host failed to handle the request; see the host log.")


DEFAULT_PAGE_SIZE = 100  # the extension's OrchestrationStatusQueryCondition default when `top` is absent
MAX_PAGE_SIZE = 1000
QUERY_SEGMENT = 1000  # instances one query request scans (the table service returns at most 1000 per request)


def _encode_token(key: tuple[float, str]) -> str:
    """An opaque continuation token for the scan position ``key``."""
    return base64.urlsafe_b64encode(json.dumps([key[0], key[1]]).encode()).decode()


def _decode_token(token: str | None) -> tuple[float, str] | None:
    if not token:
        return None
    try:
        ts, iid = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(ts), str(iid)
    except (ValueError, TypeError, binascii.Error):
        raise DurableError(400, "The x-ms-continuation-token header is not a token this host issued.") from None


ManagementHandler = Callable[["Server", web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


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
        self.app = web.Application(
            client_max_size=100 * 1024 * 1024,  # the Functions host limit
            middlewares=[json_errors],
        )
        # The keyless rpcBaseUrl path carries a per-process secret: only holders of the client binding
        # (functions of this host) can reach it, even from another local user's process.
        self.rpc_token = secrets.token_urlsafe(24)
        port = host.port
        self.own_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self.own_origins = {f"http://{h}" for h in self.own_hosts} | {host.public_origin.lower()}
        self.app.router.add_route("*", "/{path:.*}", self.dispatch)
        self.management = web.UrlDispatcher()
        for name, (method, pattern, _) in MANAGEMENT_ROUTES.items():
            self.management.add_route(method, pattern, _match_only, name=name)

    # ------------------------------------------------------------------ helpers

    def origin(self, request: web.Request | None = None) -> str:
        """Scheme://host:port of this server as clients see it."""
        if request is not None:
            return f"{request.scheme}://{request.host}"
        return self.host.public_origin

    def binding(self, request: web.Request | None = None) -> str:
        """Client binding JSON for a function invocation."""
        code = None if self.host.no_auth else self.keys.system["durabletask_extension"]
        rpc_base = f"{self.host.rpc_origin}/durabletask/{self.rpc_token}"
        return client_binding(self.origin(request), rpc_base, self.host.config.hub_name, code)

    def _presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-functions-key") or request.query.get("code")

    def _authorized(self, request: web.Request, level: str, system: str | None = None) -> bool:
        if self.host.no_auth:
            return True
        return self.keys.allows(level, self._presented_key(request), system)

    # ------------------------------------------------------------------ dispatch

    def _refuse_forged(self, request: web.Request, loopback: bool) -> web.Response | None:
        """Refuse what a web page in the operator's browser could send: cross-origin or cross-site requests,
        and bodies that are not JSON (``text/plain``, forms: the content types a page may POST cross-origin
        without a CORS preflight). ``loopback`` adds the Host check that defeats DNS rebinding.
        """
        if loopback and request.host.lower() not in self.own_hosts:
            return error_response(403, "This endpoint answers requests to the loopback address only.", "forbidden_host")
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/").lower() not in self.own_origins:
            return error_response(403, "Cross-origin requests are refused.", "cross_origin")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site.lower() not in ("same-origin", "none"):
            return error_response(403, "Cross-site requests are refused.", "cross_origin")
        if request.method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            raw_type = request.headers.get("Content-Type")
            ctype = (raw_type or "").split(";", 1)[0].strip().lower()
            has_body = bool(request.content_length) or (request.content_length is None and request.body_exists)
            allowed = _is_json_type(ctype) if has_body else (ctype in BODYLESS_TYPES or _is_json_type(ctype))
            if not allowed:
                return error_response(
                    415, f"Content-Type must be application/json, not {raw_type!r}.", "unsupported_media_type"
                )
        return None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route every request."""
        path = request.path
        prefix = "/" + self.host.config.route_prefix if self.host.config.route_prefix else ""
        open_admin = self.host.no_auth  # keyless management paths get the browser-forgery checks
        try:
            if path == "/admin/host/status":
                state = "Running" if self.host.running else "Initialized"
                return _json({"state": state, "version": "devhost", "processUptime": int(time.monotonic())})
            if path.startswith("/durabletask/"):
                if request.remote not in ("127.0.0.1", "::1", "localhost"):
                    return error_response(403, "The rpc endpoint is loopback-only.")
                refused = self._refuse_forged(request, loopback=True)
                if refused is not None:
                    return refused
                token, _, rest = path[len("/durabletask/") :].partition("/")
                if not secrets.compare_digest(token, self.rpc_token):
                    return error_response(404, f"No route matches {request.method} {path}.")
                return await self.durable(request, rest)
            if path.startswith("/runtime/webhooks/durabletask/"):
                if not self._authorized(request, "system", "durabletask_extension"):
                    return _unauthorized()
                refused = self._refuse_forged(request, loopback=False) if open_admin else None
                if refused is not None:
                    return refused
                return await self.durable(request, path[len("/runtime/webhooks/durabletask/") :])
            if path.rstrip("/") == "/runtime/webhooks/eventgrid":
                if not self._authorized(request, "system", "eventgrid_extension"):
                    return _unauthorized()
                refused = self._refuse_forged(request, loopback=False) if open_admin else None
                if refused is not None:
                    return refused
                return await self.eventgrid_webhook(request)
            if path.startswith("/admin/"):
                if not self._authorized(request, "admin"):
                    return _unauthorized()
                refused = self._refuse_forged(request, loopback=False) if open_admin else None
                if refused is not None:
                    return refused
                return await self.admin(request, path[len("/admin/") :])
            if prefix == "" or path == prefix or path.startswith(prefix + "/"):
                return await self.http_trigger(request, path[len(prefix) :])
        except DurableError as exc:
            return _err(exc.status, str(exc))
        return error_response(404, f"No route matches {request.method} {path}.")

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
            if not matches:
                return error_response(404, f"No function matches {method} {request.path}.")
            allow = sorted(
                {
                    str(getattr(m, "value", m)).upper()
                    for route, _ in matches
                    for m in (getattr(route.target.trigger, "methods", None) or [])
                }
            )
            return error_response(
                405, f"{method} is not allowed here; allowed: {', '.join(allow)}.", headers={"Allow": ", ".join(allow)}
            )
        info, params = chosen
        level = getattr(info.trigger, "auth_level", None)
        level_s = str(getattr(level, "value", level or "function")).lower()
        if not self._authorized(request, level_s):
            return _unauthorized()
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
            return error_response(500, f"The function failed (invocation {inv}); see the host log.", "function_failed")
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
        if row["version"]:
            out["version"] = row["version"]
        if show_history:
            out["historyEvents"] = render_history(self.engine.history(row["instance_id"]), show_output, show_input)
        return out

    async def durable(self, request: web.Request, sub: str) -> web.StreamResponse:
        """Route ``orchestrators/…``, ``instances/…``, ``entities/…`` through the management routes table."""
        raw = request.raw_path.split("?")[0]
        for pre in ("/runtime/webhooks/durabletask/", f"/durabletask/{self.rpc_token}/"):
            if raw.startswith(pre):
                sub = raw[len(pre) :]
                break
        # Segments stay percent-encoded (an encoded "/" stays inside its segment); empty ones are dropped, as the
        # SDK asks for ``instances/`` when it lists instances.
        path = "/" + "/".join(p for p in sub.split("/") if p)
        method = request.method.upper()
        if path == "/":
            return error_response(404, f"No route matches {method} {request.path}.")
        match = await self.management.resolve(request.clone(rel_url=URL(path, encoded=True)))
        failure = match.http_exception
        if isinstance(failure, web.HTTPMethodNotAllowed):
            allowed = sorted(failure.allowed_methods)
            message = f"{method} is not allowed here; allowed: {', '.join(allowed)}."
            return error_response(405, message, headers={"Allow": ", ".join(allowed)})
        if failure is not None or match.route.name is None:
            return _err(404, f"No management operation matches {method} {request.path}.")
        return await MANAGEMENT_ROUTES[match.route.name][2](self, request, dict(match))

    async def _start(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        q = request.query
        body = (await request.read()).decode("utf-8")
        serialized = body if body.strip() else None
        if serialized is not None:
            try:
                json.loads(serialized)
            except ValueError:
                return _err(400, "The request body must be JSON.")
        iid = self.engine.start_new(params["name"], params.get("instance_id"), serialized, q.get("version"))
        payload = self._payload(request, iid)
        if q.get("timeout"):
            deadline = time.monotonic() + float(q["timeout"])
            interval = float(q.get("pollingInterval") or 1)
            while time.monotonic() < deadline:
                row = self.engine.get(iid)
                if row is not None and row["status"] in TERMINAL:
                    if row["status"] == "Completed":
                        return _json(parse_json_or_raw(row["output"]), 200)
                    return _json(self.status_json(row, True, False, False), 200)
                await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        return _json(payload, 202, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def _list_instances(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        return self._list(request)

    async def _purge_instances(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        q = request.query
        if "createdTimeFrom" not in q:
            return _err(400, "createdTimeFrom is required.")
        n = self.engine.purge_by(
            self._time(q, "createdTimeFrom") or 0.0,
            self._time(q, "createdTimeTo"),
            self._statuses(q.get("runtimeStatus")),
        )
        if n == 0:
            return _err(404, "No instances matched the purge filters.")
        return _json({"instancesDeleted": n})

    async def _status(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        q = request.query
        iid = params["instance_id"]
        row = self.engine.get(iid)
        if row is None:
            return _err(404, f"No instance with ID '{iid}' found.")
        body = self.status_json(
            row, _bool(q, "showInput", True), _bool(q, "showHistory", False), _bool(q, "showHistoryOutput", False)
        )
        if row["status"] == "Failed" and _bool(q, "returnInternalServerErrorOnFailure", False):
            return _json(body, 500)
        if row["status"] in TERMINAL:
            return _json(body, 200)
        loc = self._payload(request, iid)["statusQueryGetUri"]
        return _json(body, 202, {"Location": loc, "Retry-After": "5"})

    async def _purge(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        return _json({"instancesDeleted": self.engine.purge(params["instance_id"])})

    async def _raise_event(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
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
        self.engine.raise_event(params["instance_id"], params["event"], text)
        return web.Response(status=202)

    async def _operation(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """terminate, suspend, resume, rewind (with ``reason``)."""
        operation = getattr(self.engine, params["op"])
        operation(params["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def _restart(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        new_id = _bool(request.query, "restartWithNewInstanceId", True)
        target = self.engine.restart(params["instance_id"], new_id)
        payload = self._payload(request, target)
        return _json(payload, 202, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def _entities(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        parts = ["entities", params["entity_name"]] + ([params["entity_key"]] if "entity_key" in params else [])
        return await entities_http.handle(self.engine.entities, request, parts)

    @staticmethod
    def _statuses(text: str | None) -> list[str] | None:
        if not text:
            return None
        canon = {s.lower(): s for s in STATUSES}
        out = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if part.lower() not in canon:
                raise DurableError(400, f"runtimeStatus '{part}' is not one of {', '.join(STATUSES)}.")
            out.append(canon[part.lower()])
        return out

    @staticmethod
    def _time(q: Any, name: str) -> float | None:
        text = q.get(name)
        if not text:
            return None
        try:
            return parse_time(text)
        except ValueError:
            raise DurableError(400, f"{name} '{text}' is not an ISO 8601 time.") from None

    def _list(self, request: web.Request) -> web.Response:
        """``GET instances``: one page (``top``, default 100) plus ``x-ms-continuation-token`` while the scan
        has more to read; a client follows tokens until none comes back (a page may be empty)."""
        q = request.query
        top = DEFAULT_PAGE_SIZE
        if q.get("top"):
            try:
                top = int(q["top"])
            except ValueError:
                top = 0
            if not 1 <= top <= MAX_PAGE_SIZE:
                raise DurableError(400, f"top must be an integer from 1 to {MAX_PAGE_SIZE}.")
        after = _decode_token(request.headers.get("x-ms-continuation-token"))
        segment = max(1, int(os.environ.get("DEVHOST_DURABLE_QUERY_SEGMENT", str(QUERY_SEGMENT))))
        rows, nxt = self.engine.query_page(
            self._time(q, "createdTimeFrom"),
            self._time(q, "createdTimeTo"),
            self._statuses(q.get("runtimeStatus")),
            q.get("instanceIdPrefix"),
            top,
            after,
            segment,
        )
        headers = {} if nxt is None else {"x-ms-continuation-token": _encode_token(nxt)}
        show_input = _bool(q, "showInput", False)
        return _json([self.status_json(r, show_input, False, False) for r in rows], 200, headers)

    # ------------------------------------------------------------------ Event Grid webhook

    async def eventgrid_webhook(self, request: web.Request) -> web.StreamResponse:
        """Deliver a posted array of events to ``functionName`` (like the real host's webhook)."""
        if request.method == "OPTIONS":
            # CloudEvents abuse protection (the handshake Event Grid sends a CloudEvents subscription's endpoint)
            origin = request.headers.get("WebHook-Request-Origin")
            if not origin:
                return error_response(400, "An OPTIONS request needs a WebHook-Request-Origin header.")
            return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        if request.method != "POST":
            return error_response(405, "Use POST to deliver events.", headers={"Allow": "OPTIONS, POST"})
        name = request.query.get("functionName", "")
        info = self.host.registry.eventgrid.get(name)
        if info is None:
            return error_response(404, f"No Event Grid function named '{name}'.")
        try:
            events = json.loads(await request.read())
        except ValueError:
            return error_response(400, "The body must be a JSON array of events.")
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return error_response(400, "The body must be a JSON array of event objects.")
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
            try:
                ok = await self.host.run_function_manually(parts[1], await request.read())
            except (ValueError, AttributeError, TypeError):
                return error_response(400, 'The body must be JSON: {"input": "<text>"}.')
            if not ok:
                return error_response(404, f"No timer or Event Grid function named '{parts[1]}'.")
            return web.Response(status=202)
        if parts[:2] == ["eventgrid", "deadletters"] and self.host.eventgrid is not None:
            if len(parts) == 2 and method == "GET":
                return _json(self.host.eventgrid.list_deadletters())
            if len(parts) == 3 and parts[2] == "redrive" and method == "POST":
                raw = await request.read()
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    return error_response(400, 'The body must be JSON: {"ids": [...]} or empty.')
                ids = body.get("ids") if isinstance(body, dict) else None
                if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
                    return error_response(400, '"ids" must be a list of dead-letter ids.')
                return _json({"redriven": self.host.eventgrid.redrive(ids)})
        return error_response(404, f"No admin operation matches {method} {request.path}.")


async def _match_only(request: web.Request) -> web.StreamResponse:
    """The handler aiohttp requires for each route of ``Server.management``; never called. That dispatcher is
    used only to resolve a management path to a route name (under either prefix, with the key already
    checked), and ``Server`` then calls ``MANAGEMENT_ROUTES[name]`` with the matched parameters."""
    raise web.HTTPNotFound


# The extension's management API (docs/durable-protocol.md §6): name -> (method, path under the prefix, handler).
MANAGEMENT_ROUTES: dict[str, tuple[str, str, ManagementHandler]] = {
    "start": ("POST", "/orchestrators/{name}", Server._start),
    "start_with_id": ("POST", "/orchestrators/{name}/{instance_id}", Server._start),
    "list": ("GET", "/instances", Server._list_instances),
    "purge_many": ("DELETE", "/instances", Server._purge_instances),
    "status": ("GET", "/instances/{instance_id}", Server._status),
    "purge": ("DELETE", "/instances/{instance_id}", Server._purge),
    "raise_event": ("POST", "/instances/{instance_id}/raiseEvent/{event}", Server._raise_event),
    "operation": ("POST", "/instances/{instance_id}/{op:terminate|suspend|resume|rewind}", Server._operation),
    "restart": ("POST", "/instances/{instance_id}/restart", Server._restart),
    "entity_list": ("GET", "/entities/{entity_name}", Server._entities),
    "entity_state": ("GET", "/entities/{entity_name}/{entity_key}", Server._entities),
    "entity_signal": ("POST", "/entities/{entity_name}/{entity_key}", Server._entities),
    "entity_delete": ("DELETE", "/entities/{entity_name}/{entity_key}", Server._entities),
}
