"""The behaviour every ``RecordStore`` must share, as a mixin of tests.

A test module subclasses ``RecordStoreContract`` and provides a ``store`` fixture returning a fresh, empty
store; the same tests then run against SQLite and against Cosmos DB (the real SDK over a fake transport).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
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

    def test_search_by_custom_label(self, store: RecordStore) -> None:
        names = {"a": ["garments:dress"], "b": ["garments:shoe", "damage:dent"], "c": ["garments:unknown"], "d": []}
        for n, (image_id, custom) in enumerate(names.items()):
            store.upsert_if_not_older(make_record(image_id, n=n, customLabelNames=custom))
        assert ids(store.search(SearchQuery(custom_label="garments:dress")).items) == ["a"]
        assert ids(store.search(SearchQuery(custom_label="damage:dent")).items) == ["b"]
        assert ids(store.search(SearchQuery(custom_label="garments:unknown", profile="general")).items) == ["c"]
        assert store.search(SearchQuery(custom_label="dress")).items == []
        # a relabelled record leaves its old label behind
        store.upsert_if_not_older(make_record("a", n=0, etag='"0x2"', customLabelNames=["garments:shoe"]))
        assert ids(store.search(SearchQuery(custom_label="garments:shoe")).items) == ["b", "a"]
        assert store.search(SearchQuery(custom_label="garments:dress")).items == []

    def test_search_text(self, store: RecordStore) -> None:
        self._seed(store)
        assert ids(store.search(SearchQuery(text="stop")).items) == ["r1"]
        assert ids(store.search(SearchQuery(text="PARKING")).items) == ["r3"]
        assert ids(store.search(SearchQuery(text="parking", tag="cat")).items) == ["r3"]
        assert ids(store.search(SearchQuery(text="giraffe")).items) == []

    def test_search_text_matches_whole_words_all_required(self, store: RecordStore) -> None:
        # The documented semantics (docs/records.md): every word of the query occurs as a word of the OCR
        # text, case-insensitive, in any order; no substrings, no prefixes; punctuation separates words.
        store.upsert_if_not_older(make_record("w1", n=1, text="Policy No. 4711: Claim form"))
        store.upsert_if_not_older(make_record("w2", n=2, text="claims department, policyholder"))
        store.upsert_if_not_older(make_record("w3", n=3, text="FORM claim"))
        assert ids(store.search(SearchQuery(text="claim form")).items) == ["w3", "w1"]
        assert ids(store.search(SearchQuery(text="form, CLAIM!")).items) == ["w3", "w1"]
        assert ids(store.search(SearchQuery(text="policy 4711")).items) == ["w1"]
        assert ids(store.search(SearchQuery(text="claims")).items) == ["w2"]
        assert ids(store.search(SearchQuery(text="polic")).items) == []
        assert ids(store.search(SearchQuery(text="laim")).items) == []
        assert ids(store.search(SearchQuery(text="' OR 1=1 --")).items) == []
        assert ids(store.search(SearchQuery(text="!!!")).items) == []

    def test_search_created_range(self, store: RecordStore) -> None:
        self._seed(store)
        query = SearchQuery(created_from=BASE + timedelta(minutes=2), created_to=BASE + timedelta(minutes=3))
        assert ids(store.search(query).items) == ["r3", "r2"]

    def test_search_created_range_compares_instants_whatever_the_offset(self, store: RecordStore) -> None:
        # Defect 10.11: a bound given as +02:00 or -05:00 selects the same set as the same instant in Z.
        self._seed(store)
        odd = make_record("r5", n=5)
        odd["createdAt"] = "2026-01-01T01:05:30.000+01:00"  # 00:05:30Z, between r5 (00:05) and r6 (00:06)
        store.upsert_if_not_older(odd)
        store.upsert_if_not_older(make_record("r6", n=6))
        utc_from, utc_to = BASE + timedelta(minutes=2), BASE + timedelta(minutes=5, seconds=30)
        expected = ["r5", "r4", "r3", "r2"]
        assert ids(store.search(SearchQuery(created_from=utc_from, created_to=utc_to)).items) == expected
        for hours in (2, -5, 14):
            zone = timezone(timedelta(hours=hours))
            query = SearchQuery(created_from=utc_from.astimezone(zone), created_to=utc_to.astimezone(zone))
            assert ids(store.search(query).items) == expected, f"offset {hours:+d}h"
        # Sub-millisecond bounds: from is inclusive of the next whole millisecond, to of the previous one.
        at = BASE + timedelta(minutes=3)
        assert ids(store.search(SearchQuery(created_from=at + timedelta(microseconds=500))).items)[-1] == "r4"
        assert ids(store.search(SearchQuery(created_to=at - timedelta(microseconds=500))).items)[0] == "r2"
        got = store.get("r5")
        assert got is not None and got["createdAt"] == "2026-01-01T00:05:30.000Z"  # stored normalised to UTC

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
        # Defect 10.12: each hit carries its Hamming distance, as docs/contracts.md shows.
        assert [d["distance"] for d in found] == [1, 3]
        assert ids(store.near_duplicates(f"{base:016x}", max_distance=3, exclude_id="h0", limit=1)) == ["h1"]
        assert ids(store.near_duplicates(f"{base:016x}", max_distance=0, exclude_id="zz")) == ["h0"]
        assert ids(store.near_duplicates(f"{base:016x}", max_distance=9, exclude_id="h0")) == ["h1", "h3", "h9"]

    @pytest.mark.slow
    def test_near_duplicates_equal_brute_force_at_every_distance(self, store: RecordStore) -> None:
        # Defect 9.7: the keyed (multi-index hashing) lookup must find exactly what a full scan finds. Hashes
        # at every distance 0..64 from a few targets, plus random ones; every max distance 0..64.
        rng = random.Random(97)
        targets = [rng.getrandbits(64) for _ in range(3)] + [0, (1 << 64) - 1]
        hashes: dict[str, int] = {}
        for t, target in enumerate(targets):
            for d in range(65):
                for k in range(2 if d <= 12 else 1):
                    flip = rng.sample(range(64), d)
                    hashes[f"t{t}d{d:02d}k{k}"] = target ^ sum(1 << b for b in flip)
        for i in range(60):
            hashes[f"r{i:03d}"] = rng.getrandbits(64)
        for n, (image_id, value) in enumerate(sorted(hashes.items())):
            store.upsert_if_not_older(make_record(image_id, n=n, phash=f"{value:016x}"))
        for target in targets[:3] + [targets[rng.randrange(5)]]:
            for max_distance in range(65):  # every distance: indexed (0..9) and scanned (10..64)
                expected = sorted(
                    (bin(v ^ target).count("1"), k)
                    for k, v in hashes.items()
                    if bin(v ^ target).count("1") <= max_distance
                )
                found = store.near_duplicates(f"{target:016x}", max_distance=max_distance, exclude_id="-", limit=1000)
                assert [(d["distance"], d["id"]) for d in found] == expected[:1000], f"d<={max_distance}"
        few = store.near_duplicates(f"{targets[0]:016x}", max_distance=6, exclude_id="t0d00k0", limit=3)
        assert [d["id"] for d in few] == ["t0d00k1", "t0d01k0", "t0d01k1"]

    def test_near_duplicates_planted_on_both_halves(self, store: RecordStore) -> None:
        # The pigeonhole edge of the two 32-bit halves: near-duplicates at every distance k, with the k flipped
        # bits all in the high half, all in the low half, or split as evenly as possible (then neither half is
        # exact: d = 6 as 3 + 3, d = 7 as 3 + 4). Each lookup at d must return exactly those with k <= d.
        rng = random.Random(41)
        target = rng.getrandbits(64)
        planted: dict[str, int] = {}
        for k in range(12):
            for where, high, low in (("hi", k, 0), ("lo", 0, k), ("sp", k // 2, k - k // 2)):
                flips = [32 + b for b in rng.sample(range(32), high)] + rng.sample(range(32), low)
                planted[f"k{k:02d}{where}"] = target ^ sum(1 << b for b in flips)
        for n, (image_id, value) in enumerate(sorted(planted.items())):
            store.upsert_if_not_older(make_record(image_id, n=n, phash=f"{value:016x}"))
        for max_distance in range(12):
            expected = sorted(
                ((v ^ target).bit_count(), k) for k, v in planted.items() if (v ^ target).bit_count() <= max_distance
            )
            found = store.near_duplicates(f"{target:016x}", max_distance=max_distance, exclude_id="-", limit=1000)
            assert [(d["distance"], d["id"]) for d in found] == expected, f"d<={max_distance}"
            assert len(found) == 3 * (max_distance + 1)

    def test_near_duplicates_follow_a_changed_phash(self, store: RecordStore) -> None:
        old, new = 0x0F0F_0F0F_F0F0_F0F0, 0x1234_5678_9ABC_DEF0
        store.upsert_if_not_older(make_record("c1", n=0, phash=f"{old:016x}"))
        store.upsert_if_not_older(make_record("c1", n=1, phash=f"{new:016x}"))
        assert store.near_duplicates(f"{old ^ 0b101:016x}", max_distance=6, exclude_id="-") == []
        found = store.near_duplicates(f"{new ^ 0b101:016x}", max_distance=6, exclude_id="-")
        assert [(d["id"], d["distance"]) for d in found] == [("c1", 2)]
        assert store.delete("c1")
        assert store.near_duplicates(f"{new:016x}", max_distance=6, exclude_id="-") == []

    def test_iter_all_with_fields(self, store: RecordStore) -> None:
        self._seed(store)
        everything = list(store.iter_all())
        assert sorted(ids(everything)) == ["r1", "r2", "r3", "r4"]
        assert all("tags" in item for item in everything)
        slim = list(store.iter_all(fields=["status", "blob"]))
        assert sorted(ids(slim)) == ["r1", "r2", "r3", "r4"]
        assert all(set(item) <= {"id", "status", "blob"} and "status" in item for item in slim)
