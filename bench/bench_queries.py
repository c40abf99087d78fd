"""Record-store query benchmark: both stores at ``--records`` (default 100k) and ``--small`` (10k) records.

The records have the real shape (profile, status, blob facts, image facts with a random 64-bit pHash, tags,
labels, OCR text for 20 %, timestamps over 30 days). Part 1 (``queries``): the SQLite store at the large
size, written through its own write path (``bulk_write``, 1,000 records per transaction; build time
reported); each query is repeated and its latency reported as p50/p95: point get, search by profile / tag /
label / text (FTS5) / status + time range, a paged walk of 10 pages, the keyed near-duplicate lookup, plus
single-record upserts.

Part 2 (``scaling``): at both sizes, with the same planted needles (10 target pHashes with 4 near-duplicates
each at distances 1..6, a word pair in 20 records), the near-duplicate lookup and text search in both
stores: SQLite latency and candidate rows; Cosmos DB through the real SDK over the fake gateway
(tests/fakes/cosmos_transport.py, documents loaded straight into its container), cost as the documents
each query examines (the fake's index model). Each figure carries the ratio large/small: the keyed lookup
(multi-index hashing, docs/records.md) and the indexed text search stay near 1 while the full scans they
replace grow with the record count. The expected chance candidates per lookup are computed next to the
measured ones.
Writes ``bench/results/queries.json``.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sqlite3
import statistics
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


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Milliseconds of ``repeat`` calls of ``fn`` (after one untimed call); returns (times, last result)."""
    result = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def suite(store: Any, n: int, sample: list[dict[str, Any]], repeat: int, seed: int) -> dict[str, Any]:
    """Part 1: latency of every API query shape on the SQLite store holding ``n`` records."""
    from imagepipe.ports import SearchQuery

    rng = random.Random(seed + 1)
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
        "nearDuplicates": lambda: store.near_duplicates(
            rng.choice(sample)["image"]["phash"], max_distance=6, exclude_id="none"
        ),
        "nearDuplicateFullScan": lambda: store.near_duplicates(
            rng.choice(sample)["image"]["phash"], max_distance=12, exclude_id="none"
        ),
    }
    repeats = {"nearDuplicateFullScan": max(5, repeat // 10)}
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
    return results


# ---------------------------------------------------------------------------------------------------
# Scaling: the same needles in a small and a large corpus, both stores
# ---------------------------------------------------------------------------------------------------

NEEDLE_WORDS = "quartzneedle vellumprobe"
NEEDLE_TEXTS = 20
NEEDLE_TARGETS = 10
NEEDLE_DISTANCES = (1, 3, 5, 6)


def needles(seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Records planted in every corpus: pHash targets with near-duplicates, and a word pair in 20 texts."""
    rng = random.Random(seed + 99)
    tags, words = vocabulary(rng, 50), vocabulary(rng, 500)
    planted: list[dict[str, Any]] = []
    targets = [rng.getrandbits(64) for _ in range(NEEDLE_TARGETS)]
    for t, target in enumerate(targets):
        for k, distance in enumerate((0, *NEEDLE_DISTANCES)):
            record = make_record(10**12 + t * 10 + k, rng, tags, words)
            flips = rng.sample(range(64), distance)
            record["image"]["phash"] = f"{target ^ sum(1 << b for b in flips):016x}"
            planted.append(record)
    for i in range(NEEDLE_TEXTS):
        record = make_record(2 * 10**12 + i, rng, tags, words)
        record["text"] = " ".join(rng.choice(words) for _ in range(40)) + " " + NEEDLE_WORDS
        planted.append(record)
    return planted, targets


def corpus(n: int, seed: int) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """``n`` records (the planted needles included) and the word lists of some random OCR texts."""
    rng = random.Random(seed)
    tags, words = vocabulary(rng, 400), vocabulary(rng, 3000)
    planted, _ = needles(seed)
    records = [make_record(i, rng, tags, words) for i in range(n - len(planted))] + planted
    texts = [r["text"].split() for r in records[:5000] if r.get("text")][:200]
    return records, texts


def chance_candidates(n: int, max_distance: int) -> float:
    """Expected records per lookup that share a probe key with the target by chance, among ``n`` random
    pHashes: a record matches when one of its halves lies within ``WRITE_RADIUS + probe_radius(d)`` bits of
    the target's half (docs/records.md)."""
    from imagepipe.adapters.records_common import HALF_BITS, PHASH_HALVES, WRITE_RADIUS, probe_radius

    reach = WRITE_RADIUS + probe_radius(max_distance)
    per_half = sum(math.comb(HALF_BITS, k) for k in range(reach + 1)) / 2**HALF_BITS
    return float(n * (1 - (1 - per_half) ** PHASH_HALVES))


def sqlite_scaling(store: Any, texts: list[list[str]], targets: list[int], repeat: int) -> Any:
    from imagepipe.adapters.records_common import probe_key_ints
    from imagepipe.ports import SearchQuery

    rng = random.Random(5)
    hits: list[int] = []
    candidates: list[int] = []
    with store._connection() as conn:
        n = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        for target in targets:
            candidates.append(len(store._candidates(conn, target, 6)))

        def bound_parameters(target: int) -> int:
            # The alternative to one json_each() parameter: IN lists of bound parameters, 500 per statement.
            keys, found = probe_key_ints(target, 6) or [], set()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                found |= {
                    row[0]
                    for row in conn.execute(
                        "SELECT rid FROM record_phash_keys WHERE key IN (" + ",".join("?" * len(chunk)) + ")", chunk
                    )
                }
            return len(found)

        def json_each(target: int) -> int:
            return len(store._candidates(conn, target, 6))

        def variant(fn: Callable[[int], int]) -> dict[str, Any]:
            probe = iter(targets * (repeat * 2))
            return {"latencyMs": summarize(timed(lambda: fn(next(probe)), repeat)[0], 3)}

        variants = {"jsonEach": variant(json_each), "boundParameters500": variant(bound_parameters)}
    cycle = iter(targets * (repeat * 2))

    def near() -> None:
        hits.append(len(store.near_duplicates(f"{next(cycle):016x}", max_distance=6, exclude_id="none")))

    near_ms, _ = timed(near, repeat)
    wide = iter(targets * repeat)
    wide_ms, _ = timed(
        lambda: store.near_duplicates(f"{next(wide):016x}", max_distance=8, exclude_id="none"), max(3, repeat // 5)
    )
    scan_ms, _ = timed(
        lambda: store.near_duplicates(f"{targets[0]:016x}", max_distance=12, exclude_id="none"),
        max(3, repeat // 10),
    )
    needle_ms, found = timed(lambda: store.search(SearchQuery(text=NEEDLE_WORDS, limit=50)), repeat)
    random_ms, _ = timed(lambda: store.search(SearchQuery(text=" ".join(rng.choice(texts)[:2]), limit=50)), repeat)
    return {
        "nearDuplicates": {
            "latencyMs": summarize(near_ms, 3),
            "hitsPerLookup": statistics.fmean(hits),
            "candidatesPerLookup": statistics.fmean(candidates),
            "chanceCandidatesPerLookup": round(statistics.fmean(candidates) - statistics.fmean(hits), 2),
            "expectedChanceCandidates": round(chance_candidates(n, 6), 3),
        },
        "candidateReadVariants": variants,
        "nearDuplicatesDistance8": {"latencyMs": summarize(wide_ms, 3)},
        "nearDuplicateFullScan": {"latencyMs": summarize(scan_ms, 3)},
        "textNeedle": {"latencyMs": summarize(needle_ms, 3), "hits": len(found.items)},
        "textRandomPair": {"latencyMs": summarize(random_ms, 3)},
    }


def cosmos_scaling(records: list[dict[str, Any]], texts: list[list[str]], targets: list[int], repeat: int) -> Any:
    from imagepipe.adapters.cosmos_records import CosmosRecordStore, _stored_form
    from imagepipe.ports import SearchQuery
    from tests.fakes.cosmos_transport import FakeCosmosTransport
    from tests.fakes.credentials import StaticCredential

    endpoint = "https://bench.documents.azure.com:443/"
    transport = FakeCosmosTransport(full_text_paths=["/text"])
    container = transport.databases["imagepipe"]["images"]
    for i, record in enumerate(records):
        container[record["id"]] = _stored_form(record) | {"_rid": f"r{i}", "_etag": f'"e{i}"', "_ts": 0}
    fulltext = CosmosRecordStore(endpoint, "imagepipe", "images", StaticCredential(), transport=transport)
    contains = CosmosRecordStore(
        endpoint, "imagepipe", "images", StaticCredential(), transport=transport, text_search="contains"
    )
    rng = random.Random(5)

    def cost(fn: Callable[[], Any], times: int) -> dict[str, Any]:
        examined: list[float] = []
        for _ in range(times):
            transport.query_costs.clear()
            fn()
            examined.append(sum(c.examined for c in transport.query_costs))
        return {"documentsExamined": summarize(examined, 1)}

    cycle = iter(targets * (repeat * 2))
    queries: list[float] = []

    def near() -> None:
        transport.query_costs.clear()
        fulltext.near_duplicates(f"{next(cycle):016x}", max_distance=6, exclude_id="none")
        queries.append(len(transport.query_costs))

    out = {
        "nearDuplicates": cost(near, 5) | {"queriesPerLookup": summarize(queries, 1)},
        "nearDuplicateFullScan": cost(
            lambda: fulltext.near_duplicates(f"{targets[0]:016x}", max_distance=12, exclude_id="none"), 1
        ),
        "textNeedleFullText": cost(lambda: fulltext.search(SearchQuery(text=NEEDLE_WORDS, limit=50)), 1),
        "textNeedleContains": cost(lambda: contains.search(SearchQuery(text=NEEDLE_WORDS, limit=50)), 1),
        "textRandomPairFullText": cost(
            lambda: fulltext.search(SearchQuery(text=" ".join(rng.choice(texts)[:2]), limit=50)), 5
        ),
    }
    transport.databases.clear()
    return out


def ratios(small: Any, large: Any) -> Any:
    """large/small for every numeric leaf (p50 for summaries)."""
    if isinstance(small, dict) and "p50" in small:
        return round(large["p50"] / small["p50"], 2) if small["p50"] else None
    if isinstance(small, dict):
        return {k: ratios(v, large[k]) for k, v in small.items() if k in large and k not in ("n",)}
    if isinstance(small, (int, float)) and not isinstance(small, bool):
        return round(large / small, 2) if small else None
    return None


def scaling_and_suite(sizes: tuple[int, int], repeat: int, seed: int) -> dict[str, Any]:
    """Both parts: each corpus is built once; the large one also serves the latency suite."""
    from imagepipe.adapters.sqlite_records import SqliteRecordStore

    _, targets = needles(seed)
    out: dict[str, Any] = {"sizes": list(sizes), "sqlite": {}, "cosmosFake": {}}
    small_repeat = max(10, repeat // 4)
    facts: dict[str, Any] = {}
    queries: dict[str, Any] = {}
    for n in sizes:
        started = time.perf_counter()
        records, texts = corpus(n, seed)
        with tempfile.TemporaryDirectory(prefix="imagepipe-queries-") as tmp:
            path = Path(tmp) / "records.sqlite3"
            store = SqliteRecordStore(str(path))
            built = time.perf_counter()
            store.bulk_write(records)
            build_s = time.perf_counter() - built
            print(f"{n}: built SQLite in {build_s:.1f}s", flush=True)
            out["sqlite"][str(n)] = sqlite_scaling(store, texts, targets, small_repeat)
            if n == sizes[-1]:
                with store._connection() as conn:
                    with_text = conn.execute("SELECT count(*) FROM records_fts").fetchone()[0]
                facts = {
                    "records": n,
                    "buildSeconds": round(build_s, 1),
                    "recordsPerSecond": round(n / build_s),
                    "fileMiB": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1),
                    "withText": with_text,
                }
                queries = suite(store, n, records[:: max(1, n // 400)], repeat, seed)
            store.close()
        out["cosmosFake"][str(n)] = cosmos_scaling(records, texts, targets, small_repeat)
        del records
        gc.collect()
        print(f"{n}: done in {time.perf_counter() - started:.1f}s", flush=True)
    small, large = (str(n) for n in sizes)
    for name in ("sqlite", "cosmosFake"):
        out[name]["ratioLargeToSmall"] = ratios(out[name][small], out[name][large])
    return {"store": facts, "queries": queries, "scaling": out}


def run_all(n: int, small: int, repeat: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    parts = scaling_and_suite((small, n), repeat, seed)
    return {
        "benchmark": "record-queries",
        "machine": machine_facts(),
        "sqlite": sqlite3.sqlite_version,
        "store": parts["store"],
        "repeat": repeat,
        "queries": parts["queries"],
        "scaling": parts["scaling"],
        "totalSeconds": round(time.perf_counter() - started, 1),
        "notes": [
            "each search asks for 50 items (the API default), newest first; parameters vary per call "
            "(random profile/tag/label/words of an existing record's OCR text/2-day window)",
            "searchTag draws tags from records, so common tags dominate (Zipf-like vocabulary of 400); "
            "searchTagAndProfile combines such a tag with a random profile",
            "nearDuplicates = the keyed lookup at distance 6 (66 keys stored per record, 1,058 probed, candidates "
            "verified); nearDuplicatesDistance8 probes 10,978 keys; nearDuplicateFullScan = distance 12, where the "
            "stores scan every pHash (they scan from distance 10 on)",
            "pagedWalk10x50 = 10 pages of 50 through continuation tokens, one profile",
            "build = bulk_write, 1,000 records per transaction; upsertOne = the public upsert_if_not_older, "
            "one transaction each (WAL, synchronous=NORMAL)",
            "scaling: same planted needles at both sizes (10 pHash targets x 4 near-duplicates at distance 1..6; "
            "a word pair in 20 texts); ratioLargeToSmall = large/small (p50 for latencies)",
            "scaling.cosmosFake: documentsExamined per call from the fake gateway's index model (indexed "
            "predicate: its matching documents; otherwise the documents walked), a proxy for RU, not RU",
            "candidatesPerLookup = records sharing a probe key with the target (hits + chance); "
            "expectedChanceCandidates = N x 2 x 5,489 / 2^32 at distance 6 (docs/records.md); "
            "candidateReadVariants: the store's one json_each() parameter against IN lists of 500 bound parameters",
            "scaling.cosmosFake.nearDuplicates: 3 probe queries of at most 500 keys (1,058 in all) + 1 read of the "
            "hits; documentsExamined counts a document once per probe query that matches it",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="the smaller corpus of the scaling part")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "queries.json")
    args = parser.parse_args(argv)
    result = run_all(args.records, args.small, args.repeat, args.seed)
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
