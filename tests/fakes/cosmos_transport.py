"""A fake Cosmos DB for NoSQL gateway: an azure-core ``HttpTransport`` answering the REST API in memory.

Enough of the API for the real ``azure.cosmos.CosmosClient``: the database account (``GET /``), database
and container reads (with the ``/id`` partition key definition), document create/upsert/replace/read/
delete with ``_rid``/``_self``/``_etag``/``_ts`` and ``If-Match`` (412), and queries
(``POST .../docs`` with ``application/query+json``) paged with ``x-ms-continuation``.

Limitation: queries are evaluated here, in Python, for the small set of shapes the adapter emits (AND-ed
predicates; see ``_PREDICATES``), the way the gateway serves a container with a single partition key
range. The SDK's query-plan / multi-range path (taken when the gateway answers 400 with a query plan) is
not exercised. Unknown query shapes get a 400 ``BadRequest`` so a new adapter query fails loudly.

Full-text search: ``full_text_paths`` (e.g. ``["/text"]``) turns on the account's full-text capability
(``EnableNoSQLFullTextSearch``) and gives the container a ``fullTextPolicy`` and ``fullTextIndexes`` on
those paths, as Terraform would. ``FullTextContains`` on an account without the capability is refused
with 400 ``BadRequest``; on a path without a full-text index it runs as a scan, as the service documents
("queries run without the policies, but do not use the full-text index and cost more RU"). Matching is by
case-folded word; the service's stemming and stop-word removal are not modelled.

Cost: each query records ``QueryCost`` in ``query_costs`` and answers ``x-ms-request-charge`` = 2 + the
documents it examined. A predicate served by an index (equality, ``ARRAY_CONTAINS`` on an indexed array,
``IN`` over a list, ``FullTextContains`` on an indexed path) examines only its matching documents (the
most selective one counts); otherwise the engine walks the ``ORDER BY`` index until ``TOP`` is filled, or
every document. A proxy for RU that grows the way RU grows, not the service's RU formula.

Faults: ``fail_next(status, count, ...)`` answers the next ``count`` requests matching a path predicate
with an error (429 with ``x-ms-retry-after-ms``, 503, 401/403 ...), so the SDK's own retry policies can
be observed; ``requests`` records every request seen.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import HttpRequest, HttpResponse
from azure.core.utils import CaseInsensitiveDict

from tests.fakes.in_memory import InMemoryTransport

JsonDict = dict[str, Any]


class _Response(HttpResponse):
    """A complete in-memory HTTP response."""

    def __init__(self, request: HttpRequest, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers)
        self.reason = {200: "OK", 201: "Created", 204: "No Content"}.get(status, "Error")
        self.content_type = self.headers.get("Content-Type")
        self._body = body

    def body(self) -> bytes:
        return self._body


@dataclass
class _Fault:
    status: int
    remaining: int
    match: Callable[[str, str], bool]
    headers: dict[str, str]
    code: str


@dataclass
class QueryCost:
    """What one query page cost the fake engine (see the module docstring)."""

    query: str
    examined: int
    returned: int
    indexed: bool


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeCosmosTransport(InMemoryTransport):
    """One account with any number of databases and containers, all in memory. Thread-safe."""

    def __init__(
        self,
        *,
        account: str = "fakeacct",
        databases: dict[str, list[str]] | None = None,
        full_text_paths: list[str] | None = None,
    ) -> None:
        self.account = account
        #: Paths with a full-text policy and index; None: the account has no full-text capability.
        self.full_text_paths = full_text_paths
        self.query_costs: list[QueryCost] = []
        self.databases: dict[str, dict[str, dict[str, JsonDict]]] = {
            db: {c: {} for c in colls} for db, colls in (databases or {"imagepipe": ["images"]}).items()
        }
        self.requests: list[SeenRequest] = []
        #: The most documents one query page holds (the service also cuts pages at 4 MB).
        self.max_page_size = 1000
        self._faults: list[_Fault] = []
        self._drops = 0
        self._lock = threading.RLock()
        self._lsn = itertools.count(1)
        self._rid = itertools.count(1)

    # -- test controls ------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        when: Callable[[str, str], bool] | None = None,
        retry_after_ms: int = 1,
        code: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests for which ``when(method, path)`` holds with ``status``."""
        headers = {"x-ms-retry-after-ms": str(retry_after_ms)} if status == 429 else {}
        default_code = {429: "TooManyRequests", 503: "ServiceUnavailable", 401: "Unauthorized", 403: "Forbidden"}
        self._faults.append(
            _Fault(
                status,
                count,
                when or (lambda method, path: "/docs" in path),
                headers,
                code or default_code.get(status, "InternalServerError"),
            )
        )

    def drop_next(self, count: int = 1) -> None:
        """Fail the next ``count`` document requests at the connection level (``ServiceRequestError``)."""
        self._drops += count

    def count(self, method: str, pattern: str) -> int:
        """How many requests with ``method`` had a path matching the regex ``pattern``."""
        return sum(1 for r in self.requests if r.method == method and re.search(pattern, r.path))

    # -- HttpTransport ------------------------------------------------------------------------------

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        path = unquote(urlparse(request.url).path).rstrip("/") or "/"
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = request.body if request.body is not None else getattr(request, "data", None)
        body: Any = None
        if raw:
            body = json.loads(raw if isinstance(raw, (str, bytes)) else json.dumps(raw))
        with self._lock:
            self.requests.append(SeenRequest(request.method, path, headers, body))
            if self._drops > 0 and "/docs" in path:
                self._drops -= 1
                raise ServiceRequestError("connection reset by fake gateway")
            for fault in self._faults:
                if fault.remaining > 0 and fault.match(request.method, path):
                    fault.remaining -= 1
                    return self._error(request, fault.status, fault.code, "injected fault", fault.headers)
            if not headers.get("authorization", "").startswith("type=aad&ver=1.0&sig="):
                return self._error(request, 401, "Unauthorized", "missing AAD token")
            try:
                return self._route(request, path, headers, body)
            except _HttpError as exc:
                return self._error(request, exc.status, exc.code, exc.message)

    # -- routing ------------------------------------------------------------------------------------

    def _route(self, request: HttpRequest, path: str, headers: dict[str, str], body: Any) -> HttpResponse:
        parts = [p for p in path.split("/") if p]
        method = request.method
        if not parts:
            return self._ok(request, self._account_json())
        if parts[0] != "dbs" or len(parts) < 2:
            raise _HttpError(404, "NotFound", f"no resource at {path}")
        db = self.databases.get(parts[1])
        if db is None:
            raise _HttpError(404, "NotFound", f"database {parts[1]} does not exist")
        if len(parts) == 2:
            return self._ok(request, self._meta(parts[1], f"dbs/{parts[1]}"))
        if parts[2] != "colls" or len(parts) < 4 or parts[3] not in db:
            raise _HttpError(404, "NotFound", f"container {'/'.join(parts[2:4])} does not exist")
        docs = db[parts[3]]
        link = f"dbs/{parts[1]}/colls/{parts[3]}"
        if len(parts) == 4:
            coll = self._meta(parts[3], link)
            coll |= {
                "partitionKey": {"paths": ["/id"], "kind": "Hash", "version": 2},
                "indexingPolicy": {
                    "indexingMode": "consistent",
                    "automatic": True,
                    "includedPaths": [{"path": "/*"}],
                    "excludedPaths": [{"path": '/"_etag"/?'}],
                    "fullTextIndexes": [{"path": p} for p in self.full_text_paths or []],
                },
                "conflictResolutionPolicy": {"mode": "LastWriterWins", "conflictResolutionPath": "/_ts"},
                "geospatialConfig": {"type": "Geography"},
            }
            if self.full_text_paths is not None:
                coll["fullTextPolicy"] = {
                    "defaultLanguage": "en-US",
                    "fullTextPaths": [{"path": p, "language": "en-US"} for p in self.full_text_paths],
                }
            return self._ok(request, coll)
        if parts[4] == "pkranges":
            ranges = [{"id": "0", "minInclusive": "", "maxExclusive": "FF", "parents": [], "_rid": "pk0"}]
            if headers.get("if-none-match"):
                return self._respond(request, 304, {}, b"")
            body_ = {"_rid": "coll", "PartitionKeyRanges": ranges, "_count": 1}
            return self._ok(request, body_, {"etag": '"pkr1"'})
        if parts[4] != "docs":
            raise _HttpError(404, "NotFound", f"no resource at {path}")
        if len(parts) == 5 and method == "POST":
            if headers.get("x-ms-documentdb-isquery", "").lower() == "true":
                return self._query(request, docs, body, headers)
            return self._create(request, docs, link, body, upsert=headers.get("x-ms-documentdb-is-upsert") == "True")
        if len(parts) != 6:
            raise _HttpError(405, "MethodNotAllowed", f"{method} {path}")
        doc_id = parts[5]
        if method == "GET":
            if doc_id not in docs:
                raise _HttpError(404, "NotFound", "Entity with the specified id does not exist in the system.")
            return self._ok(request, docs[doc_id], {"etag": docs[doc_id]["_etag"]})
        if method == "DELETE":
            if doc_id not in docs:
                raise _HttpError(404, "NotFound", "Entity with the specified id does not exist in the system.")
            self._check_if_match(docs[doc_id], headers)
            del docs[doc_id]
            return self._respond(request, 204, self._headers(), b"")
        if method == "PUT":
            if doc_id not in docs:
                raise _HttpError(404, "NotFound", "Entity with the specified id does not exist in the system.")
            self._check_if_match(docs[doc_id], headers)
            if body.get("id") != doc_id:
                raise _HttpError(400, "BadRequest", "id in body does not match the resource path")
            return self._store(request, docs, link, body, status=200)
        raise _HttpError(405, "MethodNotAllowed", f"{method} {path}")

    # -- documents ----------------------------------------------------------------------------------

    def _create(
        self, request: HttpRequest, docs: dict[str, JsonDict], link: str, body: Any, *, upsert: bool
    ) -> HttpResponse:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise _HttpError(
                400, "BadRequest", "The input content is invalid because the required properties - 'id; ' - are missing"
            )
        if body["id"] in docs and not upsert:
            raise _HttpError(409, "Conflict", "Entity with the specified id already exists in the system.")
        return self._store(request, docs, link, body, status=200 if body["id"] in docs else 201)

    def _store(
        self, request: HttpRequest, docs: dict[str, JsonDict], link: str, body: JsonDict, *, status: int
    ) -> HttpResponse:
        doc = {k: v for k, v in body.items() if not k.startswith("_")}
        rid = docs[doc["id"]]["_rid"] if doc["id"] in docs else self._new_rid()
        etag = f'"{uuid.uuid4()}"'
        doc |= {
            "_rid": rid,
            "_self": f"{link}/docs/{rid}/",
            "_etag": etag,
            "_attachments": "attachments/",
            "_ts": int(time.time()),
        }
        docs[doc["id"]] = doc
        return self._ok(request, doc, {"etag": etag}, status=status)

    @staticmethod
    def _check_if_match(doc: JsonDict, headers: dict[str, str]) -> None:
        expected = headers.get("if-match")
        if expected is not None and expected != "*" and expected != doc["_etag"]:
            raise _HttpError(
                412,
                "PreconditionFailed",
                "Operation cannot be performed because one of the specified precondition is not met.",
            )

    # -- queries ------------------------------------------------------------------------------------

    def _query(
        self, request: HttpRequest, docs: dict[str, JsonDict], body: Any, headers: dict[str, str]
    ) -> HttpResponse:
        if "application/query+json" not in headers.get("content-type", ""):
            raise _HttpError(400, "BadRequest", "queries must be sent as application/query+json")
        params = {
            p["name"]: _Members(p["value"]) if isinstance(p["value"], list) else p["value"]
            for p in body.get("parameters", [])
        }
        plan = _parse_query(body["query"], self.full_text_paths)
        ordered = list(docs.values())
        if plan.order_by is not None:
            field, descending = plan.order_by
            ordered.sort(key=lambda d: (str(_path(d, field) or ""), d["_rid"]), reverse=descending)
        else:
            ordered.sort(key=lambda d: d["_rid"])
        rows: list[JsonDict] = []
        walked = 0
        for doc in ordered:
            walked += 1
            if all(pred(doc, params) for pred in plan.where):
                rows.append(doc)
                if plan.top is not None and len(rows) >= plan.top:
                    break
        indexed = [pred for pred in plan.where if getattr(pred, "indexed", False)]
        if indexed and len(plan.where) == 1 and plan.top is None:  # one indexed predicate: its matches
            examined = len(rows)
        elif indexed:  # the index hands over only the matching documents of the most selective predicate
            examined = min(sum(1 for d in docs.values() if pred(d, params)) for pred in indexed)
        else:
            examined = walked
        start = 0
        token = headers.get("x-ms-continuation")
        if token:
            try:
                start = int(json.loads(base64.b64decode(token))["skip"])
            except (ValueError, KeyError, TypeError) as exc:
                raise _HttpError(400, "BadRequest", "Invalid Continuation Token") from exc
        size = int(headers.get("x-ms-max-item-count", "100"))
        size = min(100 if size <= 0 else size, self.max_page_size)
        page = rows[start : start + size]
        extra: dict[str, str] = {}
        if start + size < len(rows):
            extra["x-ms-continuation"] = base64.b64encode(json.dumps({"skip": start + size}).encode()).decode()
        items = [plan.project(d) for d in page]
        if start == 0:
            self.query_costs.append(QueryCost(body["query"], examined, len(rows), bool(indexed)))
            extra["x-ms-request-charge"] = f"{2 + examined:.2f}"
        else:
            extra["x-ms-request-charge"] = "1.00"
        return self._ok(request, {"_rid": "coll", "Documents": items, "_count": len(items)}, extra)

    # -- responses ----------------------------------------------------------------------------------

    def _account_json(self) -> JsonDict:
        endpoint = f"https://{self.account}-westeurope.documents.azure.com:443/"
        location = [{"name": "West Europe", "databaseAccountEndpoint": endpoint}]
        return {
            "_self": "",
            "id": self.account,
            "_rid": f"{self.account}.documents.azure.com",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/",
            "writableLocations": location,
            "readableLocations": location,
            "enableMultipleWriteLocations": False,
            "continuousBackupEnabled": False,
            "enableNRegionSynchronousCommit": False,
            "userReplicationPolicy": {"asyncReplication": False, "minReplicaSetSize": 3, "maxReplicasetSize": 4},
            "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "systemReplicationPolicy": {"minReplicaSetSize": 3, "maxReplicasetSize": 4},
            "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
            "queryEngineConfiguration": json.dumps(
                {"maxSqlQueryInputLength": 262144, "maxJoinsPerSqlQuery": 5, "queryDefaultTimeout": 5000}
            ),
        }

    def _meta(self, name: str, link: str) -> JsonDict:
        return {
            "id": name,
            "_rid": base64.b64encode(name.encode()).decode(),
            "_self": link + "/",
            "_etag": '"0"',
            "_ts": 0,
        }

    def _new_rid(self) -> str:
        return base64.b64encode(next(self._rid).to_bytes(8, "big")).decode()

    def _headers(self) -> dict[str, str]:
        return {
            "x-ms-request-charge": "1.0",
            "x-ms-activity-id": str(uuid.uuid4()),
            "x-ms-session-token": f"0:-1#{next(self._lsn)}",
            "x-ms-gatewayversion": "2.0.0",
        }

    def _ok(
        self, request: HttpRequest, body: JsonDict, extra: dict[str, str] | None = None, *, status: int = 200
    ) -> HttpResponse:
        headers = self._headers() | {"Content-Type": "application/json"} | (extra or {})
        return self._respond(request, status, headers, json.dumps(body).encode())

    def _error(
        self, request: HttpRequest, status: int, code: str, message: str, extra: dict[str, str] | None = None
    ) -> HttpResponse:
        headers = {"Content-Type": "application/json", "x-ms-activity-id": str(uuid.uuid4())} | (extra or {})
        body = json.dumps({"code": code, "message": f'Message: {{"Errors":["{message}"]}}'}).encode()
        return self._respond(request, status, headers, body)

    @staticmethod
    def _respond(request: HttpRequest, status: int, headers: dict[str, str], body: bytes) -> HttpResponse:
        return _Response(request, status, headers, body)


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---------------------------------------------------------------------------------------------------
# The small query language: SELECT [TOP n] <* | c.a, c.b.c> FROM c [WHERE p AND p ...] [ORDER BY c.f ASC|DESC]
# ---------------------------------------------------------------------------------------------------

