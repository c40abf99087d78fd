"""SqliteRecordStore: the shared record-store contract on a real SQLite file, plus concurrency and scale."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from imagepipe.adapters.records_common import KEYS_PER_RECORD
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
        with second._connection() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
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
    with store._connection() as conn:
        row = conn.execute("SELECT blob_etag FROM records WHERE id = 'race'").fetchone()
    assert row[0] == '"0x0039"'


def _open_db_handles(path: str) -> int:
    """File descriptors of this process that point at the database, its WAL or its shared-memory file."""
    real = os.path.realpath(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target in (real, real + "-wal", real + "-shm", real + "-journal"):
            count += 1
    return count


def test_short_lived_threads_do_not_leak_connections(tmp_path: Path) -> None:
    # Defect 10.5: the devhost runs each activity on a new thread; one kept connection per thread grew to
    # hundreds of open files. 300 short-lived threads, each doing a read and a write, must leave a bounded
    # number of handles open, and close() must release them all.
    path = str(tmp_path / "leak.sqlite3")
    store = SqliteRecordStore(path)
    try:
        for wave in range(3):
            threads = [
                threading.Thread(
                    target=lambda name=f"w{wave}-{i}": (store.get(name), store.upsert_if_not_older(make_record(name)))
                )
                for i in range(100)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert _open_db_handles(path) <= 3 * store.max_connections, f"after wave {wave}"
        assert len(list(store.iter_all(fields=["id"]))) == 300
    finally:
        store.close()
    assert _open_db_handles(path) == 0


def test_pool_is_bounded_under_concurrency_and_closed_store_refuses(tmp_path: Path) -> None:
    store = SqliteRecordStore(str(tmp_path / "p.sqlite3"), max_connections=2)
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for k in range(20):
                store.upsert_if_not_older(make_record(f"c{i}-{k}", n=k, tags=["t"]))
                store.search(SearchQuery(tag="t", limit=5))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.open_connections <= 2
    assert len(store.search(SearchQuery(tag="t", limit=1000)).items) == 240
    store.close()
    assert store.open_connections == 0
    with pytest.raises(RuntimeError):
        store.get("c0-0")


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
    store.bulk_write(
        make_record(f"k{i:05d}", n=i // 3, tags=["even"] if i % 2 == 0 else ["odd"]) for i in range(10_000)
    )
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
    target = rng.getrandbits(64)
    planted = {}
    records = []
    for i in range(5000):
        ph = rng.getrandbits(64)
        if i % 1000 == 0:
            ph = target ^ (1 << (i // 1000))
            planted[f"n{i:04d}"] = 1
        records.append(make_record(f"n{i:04d}", n=i, phash=f"{ph:016x}"))
    store.bulk_write(records)
    found = store.near_duplicates(f"{target:016x}", max_distance=2, exclude_id="self", limit=50)
    assert set(ids(found)) == set(planted)


def test_records_from_before_the_bands_are_backfilled_on_open(tmp_path: Path) -> None:
    # A database written by the previous schema (no band table, no schema version) gets its pHash bands and
    # its FTS rows rebuilt when a store opens it; lookups then find the old records.
    path = str(tmp_path / "old.sqlite3")
    store = SqliteRecordStore(path)
    base = 0x0123_4567_89AB_CDEF
    store.upsert_if_not_older(make_record("old1", phash=f"{base:016x}", text="old words"))
    store.upsert_if_not_older(make_record("old2", n=1, phash=f"{base ^ 0b11:016x}"))
    with store._connection() as conn:
        conn.execute("DROP TABLE record_phash_keys")
        conn.execute("PRAGMA user_version = 0")
    store.close()
    reopened = SqliteRecordStore(path)
    try:
        found = reopened.near_duplicates(f"{base:016x}", max_distance=2, exclude_id="old1")
        assert [(d["id"], d["distance"]) for d in found] == [("old2", 2)]
        assert ids(reopened.search(SearchQuery(text="words")).items) == ["old1"]
    finally:
        reopened.close()


def test_files_with_16_bit_bands_get_half_keys_on_open(tmp_path: Path) -> None:
    # A version-2 file (four 16-bit band rows per record in record_phash_bands) is migrated on open: the old
    # table goes, record_phash_keys gets 66 keys per record with a pHash, the FTS rows are kept.
    path = str(tmp_path / "v2.sqlite3")
    store = SqliteRecordStore(path)
    base = 0x0123_4567_89AB_CDEF
    store.upsert_if_not_older(make_record("v1", phash=f"{base:016x}", text="kept words"))
    store.upsert_if_not_older(make_record("v2", n=1, phash=f"{base ^ 0x7 << 40 ^ 0x7:016x}"))  # 3 + 3 bits
    store.upsert_if_not_older(make_record("v3", n=2, phash=None))
    with store._connection() as conn:
        conn.execute("DELETE FROM record_phash_keys")
        conn.execute(
            "CREATE TABLE record_phash_bands (band TEXT NOT NULL, id TEXT NOT NULL, phash INTEGER NOT NULL, "
            "PRIMARY KEY (band, id)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO record_phash_bands VALUES ('b0:0123', 'v1', 1)")
        conn.execute("PRAGMA user_version = 2")
    store.close()
    reopened = SqliteRecordStore(path)
    try:
        with reopened._connection() as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            keys = conn.execute("SELECT count(*) FROM record_phash_keys").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert "record_phash_bands" not in tables and keys == 2 * KEYS_PER_RECORD and version == 3
        found = reopened.near_duplicates(f"{base:016x}", max_distance=6, exclude_id="v1")
        assert [(d["id"], d["distance"]) for d in found] == [("v2", 6)]
        assert ids(reopened.search(SearchQuery(text="kept")).items) == ["v1"]
    finally:
        reopened.close()


def test_near_duplicate_lookup_reads_no_chance_candidates(store: SqliteRecordStore) -> None:
    # Scale (50M records): the lookup at the default distance 6 must not read a share of the table. With the
    # 16-bit bands every probe key matched N/65,536 records by chance (about 5 of these 5,000); with the
    # 32-bit half keys the chance is 2 x 5,489 / 2^32 per record (0.013 here): the candidates are the hits.
    rng = random.Random(29)
    target = rng.getrandbits(64)
    planted = {f"p{k}": target ^ sum(1 << b for b in rng.sample(range(64), k)) for k in range(7)}
    records = [make_record(f"n{i:04d}", n=i, phash=f"{rng.getrandbits(64):016x}") for i in range(5000)]
    records += [make_record(i, n=5000 + k, phash=f"{v:016x}") for k, (i, v) in enumerate(planted.items())]
    store.bulk_write(records)
    with store._connection() as conn:
        candidates = store._candidates(conn, target, 6)
        keys = conn.execute("SELECT count(*) FROM record_phash_keys").fetchone()[0]
    assert sorted(image_id for image_id, _ in candidates) == sorted(planted)
    assert keys == KEYS_PER_RECORD * len(records)
    found = store.near_duplicates(f"{target:016x}", max_distance=6, exclude_id="-")
    assert [d["id"] for d in found] == [f"p{k}" for k in range(7)]


def test_rewrites_and_deletes_keep_the_key_table_exact(store: SqliteRecordStore) -> None:
    # The key rows follow the record: a new pHash replaces its 66 keys, a removed pHash or a delete drops them.
    def key_rows() -> int:
        with store._connection() as conn:
            return int(conn.execute("SELECT count(*) FROM record_phash_keys").fetchone()[0])

    store.upsert_if_not_older(make_record("k1", phash=f"{0xAAAA_0000_BBBB_0000:016x}"))
    store.upsert_if_not_older(make_record("k2", n=1, phash=f"{0x1234_5678_9ABC_DEF0:016x}"))
    assert key_rows() == 2 * KEYS_PER_RECORD
    store.upsert_if_not_older(make_record("k1", n=2, phash=f"{0x0000_CCCC_0000_DDDD:016x}"))
    assert key_rows() == 2 * KEYS_PER_RECORD
    assert store.near_duplicates(f"{0xAAAA_0000_BBBB_0000:016x}", max_distance=6, exclude_id="-") == []
    assert ids(store.near_duplicates(f"{0x0000_CCCC_0000_DDDD:016x}", max_distance=6, exclude_id="-")) == ["k1"]
    store.upsert_if_not_older(make_record("k1", n=3, phash=None))
    assert key_rows() == KEYS_PER_RECORD
    assert store.delete("k2") and not store.delete("k2")
    assert key_rows() == 0
    # One bulk batch writing the same id twice (the keys of a batch are inserted at its end).
    first, second = make_record("k3", phash=f"{0x1111_0000_2222_0000:016x}"), make_record("k3", phash=f"{7:016x}")
    assert store.bulk_write([first, second, make_record("k4", n=1, phash=f"{7:016x}")]) == 3
    assert key_rows() == 2 * KEYS_PER_RECORD
    assert store.near_duplicates(f"{0x1111_0000_2222_0000:016x}", max_distance=6, exclude_id="-") == []
    assert ids(store.near_duplicates(f"{7:016x}", max_distance=0, exclude_id="-")) == ["k3", "k4"]
