"""Record-store query benchmark: the SQLite store with ``--records`` (default 100k) synthetic records.

The records have the real shape (profile, status, blob facts, image facts with a random 64-bit pHash, tags,
labels, OCR text for 20 %, timestamps over 30 days) and are written through the store's own write path in a
temp file (bulk: 1,000 records per transaction; build time reported). Then each query is repeated and its
latency reported as p50/p95: point get, search by profile / tag / label / text (FTS5) / status + time range,
a paged walk of 10 pages, the near-duplicate scan, plus single-record upserts. Writes
``bench/results/queries.json``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine_facts, summarize, write_result

PROFILES = ("general", "insurance", "fashion", "game-telemetry")
STATUSES = (("completed", 0.95), ("failed", 0.03), ("processing", 0.02))
LABELS = ("garment", "vehicle", "receipt", "document", "scoreboard", "person", "animal", "food", "damage", "logo")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_DAYS = 30


def vocabulary(rng: random.Random, size: int, min_len: int = 3, max_len: int = 9) -> list[str]:
    """``size`` distinct pseudo-words of lowercase letters."""
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(min_len, max_len))))
    return sorted(words)


def ts(seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and Z, ``seconds`` after EPOCH (the record stores' timestamp form)."""
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_record(i: int, rng: random.Random, tags: list[str], words: list[str]) -> dict[str, Any]:
    """One synthetic record shaped like docs/contracts.md (tags Zipf-like, 20 % with OCR text)."""
    image_id = f"01BENCH{i:019d}"
    created = rng.uniform(0, SPAN_DAYS * 86400)
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    chosen = sorted({tags[min(int(rng.paretovariate(1.2)) - 1, len(tags) - 1)] for _ in range(rng.randint(3, 10))})
    labels = [
        {"name": name, "confidence": round(rng.uniform(0.5, 1), 3), "evidence": f"tag:{chosen[0]}"}
        for name in rng.sample(LABELS, rng.choice((0, 1, 1, 2)))
    ]
    record: dict[str, Any] = {
        "id": image_id,
        "schemaVersion": 1,
        "profile": rng.choice(PROFILES),
        "status": status,
        "blob": {
            "container": "images",
            "name": f"{image_id}.jpg",
            "etag": f'"0x8D{rng.getrandbits(48):012X}"',
            "size": rng.randint(5_000, 2_000_000),
            "contentType": "image/jpeg",
            "lastModified": ts(created),
        },
        "image": {
            "width": rng.randint(200, 4000),
            "height": rng.randint(200, 4000),
            "format": "JPEG",
            "sha256": f"{rng.getrandbits(256):064x}",
            "phash": f"{rng.getrandbits(64):016x}",
            "exif": {},
        },
        "client": {"originalName": f"img-{i}.jpg", "metadata": {"sku": f"S-{i % 5000}"}},
        "analysis": {
            "tagsResult": {"values": [{"name": t, "confidence": round(rng.uniform(0.3, 1), 3)} for t in chosen]},
            "modelVersion": "bench",
        },
        "tags": chosen,
        "labels": labels,
        "labelNames": sorted({label["name"] for label in labels}),
        "run": {"instanceId": f"{image_id}-{rng.getrandbits(48):012x}", "provider": "local"},
        "createdAt": ts(created),
        "updatedAt": ts(created + rng.uniform(0.5, 5)),
    }
    if rng.random() < 0.2:
        record["text"] = " ".join(rng.choice(words) for _ in range(rng.randint(20, 200)))
    if status == "failed":
        record["error"] = {"code": "undecodable_image", "message": "bench", "step": "fetch_image_metadata"}
    return record


