"""Record store over Azure Cosmos DB for NoSQL (Azure mode), authenticated with a token credential.

One document per image, partition key ``/id``: point reads and writes address one logical partition.
``upsert_if_not_older`` is optimistic concurrency: read, compare blob versions, then ``replace_item`` with
the read ETag (``If-Match``) or ``create_item`` for a new id, retrying on 412/409 when another writer won
the race. ``search`` is one parameterized SQL query (``TOP n ... ORDER BY c.createdAt DESC``) paged by
keyset: our opaque token holds the last ``createdAt`` and the ids already returned at that instant.
``near_duplicates`` scans ``id`` + ``image.phash`` (a projection, not whole documents) and computes Hamming
distances here: Cosmos SQL has no popcount.

The SDK retries throttling (429) itself; that budget is kept small (3 attempts, 10 s) because the
orchestration retries activities too. SDK errors become ``imagepipe.errors``: 429/503/408/timeouts/
connection failures -> ``TransientServiceError``; 401/403 -> ``ConfigurationError`` naming the data-plane
role the identity needs.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.cosmos import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosClientTimeoutError,
    CosmosHttpResponseError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from imagepipe.adapters.records_common import (
    JsonDict,
    clamp_limit,
    decode_token,
    encode_token,
    hamming,
    is_older_version,
    parse_ts,
    phash_to_int,
    project,
)
from imagepipe.errors import ConfigurationError, ImagepipeError, InvalidInputError, TransientServiceError
from imagepipe.ports import SearchPage, SearchQuery

T = TypeVar("T")

#: Properties Cosmos adds to every document; never part of our records.
SYSTEM_PROPERTIES = ("_rid", "_self", "_etag", "_attachments", "_ts")
_DATA_ROLE = "Cosmos DB Built-in Data Contributor"
_WRITE_ATTEMPTS = 8
_TRANSIENT = {408, 429, 449, 500, 502, 503, 504}


def _strip(doc: JsonDict) -> JsonDict:
    return {k: v for k, v in doc.items() if k not in SYSTEM_PROPERTIES}


def _cosmos_ts(value: Any) -> str:
    """A filter bound in the records' timestamp format (UTC, milliseconds, ``Z``); see docs/contracts.md."""
    parsed = parse_ts(value)
    if parsed is None:
        raise InvalidInputError("created_from/created_to must be datetimes")
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def translate_cosmos_error(what: str, exc: Exception) -> ImagepipeError:
    """The ``imagepipe.errors`` equivalent of an azure-cosmos / azure-core exception."""
    if isinstance(exc, CosmosHttpResponseError):
        status = exc.status_code or 0
        if status in _TRANSIENT:
            headers = exc.headers or {}
            retry_ms = headers.get("x-ms-retry-after-ms")
            retry_after = float(retry_ms) / 1000 if retry_ms else None
            return TransientServiceError(
                f"{what}: Cosmos DB answered {status}; retry later",
                code="records_unavailable",
                retry_after_s=retry_after,
            )
        if status in (401, 403):
            return ConfigurationError(
                f"{what}: Cosmos DB refused the identity ({status}). Grant it the '{_DATA_ROLE}' data-plane role "
                "on the account (az cosmosdb sql role assignment create) and check COSMOS__accountEndpoint.",
                code="records_forbidden",
            )
        return ImagepipeError(f"{what}: Cosmos DB answered {status}: {exc.message}", code=f"cosmos_{status}")
    if isinstance(exc, ClientAuthenticationError):
        return ConfigurationError(
            f"{what}: could not get a token for Cosmos DB ({exc.message}); check the managed identity "
            "(AZURE_CLIENT_ID) and its '{_DATA_ROLE}' role".replace("{_DATA_ROLE}", _DATA_ROLE),
            code="records_forbidden",
        )
    if isinstance(exc, (CosmosClientTimeoutError, ServiceRequestError, ServiceResponseError)):
        return TransientServiceError(
            f"{what}: Cosmos DB did not answer ({type(exc).__name__})", code="records_unavailable"
        )
    if isinstance(exc, AzureError):
        return TransientServiceError(f"{what}: {exc}", code="records_unavailable")
    return ImagepipeError(f"{what}: {exc}")


