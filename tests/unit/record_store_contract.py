"""The behaviour every ``RecordStore`` must share, as a mixin of tests.

A test module subclasses ``RecordStoreContract`` and provides a ``store`` fixture returning a fresh, empty
store; the same tests then run against SQLite and against Cosmos DB (the real SDK over a fake transport).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imagepipe.errors import InvalidInputError
from imagepipe.ports import RecordStore, SearchQuery

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_record(
    image_id: str,
    *,
    n: int = 0,
    last_modified: datetime | None = None,
    etag: str = '"0x1"',
    status: str = "completed",
    profile: str = "general",
    tags: list[str] | None = None,
    labels: list[str] | None = None,
    text: str = "",
    phash: str | None = None,
    near: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A contract-shaped record created ``n`` minutes after BASE."""
    created = BASE + timedelta(minutes=n)
    record: dict[str, Any] = {
        "id": image_id,
        "schemaVersion": 1,
        "profile": profile,
        "status": status,
        "blob": {
            "container": "images",
            "name": f"{image_id}.jpg",
            "etag": etag,
            "size": 10,
            "contentType": "image/jpeg",
            "lastModified": iso(last_modified or created),
        },
        "image": {"width": 64, "height": 64, "format": "JPEG", "phash": phash},
        "tags": tags or [],
        "labels": [{"name": name, "confidence": 0.9, "evidence": "tag:x"} for name in labels or []],
        "labelNames": labels or [],
        "text": text,
        "nearDuplicates": [{"id": other, "distance": 1} for other in near or []],
        "createdAt": iso(created),
        "updatedAt": iso(created),
    }
    record.update(extra)
    return record


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


