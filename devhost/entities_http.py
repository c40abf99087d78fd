"""Durable entities, the management API: ``entities/{name}[/{key}]`` under the durable prefixes.

As the extension answers them (and the SDK's client reads them):

* ``GET entities/{name}/{key}``: 200 with the entity's state as JSON, 404 when it does not exist;
* ``GET entities/{name}?top=&fetchState=``: the existing entities of that function, ``[{"entityId": {name,
  key}, "lastOperationTime", "state"?}]``, paged with the ``x-ms-continuation-token`` header;
* ``POST entities/{name}/{key}?op=``: queue a signal (202); ``DELETE`` signals the operation ``delete``.
  A signal to an entity function the app does not have is refused (400), as the extension's client does.

Errors are ``{"error": {"code", "message"}}`` plus the extension's ``Message``/``ExceptionMessage``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web

from devhost import entities as ent
from devhost.entities_worker import EntityWorker, missing_entity_message

#: Entities per page of the list when ``top`` is not given, and the most a page may ask for.
DEFAULT_TOP = 100
MAX_TOP = 1000
CONTINUATION = "x-ms-continuation-token"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message}, "Message": message, "ExceptionMessage": message}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _top(query: Mapping[str, str]) -> int | None:
    given = query.get("top")
    if given is None or given == "":
        return DEFAULT_TOP
    try:
        top = int(given)
    except ValueError:
        return None
    return top if 0 < top <= MAX_TOP else None


async def handle(worker: EntityWorker, request: web.Request, parts: list[str]) -> web.Response:
    """Answer one request whose path (below the durable prefix) is ``parts`` = ["entities", name, key?]."""
    method = request.method.upper()
    if len(parts) not in (2, 3):
        return _error(404, "not_found", "Entity routes are entities/{name} and entities/{name}/{key}.")
    name = parts[1]
    if len(parts) == 2:
        if method != "GET":
            return _error(405, "method_not_allowed", f"{method} is not allowed here; allowed: GET.", {"Allow": "GET"})
        return _list(worker, name, request)
    try:
        entity = ent.EntityId.of(name, parts[2])
    except ent.EntityProtocolError as exc:
        return _error(400, "bad_request", str(exc))
    if method == "GET":
        record = worker.read(entity)
        if not record.exists:
            return _error(404, "not_found", f"The entity {entity.scheduler_id} does not exist.")
        return web.Response(status=200, text=record.state or "null", content_type="application/json")
    if method not in ("POST", "DELETE"):
        allowed = "GET, POST, DELETE"
        return _error(
            405, "method_not_allowed", f"{method} is not allowed here; allowed: {allowed}.", {"Allow": allowed}
        )
    if not worker.has_entity(entity.name):
        return _error(400, "bad_request", missing_entity_message(name))
    operation = ent.DELETE_OPERATION if method == "DELETE" else request.query.get("op", "")
    body = await request.read()
    try:
        signal = ent.client_signal(operation, body, request.headers.get("Content-Type"), str(uuid.uuid4()))
    except ent.EntityProtocolError as exc:
        return _error(400, "bad_request", str(exc))
    worker.signal(entity, signal)
    return web.Response(status=202)


def _list(worker: EntityWorker, name: str, request: web.Request) -> web.Response:
    top = _top(request.query)
    if top is None:
        return _error(400, "bad_request", f"top must be a whole number from 1 to {MAX_TOP}.")
    fetch_state = request.query.get("fetchState", "").lower() == "true"
    page, token = worker.list(name, request.headers.get(CONTINUATION) or None, top)
    rows = []
    for item in page:
        row: dict[str, object] = {"entityId": item.entity.to_json(), "lastOperationTime": _iso(item.last_operation_ts)}
        if fetch_state:
            row["state"] = None if item.state is None else json.loads(item.state)
        rows.append(row)
    headers = {CONTINUATION: token} if token else None
    return web.Response(status=200, text=json.dumps(rows), content_type="application/json", headers=headers)
