"""Smoke test of the benchmark modules: they import, and their pure helpers compute what they should."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import bench_pipeline, bench_queries
from bench.common import parse_ts, peak_rss_mib, percentile, summarize

pytestmark = pytest.mark.unit


def test_percentile_interpolates_like_numpy() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([1.0, 2.0], 25) == pytest.approx(1.25)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize() -> None:
    assert summarize([]) == {"n": 0}
    assert summarize([1.0, 2.0, 3.0, 4.0]) == {"n": 4, "p50": 2.5, "p95": 3.85, "max": 4.0, "mean": 2.5}


def test_parse_ts_handles_z_offsets_and_fraction_lengths() -> None:
    assert parse_ts("1970-01-01T00:00:01Z") == 1.0
    assert parse_ts("1970-01-01T00:00:01.5Z") == 1.5
    assert parse_ts("1970-01-01T00:00:01.123456789Z") == pytest.approx(1.123456)
    assert parse_ts("1970-01-01T01:00:02.250+01:00") == 2.25


def test_peak_rss_of_this_process() -> None:
    rss = peak_rss_mib()
    assert rss is not None and rss > 1
    assert peak_rss_mib(2**31) is None


def test_run_overhead_from_history_and_log() -> None:
    status = {
        "instanceId": "i1",
        "createdTime": "2026-01-01T00:00:00Z",
        "lastUpdatedTime": "2026-01-01T00:00:01Z",
        "historyEvents": [
            {"EventType": "ExecutionStarted", "Timestamp": "2026-01-01T00:00:00.100000Z"},
            {"EventType": "TaskCompleted", "Timestamp": "2026-01-01T00:00:00.400000Z"},
            {"EventType": "ExecutionCompleted", "Timestamp": "2026-01-01T00:00:00.600000Z"},
        ],
    }
    log = "\n".join(
        [
            "devhost: started",
            '{"function": "analyze_image", "instanceId": "i1", "durationMs": 300.0}',
            '{"function": "persist_record", "instanceId": "i1", "durationMs": 150.0}',
            '{"function": "image_pipeline", "instanceId": "i1", "durationMs": 20.0}',
            '{"function": "analyze_image", "instanceId": "other", "durationMs": 999.0}',
            "{not json",
        ]
    )
    out = bench_pipeline.run_overhead(status, bench_pipeline.executions_by_instance(log))
    assert out["totalMs"] == pytest.approx(500.0)
    assert out["activityExecMs"] == pytest.approx(450.0)
    assert out["overheadMs"] == pytest.approx(50.0)
    assert out["orchestratorEpisodeMs"] == pytest.approx(20.0)
    # without history the whole-second createdTime / lastUpdatedTime are used
    start, end = bench_pipeline.run_window(
        {"createdTime": "2026-01-01T00:00:00Z", "lastUpdatedTime": "2026-01-01T00:00:02Z"}
    )
    assert end - start == 2.0


def test_samples_cycle_with_profiles() -> None:
    samples = bench_pipeline.load_samples(Path(__file__).resolve().parents[2] / "samples")
    assert samples and all(s.content_type.startswith("image/") for s in samples)
    assert {s.profile for s in samples} >= {"general", "insurance"}
    cycled = bench_pipeline.cycle(samples, len(samples) * 2 + 1)
    assert cycled[len(samples)] == samples[0] and len(cycled) == len(samples) * 2 + 1


def test_synthetic_record_shape() -> None:
    rng = random.Random(1)
    tags, words = bench_queries.vocabulary(rng, 50), bench_queries.vocabulary(rng, 100)
    records = [bench_queries.make_record(i, rng, tags, words) for i in range(200)]
    assert len({r["id"] for r in records}) == 200
    assert all(len(r["image"]["phash"]) == 16 and r["tags"] for r in records)
    assert 10 < sum(1 for r in records if r.get("text")) < 80
    assert bench_queries.ts(1.5) == "2026-01-01T00:00:01.500Z"


def test_main_rejects_unknown_benchmark() -> None:
    assert bench_main.main(["nope"]) == 2
    assert bench_main.main(["all", "--images", "3"]) == 2