class CosmosRecordStore:
    """``imagepipe.ports.RecordStore`` over one Cosmos DB container (partition key ``/id``)."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        container: str,
        credential: TokenCredential,
        *,
        transport: Any = None,
        **client_kwargs: Any,
    ) -> None:
        if not endpoint.startswith("https://"):
            raise ConfigurationError(
                f"COSMOS__accountEndpoint must be https://<account>.documents.azure.com, got '{endpoint}'"
            )
        self.endpoint, self.database, self.container_name = endpoint, database, container
        self._credential = credential
        self._client_kwargs = {"retry_throttle_total": 3, "retry_throttle_backoff_max": 10} | client_kwargs
        if transport is not None:
            self._client_kwargs["transport"] = transport
        self._container: ContainerProxy | None = None
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[ContainerProxy], T]) -> T:
        try:
            return fn(self._get_container())
        except ImagepipeError:
            raise
        except Exception as exc:
            if isinstance(exc, AzureError):
                raise translate_cosmos_error(what, exc) from exc
            raise

    def _get_container(self) -> ContainerProxy:
        if self._container is None:
            with self._lock:
                if self._container is None:
                    # The client reads the account's regions on construction: one request, once per process.
                    client = CosmosClient(self.endpoint, credential=self._credential, **self._client_kwargs)
                    db = client.get_database_client(self.database)
                    self._container = db.get_container_client(self.container_name)
        return self._container

    # -- RecordStore --------------------------------------------------------------------------------

    def get(self, image_id: str) -> JsonDict | None:
        doc = self._call(f"read record {image_id}", lambda c: self._read(c, image_id))
        return None if doc is None else _strip(doc)

    @staticmethod
    def _read(container: ContainerProxy, image_id: str) -> JsonDict | None:
        try:
            return dict(container.read_item(item=image_id, partition_key=image_id))
        except CosmosResourceNotFoundError:
            return None

    def upsert_if_not_older(self, record: JsonDict) -> bool:
        image_id = record.get("id")
        if not isinstance(image_id, str) or not image_id:
            raise InvalidInputError("a record needs a string 'id'")
        body = _strip(record)
        return self._call(f"write record {image_id}", lambda c: self._upsert(c, image_id, body))

    def _upsert(self, container: ContainerProxy, image_id: str, body: JsonDict) -> bool:
        for _ in range(_WRITE_ATTEMPTS):
            current = self._read(container, image_id)
            if current is None:
                try:
                    container.create_item(body=body)
                    return True
                except CosmosResourceExistsError:
                    continue  # created meanwhile: compare with that one
            if is_older_version(body, current):
                return False
            try:
                container.replace_item(
                    item=image_id, body=body, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                )
                return True
            except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
                continue  # changed or deleted since the read: read again
        raise TransientServiceError(
            f"write record {image_id}: still conflicting after {_WRITE_ATTEMPTS} attempts", code="records_contention"
        )

    def delete(self, image_id: str) -> bool:
        def run(container: ContainerProxy) -> bool:
            try:
                container.delete_item(item=image_id, partition_key=image_id)
                return True
            except CosmosResourceNotFoundError:
                return False

        return self._call(f"delete record {image_id}", run)

    def search(self, query: SearchQuery) -> SearchPage:
        limit = clamp_limit(query.limit)
        where, params = self._where(query)
        if where is None:
            return SearchPage(items=[], continuation=None)
        after_created: str | None = None
        seen: list[str] = []
        if query.continuation:
            # Keyset paging: everything not newer than the last item, minus the ids already returned at
            # exactly that timestamp. Each page is a fresh TOP query, so it stays correct across any
            # number of physical partitions (the SDK's own tokens do not resume cross-partition ORDER BY).
            position = decode_token(query.continuation)
            after_created, seen = position.get("c"), position.get("s") or []
            if not isinstance(after_created, str) or not (
                isinstance(seen, list) and all(isinstance(i, str) for i in seen)
            ):
                raise InvalidInputError("continuation token is malformed", code="invalid_continuation")
            where.append("c.createdAt <= @afterCreated")
            params.append({"name": "@afterCreated", "value": after_created})
            if seen:
                where.append("NOT ARRAY_CONTAINS(@seen, c.id)")
                params.append({"name": "@seen", "value": seen})
        sql = (
            f"SELECT TOP {limit + 1} * FROM c"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY c.createdAt DESC"
        )

        def run(container: ContainerProxy) -> list[JsonDict]:
            rows = container.query_items(
                sql, parameters=params, enable_cross_partition_query=True, max_item_count=limit + 1
            )
            return [_strip(dict(d)) for d in itertools.islice(rows, limit + 1)]

        rows = self._call("search records", run)
        items = rows[:limit]
        if len(rows) <= limit or not items:
            return SearchPage(items=items, continuation=None)
        last = items[-1].get("createdAt")
        at_last = [r["id"] for r in items if r.get("createdAt") == last]
        if last == after_created:
            at_last = seen + at_last
        return SearchPage(items=items, continuation=encode_token({"c": last, "s": at_last}))

    def _where(self, query: SearchQuery) -> tuple[list[str] | None, list[dict[str, object]]]:
        where: list[str] = []
        params: list[dict[str, object]] = []

        def add(clause: str, name: str, value: object) -> None:
            where.append(clause)
            params.append({"name": name, "value": value})

        if query.profile is not None:
            add("c.profile = @profile", "@profile", query.profile)
        if query.status is not None:
            add("c.status = @status", "@status", query.status)
        if query.tag is not None:
            add("ARRAY_CONTAINS(c.tags, @tag)", "@tag", query.tag)
        if query.label is not None:
            add("ARRAY_CONTAINS(c.labelNames, @label)", "@label", query.label)
        if query.created_from is not None:
            add("c.createdAt >= @createdFrom", "@createdFrom", _cosmos_ts(query.created_from))
        if query.created_to is not None:
            # Inclusive end: compare against the next millisecond (timestamps have millisecond precision).
            upper = parse_ts(query.created_to) or query.created_to
            add("c.createdAt < @createdTo", "@createdTo", _cosmos_ts(upper + timedelta(milliseconds=1)))
        if query.text is not None:
            words = query.text.lower().split()
            if not words:
                return None, []
            for i, word in enumerate(words):
                add(f"CONTAINS(LOWER(c.text), @text{i})", f"@text{i}", word)
        if query.near_duplicate_of is not None:
            target = self.get(query.near_duplicate_of) or {}
            linked = [d["id"] for d in target.get("nearDuplicates") or [] if isinstance(d, dict) and "id" in d]
            where.append(
                "(ARRAY_CONTAINS(@linked, c.id) OR "
                "EXISTS(SELECT VALUE x FROM x IN c.nearDuplicates WHERE x.id = @nearOf))"
            )
            params += [{"name": "@linked", "value": linked}, {"name": "@nearOf", "value": query.near_duplicate_of}]
            add("c.id != @nearSelf", "@nearSelf", query.near_duplicate_of)
        return where, params

    def near_duplicates(self, phash: str, *, max_distance: int, exclude_id: str, limit: int = 20) -> list[JsonDict]:
        target = phash_to_int(phash)
        if target is None:
            raise InvalidInputError(f"'{phash[:32]}' is not a 64-bit perceptual hash (16 hex digits)")

        def scan(container: ContainerProxy) -> list[tuple[int, str]]:
            hits: list[tuple[int, str]] = []
            rows = container.query_items(
                "SELECT c.id, c.image.phash FROM c WHERE IS_STRING(c.image.phash) AND c.id != @exclude",
                parameters=[{"name": "@exclude", "value": exclude_id}],
                enable_cross_partition_query=True,
                max_item_count=1000,
            )
            for row in rows:
                value = phash_to_int(row.get("phash"))
                if value is not None and (d := hamming(value, target)) <= max_distance:
                    hits.append((d, row["id"]))
            return sorted(hits)[: max(1, limit)]

        hits = self._call("near-duplicate scan", scan)
        found = [self.get(image_id) for _, image_id in hits]
        return [doc for doc in found if doc is not None]

    def iter_all(self, *, fields: Sequence[str] | None = None) -> Iterator[JsonDict]:
        if fields is not None:
            names = sorted(set(fields) | {"id"})
            if not all(n.isidentifier() for n in names):
                raise InvalidInputError("iter_all fields must be plain top-level names")
            sql = "SELECT " + ", ".join(f"c.{n}" for n in names) + " FROM c"
        else:
            sql = "SELECT * FROM c"
        pages = self._call(
            "list records",
            lambda c: c.query_items(sql, enable_cross_partition_query=True, max_item_count=1000).by_page(),
        )
        keep = tuple(fields) if fields is not None else None
        while True:
            try:
                page = self._call("list records", lambda _c: list(next(pages)))
            except StopIteration:
                return
            for doc in page:
                yield project(_strip(dict(doc)), keep)