class RecordStoreContract:
    """Tests every record store passes; subclasses supply the ``store`` fixture."""

    # -- get / upsert / delete ----------------------------------------------------------------------

    def test_get_missing_is_none(self, store: RecordStore) -> None:
        assert store.get("nope") is None

    def test_roundtrip_keeps_the_whole_document(self, store: RecordStore) -> None:
        record = make_record("a1", tags=["cat"], client={"originalName": "cat.jpg", "metadata": {"k": "v"}})
        assert store.upsert_if_not_older(record) is True
        got = store.get("a1")
        assert got is not None
        assert {k: got[k] for k in record} == record

    def test_newer_blob_version_replaces(self, store: RecordStore) -> None:
        store.upsert_if_not_older(make_record("a1", last_modified=BASE, etag='"0x1"', status="processing"))
        newer = make_record("a1", last_modified=BASE + timedelta(seconds=1), etag='"0x2"', status="completed")
        assert store.upsert_if_not_older(newer) is True
        got = store.get("a1")
        assert got is not None and got["status"] == "completed" and got["blob"]["etag"] == '"0x2"'

    def test_older_blob_version_is_refused(self, store: RecordStore) -> None:
        store.upsert_if_not_older(make_record("a1", last_modified=BASE + timedelta(seconds=5), etag='"0x5"'))
        older = make_record("a1", last_modified=BASE, etag='"0x9"', status="failed")
        assert store.upsert_if_not_older(older) is False
        got = store.get("a1")
        assert got is not None and got["status"] == "completed" and got["blob"]["etag"] == '"0x5"'

    def test_same_version_rewrite_is_idempotent(self, store: RecordStore) -> None:
        store.upsert_if_not_older(make_record("a1", status="processing"))
        assert store.upsert_if_not_older(make_record("a1", status="completed")) is True
        assert store.upsert_if_not_older(make_record("a1", status="completed")) is True
        got = store.get("a1")
        assert got is not None and got["status"] == "completed"

    def test_equal_time_different_etag_is_written(self, store: RecordStore) -> None:
        # Last-Modified has one-second resolution and ETags carry no order: a same-second overwrite must win
        # (callers check the live blob's ETag first).
        store.upsert_if_not_older(make_record("a1", etag='"0x8D2"'))
        assert store.upsert_if_not_older(make_record("a1", etag='"0x8D1"', status="failed")) is True
        got = store.get("a1")
        assert got is not None and got["blob"]["etag"] == '"0x8D1"'

    def test_lastmodified_compares_instants_not_strings(self, store: RecordStore) -> None:
        first = make_record("a1")
        first["blob"]["lastModified"] = "2026-01-01T10:00:00.5Z"
        store.upsert_if_not_older(first)
        second = make_record("a1", status="failed")
        second["blob"]["lastModified"] = "2026-01-01T11:00:00+02:00"  # 09:00Z: older
        assert store.upsert_if_not_older(second) is False

    def test_delete(self, store: RecordStore) -> None:
        store.upsert_if_not_older(make_record("a1", text="hello world", tags=["cat"]))
        assert store.delete("a1") is True
        assert store.get("a1") is None
        assert store.delete("a1") is False
        assert store.search(SearchQuery(text="hello")).items == []
        assert store.search(SearchQuery(tag="cat")).items == []

    # -- search ---------------------------------------------------------------------------------------

    def _seed(self, store: RecordStore) -> None:
        store.upsert_if_not_older(make_record("r1", n=1, tags=["cat", "animal"], labels=["pet"], text="Stop sign"))
        store.upsert_if_not_older(make_record("r2", n=2, tags=["car"], labels=["vehicle"], profile="traffic"))
        store.upsert_if_not_older(
            make_record("r3", n=3, tags=["cat"], status="failed", text="no parking here", profile="traffic")
        )
        store.upsert_if_not_older(make_record("r4", n=4, tags=["dog", "animal"], labels=["pet"], status="pending"))

    def test_search_newest_first(self, store: RecordStore) -> None:
        self._seed(store)
        page = store.search(SearchQuery())
        assert ids(page.items) == ["r4", "r3", "r2", "r1"]
        assert page.continuation is None

    def test_search_filters_and_combine(self, store: RecordStore) -> None:
        self._seed(store)
        assert ids(store.search(SearchQuery(tag="cat")).items) == ["r3", "r1"]
        assert ids(store.search(SearchQuery(tag="animal", label="pet")).items) == ["r4", "r1"]
        assert ids(store.search(SearchQuery(label="vehicle")).items) == ["r2"]
        assert ids(store.search(SearchQuery(profile="traffic")).items) == ["r3", "r2"]
        assert ids(store.search(SearchQuery(profile="traffic", status="failed")).items) == ["r3"]
        assert ids(store.search(SearchQuery(tag="cat", status="pending")).items) == []
        assert ids(store.search(SearchQuery(tag="nothing")).items) == []

    def test_search_text(self, store: RecordStore) -> None:
        self._seed(store)
        assert ids(store.search(SearchQuery(text="stop")).items) == ["r1"]
        assert ids(store.search(SearchQuery(text="PARKING")).items) == ["r3"]
        assert ids(store.search(SearchQuery(text="parking", tag="cat")).items) == ["r3"]
        assert ids(store.search(SearchQuery(text="giraffe")).items) == []

    def test_search_created_range(self, store: RecordStore) -> None:
        self._seed(store)
        query = SearchQuery(created_from=BASE + timedelta(minutes=2), created_to=BASE + timedelta(minutes=3))
        assert ids(store.search(query).items) == ["r3", "r2"]

    def test_search_near_duplicate_of(self, store: RecordStore) -> None:
        store.upsert_if_not_older(make_record("d1", n=1, near=["d2"]))
        store.upsert_if_not_older(make_record("d2", n=2, near=["d1", "d3"]))
        store.upsert_if_not_older(make_record("d3", n=3))
        store.upsert_if_not_older(make_record("d4", n=4))
        assert ids(store.search(SearchQuery(near_duplicate_of="d1")).items) == ["d2"]
        assert ids(store.search(SearchQuery(near_duplicate_of="d3")).items) == ["d2"]
        assert ids(store.search(SearchQuery(near_duplicate_of="d2")).items) == ["d3", "d1"]

    def test_search_pages_cover_everything_once(self, store: RecordStore) -> None:
        for i in range(23):
            store.upsert_if_not_older(make_record(f"p{i:02d}", n=i, tags=["x"] if i % 2 else []))
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            page = store.search(SearchQuery(limit=5, continuation=token))
            assert len(page.items) <= 5
            seen += ids(page.items)
            pages += 1
            token = page.continuation
            if token is None:
                break
        assert seen == [f"p{i:02d}" for i in reversed(range(23))]
        assert pages in (5, 6)
        odd: list[str] = []
        token = None
        while True:
            page = store.search(SearchQuery(tag="x", limit=4, continuation=token))
            odd += ids(page.items)
            token = page.continuation
            if token is None:
                break
        assert odd == [f"p{i:02d}" for i in reversed(range(23)) if i % 2]

    def test_search_limit_is_clamped(self, store: RecordStore) -> None:
        self._seed(store)
        assert len(store.search(SearchQuery(limit=0)).items) == 1
        assert len(store.search(SearchQuery(limit=5000)).items) == 4

    def test_search_rejects_garbage_continuation(self, store: RecordStore) -> None:
        self._seed(store)
        with pytest.raises(InvalidInputError):
            store.search(SearchQuery(continuation="!!not-a-token!!"))

    # -- near duplicates / iteration ------------------------------------------------------------------

    def test_near_duplicates_by_hamming_distance(self, store: RecordStore) -> None:
        base = 0xF0F0_F0F0_F0F0_F0F0
        store.upsert_if_not_older(make_record("h0", n=0, phash=f"{base:016x}"))
        store.upsert_if_not_older(make_record("h1", n=1, phash=f"{base ^ 0b1:016x}"))
        store.upsert_if_not_older(make_record("h3", n=2, phash=f"{base ^ 0b111 << 60:016x}"))
        store.upsert_if_not_older(make_record("h9", n=3, phash=f"{base ^ 0x1FF:016x}"))
        store.upsert_if_not_older(make_record("hx", n=4, phash=None))
        found = store.near_duplicates(f"{base:016x}", max_distance=3, exclude_id="h0")
        assert ids(found) == ["h1", "h3"]
        assert ids(store.near_duplicates(f"{base:016x}", max_distance=3, exclude_id="h0", limit=1)) == ["h1"]
        assert ids(store.near_duplicates(f"{base:016x}", max_distance=0, exclude_id="zz")) == ["h0"]
        assert ids(store.near_duplicates(f"{base:016x}", max_distance=9, exclude_id="h0")) == ["h1", "h3", "h9"]

    def test_iter_all_with_fields(self, store: RecordStore) -> None:
        self._seed(store)
        everything = list(store.iter_all())
        assert sorted(ids(everything)) == ["r1", "r2", "r3", "r4"]
        assert all("tags" in item for item in everything)
        slim = list(store.iter_all(fields=["status", "blob"]))
        assert sorted(ids(slim)) == ["r1", "r2", "r3", "r4"]
        assert all(set(item) <= {"id", "status", "blob"} and "status" in item for item in slim)
