"""Record store over Azure Cosmos DB for NoSQL (Azure mode), authenticated with a token credential.

One document per image, partition key ``/id``: point reads and writes address one logical partition.
``upsert_if_not_older`` is optimistic concurrency: read, compare blob versions, then ``replace_item`` with
the read ETag (``If-Match``) or ``create_item`` for a new id, retrying on 412/409 when another writer won
the race. Every write normalises the timestamps to UTC milliseconds with ``Z`` (string order = time order)
and adds ``phashBands``, the 66 pHash keys (per 32-bit half: the half and every value one bit away; stripped
again on read).

``search`` is one parameterized SQL query (``TOP n ... ORDER BY c.createdAt DESC``) paged by keyset: our
opaque token holds the last ``createdAt`` and the ids already returned at that instant. Text search uses
the container's full-text index (``FullTextContains`` per word) when the container has a full-text policy
on ``/text`` (``text_search="auto"``, read once from the container), else case-insensitive ``CONTAINS``.
``near_duplicates`` probes the keys (``EXISTS ... ARRAY_CONTAINS(@bands, b)`` over the indexed
``phashBands``, at most ``PROBE_CHUNK`` keys per query), verifies Hamming distances here (Cosmos SQL has no
popcount) and reads the hits in one query; docs/records.md has the numbers and the backfill of older
documents (``backfill``).

The SDK retries throttling (429) itself; that budget is kept small (3 attempts, 10 s) because the
orchestration retries activities too. SDK errors become ``imagepipe.errors``: 429/503/408/timeouts/
connection failures -> ``TransientServiceError``; 401/403 -> ``ConfigurationError`` naming the data-plane
role the identity needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Literal, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from imagepipe.adapters.cosmos_container import CosmosContainerStore
from imagepipe.adapters.records_common import (
    JsonDict,
    clamp_limit,
    decode_token,
    encode_token,
    filter_bounds,
    is_older_version,
    normalize_timestamps,
    phash_bands,
    probe_bands,
    project,
    record_phash,
    search_words,
)
from imagepipe.errors import ConfigurationError, InvalidInputError, TransientServiceError
from imagepipe.phash import hamming, phash_to_int
from imagepipe.ports import SearchPage, SearchQuery

T = TypeVar("T")

#: Properties Cosmos adds to every document, and our own index property; never part of our records.
SYSTEM_PROPERTIES = ("_rid", "_self", "_etag", "_attachments", "_ts", "phashBands")
#: How ``search`` matches ``text``: the full-text index, substring CONTAINS, or decided from the container.
TextSearch = Literal["auto", "fulltext", "contains"]
TEXT_PATH = "/text"
_WRITE_ATTEMPTS = 8
#: The most probe keys one near-duplicate query carries (about 7 KB of parameters; the account's query text
#: limit is 256 KB): 1,058 keys at distance 6 are three queries.
PROBE_CHUNK = 500


def _strip(doc: JsonDict) -> JsonDict:
    return {k: v for k, v in doc.items() if k not in SYSTEM_PROPERTIES}


def _stored_form(record: JsonDict) -> JsonDict:
    """The document we store for a record: system properties out, UTC timestamps, pHash band keys in."""
    body = normalize_timestamps(_strip(record))
    bands = phash_bands(record_phash(body))
    if bands:
        body["phashBands"] = bands
    return body


class CosmosRecordStore(CosmosContainerStore):
    """``imagepipe.ports.RecordStore`` over one Cosmos DB container (partition key ``/id``)."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        container: str,
        credential: TokenCredential,
        *,
        transport: Any = None,
        text_search: TextSearch = "auto",
        **client_kwargs: Any,
    ) -> None:
        super().__init__(endpoint, database, container, credential, transport=transport, **client_kwargs)
        if text_search not in ("auto", "fulltext", "contains"):
            raise ConfigurationError(f"text search must be auto, fulltext or contains, not '{text_search}'")
        self._text_search: TextSearch = text_search

    def text_search_mode(self) -> Literal["fulltext", "contains"]:
        """How text search runs: ``fulltext`` when configured, or (auto) when the container has a full-text
        policy and index on ``/text``; read from the container once per process."""
        if self._text_search == "auto":
            properties = self._call("read container properties", lambda c: dict(c.read()))
            policy = properties.get("fullTextPolicy") or {}
            paths = {p.get("path") for p in policy.get("fullTextPaths") or [] if isinstance(p, dict)}
            indexes = (properties.get("indexingPolicy") or {}).get("fullTextIndexes") or []
            indexed = {i.get("path") for i in indexes if isinstance(i, dict)}
            self._text_search = "fulltext" if TEXT_PATH in paths and TEXT_PATH in indexed else "contains"
        return "fulltext" if self._text_search == "fulltext" else "contains"

    # -- RecordStore --------------------------------------------------------------------------------

    def get(self, image_id: str) -> JsonDict | None:
        doc = self._call(f"read record {image_id}", lambda c: self._read(c, image_id))
        return None if doc is None else _strip(doc)

    def upsert_if_not_older(self, record: JsonDict) -> bool:
        image_id = record.get("id")
        if not isinstance(image_id, str) or not image_id:
            raise InvalidInputError("a record needs a string 'id'")
        body = _stored_form(record)
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
        if query.custom_label is not None:
            add("ARRAY_CONTAINS(c.customLabelNames, @customLabel)", "@customLabel", query.custom_label)
        lower, upper = filter_bounds(query.created_from, query.created_to)
        if lower is not None:
            add("c.createdAt >= @createdFrom", "@createdFrom", lower)
        if upper is not None:
            add("c.createdAt <= @createdTo", "@createdTo", upper)
        if query.text is not None:
            words = search_words(query.text)
            if not words:
                return None, []
            # One FullTextContains per word, not FullTextContainsAll: the latter does not drop stop words
            # (Azure/azure-cosmos-dotnet-v3#5943), so "form of claim" would match nothing.
            function = "FullTextContains(c.text, @text{i})" if self.text_search_mode() == "fulltext" else None
            for i, word in enumerate(words):
                add(function.format(i=i) if function else f"CONTAINS(c.text, @text{i}, true)", f"@text{i}", word)
        return where, params

    def near_duplicates(self, phash: str, *, max_distance: int, exclude_id: str, limit: int = 20) -> list[JsonDict]:
        """Records within ``max_distance`` bits, nearest first (then by id), each with its ``distance``."""
        target = phash_to_int(phash)
        if target is None:
            raise InvalidInputError(f"'{phash[:32]}' is not a 64-bit perceptual hash (16 hex digits)")
        keys = probe_bands(target, max_distance)
        queries: list[tuple[str, list[dict[str, object]]]] = []
        if keys is None:  # so many probes that reading every pHash is cheaper (distance >= 10)
            queries.append(("SELECT c.id, c.image.phash FROM c WHERE IS_STRING(c.image.phash)", []))
        else:
            sql = (
                "SELECT c.id, c.image.phash FROM c "
                "WHERE EXISTS(SELECT VALUE b FROM b IN c.phashBands WHERE ARRAY_CONTAINS(@bands, b))"
            )
            chunks = -(-len(keys) // PROBE_CHUNK)
            size = -(-len(keys) // chunks)  # even chunks: 1,058 keys -> 353 + 353 + 352
            for start in range(0, len(keys), size):
                queries.append((sql, [{"name": "@bands", "value": keys[start : start + size]}]))

        def lookup(container: ContainerProxy) -> list[JsonDict]:
            distances: dict[str, int] = {}
            for sql, params in queries:
                rows = container.query_items(
                    sql, parameters=params, enable_cross_partition_query=True, max_item_count=1000
                )
                for row in rows:
                    value = phash_to_int(row.get("phash"))
                    image_id = row.get("id")
                    if not isinstance(image_id, str) or value is None or image_id == exclude_id:
                        continue
                    if (d := hamming(value, target)) <= max_distance:
                        distances[image_id] = d
            hits = sorted((d, image_id) for image_id, d in distances.items())[: max(1, limit)]
            if not hits:
                return []
            docs = container.query_items(
                "SELECT * FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
                parameters=[{"name": "@ids", "value": [image_id for _, image_id in hits]}],
                enable_cross_partition_query=True,
                max_item_count=1000,
            )
            by_id = {doc["id"]: _strip(dict(doc)) for doc in docs}
            return [by_id[image_id] | {"distance": d} for d, image_id in hits if image_id in by_id]

        return self._call("near-duplicate lookup", lookup)

    def backfill(self) -> int:
        """Rewrite every document stored before the current pHash keys and UTC timestamps: sets ``phashBands``
        (the 66 half keys; documents with the older 16-bit band keys are rewritten too) and normalises
        ``createdAt``/``updatedAt``/``blob.lastModified``. One pass over the container (RU ~ size); idempotent,
        safe while the app runs (If-Match; a document changed meanwhile is already current).
        Returns how many documents it rewrote."""

        def run(container: ContainerProxy) -> int:
            rewritten = 0
            for doc in container.query_items("SELECT * FROM c", enable_cross_partition_query=True, max_item_count=500):
                current = dict(doc)
                wanted = _stored_form(current)
                if wanted == _strip(current) | (
                    {"phashBands": current["phashBands"]} if "phashBands" in current else {}
                ):
                    continue
                try:
                    container.replace_item(
                        item=current["id"],
                        body=wanted,
                        etag=current["_etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                    rewritten += 1
                except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
                    continue  # rewritten by a writer meanwhile (writers store the current form) or deleted
            return rewritten

        return self._call("backfill records", run)

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
