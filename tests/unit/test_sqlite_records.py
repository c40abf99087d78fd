"""SqliteRecordStore: the shared record-store contract on a real SQLite file, plus concurrency and scale."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from imagepipe.adapters.sqlite_records import SqliteRecordStore
from imagepipe.ports import SearchQuery
from tests.unit.record_store_contract import BASE, RecordStoreContract, ids, make_record

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteRecordStore]:
    s = SqliteRecordStore(str(tmp_path / "state" / "records.sqlite3"))
    yield s
    s.close()


class TestSqliteContract(RecordStoreContract):
    pass


def test_file_is_in_wal_mode_and_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite3")
    first = SqliteRecordStore(path)
    first.upsert_if_not_older(make_record("a1", tags=["cat"], text="hello"))
    first.close()
    second = SqliteRecordStore(path)
    try:
        assert second._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ids(second.search(SearchQuery(tag="cat", text="hello")).items) == ["a1"]
    finally:
        second.close()


def test_racing_writers_newest_version_wins(store: SqliteRecordStore) -> None:
    versions = list(range(40))
    random.Random(7).shuffle(versions)
    results: dict[int, bool] = {}
    start = threading.Barrier(8)

    def writer(chunk: list[int]) -> None:
        start.wait()
        for v in chunk:
            record = make_record("race", last_modified=BASE + timedelta(seconds=v), etag=f'"0x{v:04d}"', version=v)
            results[v] = store.upsert_if_not_older(record)

    threads = [threading.Thread(target=writer, args=(versions[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get("race")
    assert got is not None and got["version"] == 39
    assert results[39] is True
    assert len(results) == 40
    accepted = [v for v, ok in results.items() if ok]
    # A write is refused only because a newer version was already stored.
    assert all(any(w > v for w in accepted) for v, ok in results.items() if not ok)
    row = store._conn().execute("SELECT blob_etag FROM records WHERE id = 'race'").fetchone()
    assert row[0] == '"0x0039"'


def test_threads_share_one_store(store: SqliteRecordStore) -> None:
    def work(t: int) -> None:
        for i in range(25):
            store.upsert_if_not_older(make_record(f"t{t}-{i:02d}", n=i, tags=[f"t{t}"]))
            assert store.get(f"t{t}-{i:02d}") is not None

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(store.iter_all(fields=["id"]))) == 100
    assert len(store.search(SearchQuery(tag="t2", limit=1000)).items) == 25


def test_ten_thousand_records_page_through(store: SqliteRecordStore) -> None:
    conn = store._conn()
    conn.execute("BEGIN IMMEDIATE")
    for i in range(10_000):
        record = make_record(f"k{i:05d}", n=i // 3, tags=["even"] if i % 2 == 0 else ["odd"])
        store._write(conn, record["id"], record, json.dumps(record))
    conn.execute("COMMIT")
    seen: list[str] = []
    token = None
    while True:
        page = store.search(SearchQuery(tag="even", limit=1000, continuation=token))
        seen += ids(page.items)
        token = page.continuation
        if token is None:
            break
    assert len(seen) == 5000 == len(set(seen))
    created = [int(s[1:]) // 3 for s in seen]
    assert created == sorted(created, reverse=True)
    assert len(store.search(SearchQuery(limit=7)).items) == 7


def test_near_duplicates_scan_many(store: SqliteRecordStore) -> None:
    rng = random.Random(3)
    conn = store._conn()
    conn.execute("BEGIN IMMEDIATE")
    target = rng.getrandbits(64)
    planted = {}
    for i in range(5000):
        ph = rng.getrandbits(64)
        if i % 1000 == 0:
            ph = target ^ (1 << (i // 1000))
            planted[f"n{i:04d}"] = 1
        record = make_record(f"n{i:04d}", n=i, phash=f"{ph:016x}")
        store._write(conn, record["id"], record, json.dumps(record))
    conn.execute("COMMIT")
    found = store.near_duplicates(f"{target:016x}", max_distance=2, exclude_id="self", limit=50)
    assert set(ids(found)) == set(planted)