Predicate = Callable[[JsonDict, JsonDict], bool]
_FIELD = r"c(?:\.\w+)+"
_PARAM = r"@\w+"


def _path(doc: JsonDict, dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split(".")[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _string_lt(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a < b


def _indexed(pred: Predicate) -> Predicate:
    """Mark a predicate the container's range index can serve (it examines only matching documents)."""
    pred.indexed = True  # type: ignore[attr-defined]
    return pred


_WORD = re.compile(r"[^\W_]+")


class _Members(list[Any]):
    """A list parameter whose ``in`` test is a set lookup (the fake scans every document per query)."""

    def __init__(self, values: list[Any]) -> None:
        super().__init__(values)
        try:
            self._set: frozenset[Any] | None = frozenset(values)
        except TypeError:
            self._set = None

    def __contains__(self, item: object) -> bool:
        if self._set is not None:
            try:
                return item in self._set
            except TypeError:
                return False
        return list.__contains__(self, item)


@functools.lru_cache(maxsize=1 << 18)
def _words(value: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(value))


_PREDICATES: list[tuple[str, Callable[[re.Match[str]], Predicate]]] = [
    (rf"^({_FIELD}) = ({_PARAM})$", lambda m: _indexed(lambda d, p: _path(d, m[1]) == p[m[2]])),
    (rf"^({_FIELD}) != ({_PARAM})$", lambda m: lambda d, p: _path(d, m[1]) != p[m[2]]),
    (
        rf"^({_FIELD}) >= ({_PARAM})$",
        lambda m: lambda d, p: isinstance(_path(d, m[1]), str) and not _string_lt(_path(d, m[1]), p[m[2]]),
    ),
    (rf"^({_FIELD}) < ({_PARAM})$", lambda m: lambda d, p: _string_lt(_path(d, m[1]), p[m[2]])),
    (
        rf"^({_FIELD}) <= ({_PARAM})$",
        lambda m: lambda d, p: isinstance(_path(d, m[1]), str) and not _string_lt(p[m[2]], _path(d, m[1])),
    ),
    (rf"^IS_STRING\(({_FIELD})\)$", lambda m: lambda d, p: isinstance(_path(d, m[1]), str)),
    (rf"^IS_DEFINED\(({_FIELD})\)$", lambda m: lambda d, p: _path(d, m[1]) is not None),
    (
        rf"^ARRAY_CONTAINS\(({_FIELD}), ({_PARAM})\)$",
        lambda m: _indexed(lambda d, p: p[m[2]] in (_path(d, m[1]) or [])),
    ),
    (rf"^ARRAY_CONTAINS\(({_PARAM}), ({_FIELD})\)$", lambda m: _indexed(lambda d, p: _path(d, m[2]) in p[m[1]])),
    (
        rf"^EXISTS\(SELECT VALUE (\w+) FROM \1 IN ({_FIELD}) WHERE ARRAY_CONTAINS\(({_PARAM}), \1\)\)$",
        lambda m: _indexed(lambda d, p: any(x in p[m[3]] for x in _path(d, m[2]) or [])),
    ),
    (
        rf"^CONTAINS\(({_FIELD}), ({_PARAM}), true\)$",
        lambda m: lambda d, p: isinstance(_path(d, m[1]), str) and p[m[2]].lower() in _path(d, m[1]).lower(),
    ),
    (
        rf"^CONTAINS\(LOWER\(({_FIELD})\), ({_PARAM})\)$",
        lambda m: lambda d, p: isinstance(_path(d, m[1]), str) and p[m[2]] in _path(d, m[1]).lower(),
    ),
    (
        rf"^EXISTS\(SELECT VALUE x FROM x IN ({_FIELD}) WHERE x\.(\w+) = ({_PARAM})\)$",
        lambda m: lambda d, p: any(isinstance(x, dict) and x.get(m[2]) == p[m[3]] for x in _path(d, m[1]) or []),
    ),
]


@dataclass
class _Plan:
    fields: list[str] | None
    where: list[Predicate]
    order_by: tuple[str, bool] | None
    top: int | None = None

    def project(self, doc: JsonDict) -> JsonDict:
        if self.fields is None:
            return doc
        out = {}
        for field in self.fields:
            value = _path(doc, field)
            if value is not None:
                out[field.rsplit(".", 1)[-1]] = value
        return out


def _split_top(text: str, sep: str) -> Iterator[str]:
    depth, start, i = 0, 0, 0
    while i < len(text):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            yield text[start:i].strip()
            start = i + len(sep)
            i = start
            continue
        i += 1
    yield text[start:].strip()


def _full_text(path: str, param: str, full_text_paths: list[str] | None) -> Predicate:
    if full_text_paths is None:
        raise _HttpError(
            400,
            "BadRequest",
            "FullTextContains requires the full text search capability (EnableNoSQLFullTextSearch) on the account",
        )

    def matches(d: JsonDict, p: JsonDict) -> bool:
        wanted, text = p[param], _path(d, path)
        if not isinstance(wanted, str) or not isinstance(text, str):
            return False
        return bool(_words(wanted)) and _words(wanted) <= _words(text)

    pointer = "/" + "/".join(path.split(".")[1:])
    return _indexed(matches) if pointer in full_text_paths else matches


def _predicate(text: str, full_text_paths: list[str] | None = None) -> Predicate:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        ors = [_predicate(t, full_text_paths) for t in _split_top(text[1:-1], " OR ")]
        if len(ors) > 1:
            return lambda d, p: any(pred(d, p) for pred in ors)
        return ors[0]
    if text.startswith("NOT "):
        inner = _predicate(text[4:], full_text_paths)
        return lambda d, p: not inner(d, p)
    full_text = re.match(rf"^FullTextContains\(({_FIELD}), ({_PARAM})\)$", text, re.IGNORECASE)
    if full_text:
        return _full_text(full_text[1], full_text[2], full_text_paths)
    for pattern, build in _PREDICATES:
        match = re.match(pattern, text)
        if match:
            return build(match)
    raise _HttpError(400, "BadRequest", f"Syntax error (fake gateway does not know the predicate '{text}')")


def _parse_query(query: str, full_text_paths: list[str] | None = None) -> _Plan:
    match = re.match(
        r"^SELECT (?:TOP (?P<top>\d+) )?(?P<sel>.+?) FROM c(?: WHERE (?P<where>.+?))?"
        r"(?: ORDER BY (?P<ob>c\.\w+)(?: (?P<dir>ASC|DESC))?)?$",
        " ".join(query.split()),
    )
    if not match:
        raise _HttpError(400, "BadRequest", f"Syntax error (fake gateway cannot parse '{query}')")
    sel = match["sel"]
    fields = None if sel == "*" else [f.strip() for f in sel.split(",")]
    if fields is not None and not all(re.fullmatch(_FIELD, f) for f in fields):
        raise _HttpError(400, "BadRequest", f"Syntax error in projection '{sel}'")
    where = [_predicate(t, full_text_paths) for t in _split_top(match["where"], " AND ")] if match["where"] else []
    order = (match["ob"], match["dir"] == "DESC") if match["ob"] else None
    return _Plan(fields, where, order, int(match["top"]) if match["top"] else None)