def build(path: Path, n: int, seed: int) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Create the store at ``path`` with ``n`` records; returns (store, build facts, a sample of records)."""
    from imagepipe.adapters.sqlite_records import SqliteRecordStore

    rng = random.Random(seed)
    tags = vocabulary(rng, 400)
    words = vocabulary(rng, 3000)
    store = SqliteRecordStore(str(path))
    conn: sqlite3.Connection = store._conn()
    sample: list[dict[str, Any]] = []
    started = time.perf_counter()
    batch = 1000
    for first in range(0, n, batch):
        records = [make_record(i, rng, tags, words) for i in range(first, min(n, first + batch))]
        conn.execute("BEGIN IMMEDIATE")
        for record in records:
            store._write(conn, record["id"], record, json_dumps(record))
        conn.execute("COMMIT")
        sample.extend(records[:: max(1, n // 2000)][:20])
    build_s = time.perf_counter() - started
    facts = {
        "records": n,
        "buildSeconds": round(build_s, 1),
        "recordsPerSecond": round(n / build_s),
        "fileMiB": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1),
        "withText": conn.execute("SELECT count(*) FROM records_fts").fetchone()[0],
        "tagVocabulary": len(tags),
    }
    return store, facts, sample


def json_dumps(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Milliseconds of ``repeat`` calls of ``fn`` (after one untimed call); returns (times, last result)."""
    result = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def run(n: int, repeat: int, seed: int) -> dict[str, Any]:
    from imagepipe.ports import SearchQuery

    rng = random.Random(seed + 1)
    with tempfile.TemporaryDirectory(prefix="imagepipe-queries-") as tmp:
        store, facts, sample = build(Path(tmp) / "records.sqlite3", n, seed)
        print(f"built: {facts}", flush=True)
        tags = [t for r in sample for t in r["tags"]]
        texts = [r["text"].split() for r in sample if r.get("text")]
        queries: dict[str, Callable[[], Any]] = {
            "getById": lambda: store.get(rng.choice(sample)["id"]),
            "searchProfile": lambda: store.search(SearchQuery(profile=rng.choice(PROFILES), limit=50)),
            "searchTag": lambda: store.search(SearchQuery(tag=rng.choice(tags), limit=50)),
            "searchTagAndProfile": lambda: store.search(
                SearchQuery(tag=rng.choice(tags), profile=rng.choice(PROFILES), limit=50)
            ),
            "searchLabel": lambda: store.search(SearchQuery(label=rng.choice(LABELS), limit=50)),
            "searchText": lambda: store.search(SearchQuery(text=" ".join(rng.choice(texts)[:2]), limit=50)),
            "searchStatusTimeRange": lambda: store.search(
                SearchQuery(
                    status=rng.choice(("completed", "failed")),
                    created_from=(start := EPOCH + timedelta(days=rng.uniform(0, SPAN_DAYS - 3))),
                    created_to=start + timedelta(days=2),
                    limit=50,
                )
            ),
            "nearDuplicateScan": lambda: store.near_duplicates(
                rng.choice(sample)["image"]["phash"], max_distance=6, exclude_id="none"
            ),
        }
        repeats = {"nearDuplicateScan": max(5, repeat // 10)}
        results: dict[str, Any] = {}
        for name, fn in queries.items():
            times, last = timed(fn, repeats.get(name, repeat))
            results[name] = {"latencyMs": summarize(times, 3)}
            print(f"{name}: {results[name]}", flush=True)

        def walk() -> int:
            token: str | None = None
            count = 0
            for _ in range(10):
                page = store.search(SearchQuery(profile=rng.choice(PROFILES), limit=50, continuation=token))
                count += len(page.items)
                token = page.continuation
                if token is None:
                    break
            return count

        times, count = timed(walk, max(5, repeat // 5))
        results["pagedWalk10x50"] = {"latencyMs": summarize(times, 3), "itemsPerWalk": count}

        extra = random.Random(seed + 2)
        words = vocabulary(extra, 3000)
        fresh = [make_record(n + i, extra, sorted(set(tags)), words) for i in range(repeat)]
        it = iter(fresh)
        write_times, _ = timed(lambda: store.upsert_if_not_older(next(it)), repeat - 1)
        results["upsertOne"] = {"latencyMs": summarize(write_times, 3)}
        store.close()
    return {
        "benchmark": "sqlite-record-queries",
        "machine": machine_facts(),
        "sqlite": sqlite3.sqlite_version,
        "store": facts,
        "repeat": repeat,
        "queries": results,
        "notes": [
            "each search asks for 50 items (the API default), newest first; parameters vary per call "
            "(random profile/tag/label/words of an existing record's OCR text/2-day window)",
            "searchTag draws tags from records, so common tags dominate (Zipf-like vocabulary of 400); "
            "searchTagAndProfile combines such a tag with a random profile",
            "nearDuplicateScan is a full scan with a Python Hamming-distance UDF over every pHash",
            "pagedWalk10x50 = 10 pages of 50 through continuation tokens, one profile",
            "build = the store's own write path (_write), 1,000 records per transaction; upsertOne = the public "
            "upsert_if_not_older, one transaction each (WAL, synchronous=NORMAL)",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "queries.json")
    args = parser.parse_args(argv)
    result = run(args.records, args.repeat, args.seed)
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
