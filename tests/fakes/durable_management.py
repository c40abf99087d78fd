"""A Durable management API stand-in (aiohttp) that pages instance queries the way the extension does.

``GET {rpc}instances/`` and ``GET /runtime/webhooks/durabletask/instances/`` (the latter only with the
system key as ``code``) parse the extension's filters (``createdTimeFrom``, ``createdTimeTo``,
``runtimeStatus``, ``instanceIdPrefix``, ``showInput``, ``top``) and answer at most ``top`` instances per
response, **100 when ``top`` is absent**. Like a table-scanning backend it scans ``top`` rows per request in
instance-id order and filters them, so a page can hold fewer matches than ``top`` - or none - and still
carry an ``x-ms-continuation-token``; ``empty_every`` also injects token-only empty pages (a backend that
stopped early). The last page carries the header with an empty value, as the extension's
``Headers.Add(name, null)`` does. ``GET {rpc}instances/{id}`` answers one status (200/202/404).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

DEFAULT_PAGE = 100
HEADER = "x-ms-continuation-token"
STATUSES = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Suspended")
ACTIVE = ("Pending", "Running", "ContinuedAsNew", "Suspended")


def _parse_time(raw: str) -> datetime:
    text = raw.strip().replace("Z", "+00:00")
    if "." in text:  # .NET parses 7 fractional digits; Python at most 6
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _status_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Instance:
    instance_id: str
    name: str
    runtime_status: str
    created: datetime
    updated: datetime
    input: Any = None
    output: Any = None
    custom_status: Any = None

    def status_json(self, show_input: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.runtime_status,
            "input": json.dumps(self.input) if show_input and self.input is not None else None,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": _status_time(self.created),
            "lastUpdatedTime": _status_time(self.updated),
        }
        return body


@dataclass
class SeenQuery:
    path: str
    query: dict[str, str]
    token: str | None
    returned: int
    next_token: str


@dataclass
class FakeManagementApi:
    """The instances; ``empty_every`` > 0 makes every n-th page of a walk an empty page with a token."""

    instances: list[Instance] = field(default_factory=list)
    system_key: str = "durable-system-key"
    empty_every: int = 0
    endless: bool = False
    seen: list[SeenQuery] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/durabletask/instances/", self.query)
        app.router.add_get("/runtime/webhooks/durabletask/instances/", self.query_public)
        app.router.add_get("/durabletask/instances/{id}", self.one)
        return app

    def binding(self, origin: str, rpc: bool = True) -> str:
        """A client binding JSON (protocol §8.1) pointing at this stand-in; ``rpc=False`` omits rpcBaseUrl."""
        base = f"{origin}/runtime/webhooks/durabletask"
        tail = f"taskHub=TestHub&connection=Storage&code={self.system_key}"
        body: dict[str, Any] = {
            "taskHubName": "TestHub",
            "connectionName": None,
            "creationUrls": {"createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"},
            "managementUrls": {"id": "INSTANCEID", "statusQueryGetUri": f"{base}/instances/INSTANCEID?{tail}"},
            "baseUrl": base,
            "requiredQueryStringParameters": f"code={self.system_key}",
        }
        if rpc:
            body["rpcBaseUrl"] = f"{origin}/durabletask/"
        return json.dumps(body)

    # -- handlers -------------------------------------------------------------------------------------

    async def query_public(self, request: web.Request) -> web.Response:
        if request.query.get("code") != self.system_key:
            return web.Response(status=401)
        return await self.query(request)

    async def query(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            top = int(q.get("top", DEFAULT_PAGE))
            if top < 1:
                raise ValueError(top)
            start, walk_page = self._decode(request.headers.get(HEADER))
            created_from = _parse_time(q["createdTimeFrom"]) if q.get("createdTimeFrom") else None
            created_to = _parse_time(q["createdTimeTo"]) if q.get("createdTimeTo") else None
            wanted = self._statuses(q.get("runtimeStatus", ""))
        except (ValueError, KeyError) as exc:
            return web.json_response(
                {"Message": f"One or more of the arguments submitted is incorrect: {exc}"}, status=400
            )
        show_input = q.get("showInput", "true").lower() != "false"
        prefix = q.get("instanceIdPrefix", "")
        rows = sorted(self.instances, key=lambda i: i.instance_id)
        if self.endless or (self.empty_every and walk_page % self.empty_every == self.empty_every - 1):
            items: list[dict[str, Any]] = []
            next_start = start
        else:
            scanned = rows[start : start + top]
            next_start = start + len(scanned)
            items = [
                i.status_json(show_input)
                for i in scanned
                if (not wanted or i.runtime_status in wanted)
                and (created_from is None or i.created >= created_from)
                and (created_to is None or i.created <= created_to)
                and i.instance_id.startswith(prefix)
            ]
        more = self.endless or next_start < len(rows)
        token = self._encode(next_start, walk_page + 1) if more else ""
        self.seen.append(SeenQuery(request.path, dict(q), request.headers.get(HEADER), len(items), token))
        return web.Response(
            status=200, text=json.dumps(items), content_type="application/json", headers={HEADER: token}
        )

    async def one(self, request: web.Request) -> web.Response:
        found = [i for i in self.instances if i.instance_id == request.match_info["id"]]
        if not found:
            return web.Response(status=404)
        body = found[0].status_json(request.query.get("showInput", "true").lower() != "false")
        if request.query.get("showHistory", "").lower() == "true":
            body["historyEvents"] = []
        return web.json_response(body, status=202 if found[0].runtime_status in ACTIVE else 200)

    # -- tokens and filters ---------------------------------------------------------------------------

    @staticmethod
    def _encode(start: int, page: int) -> str:
        return base64.b64encode(json.dumps({"next": start, "page": page}).encode()).decode()

    @staticmethod
    def _decode(token: str | None) -> tuple[int, int]:
        if not token:
            return 0, 0
        value = json.loads(base64.b64decode(token, validate=True))
        return int(value["next"]), int(value["page"])

    @staticmethod
    def _statuses(raw: str) -> set[str]:
        by_lower = {s.lower(): s for s in STATUSES}
        out = set()
        for part in raw.split(","):
            if part.strip():
                out.add(by_lower[part.strip().lower()])  # KeyError -> 400, as the extension's enum parse fails
        return out
