"""Operational statistics over a time window, from run summaries (``imagepipe.operators.runs.summarize``).

Latency is ``lastUpdatedTime - createdTime`` of finished runs (queueing + processing, as a client sees it);
throughput counts runs that finished inside the window. The series splits the window into equal buckets
for the dashboard's chart.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from imagepipe.timeutil import iso, millis_between, parse_time
from imagepipe.vocabulary import ACTIVE_STATUSES

PERCENTILES = (50, 90, 95, 99)
MAX_BUCKETS = 30


def percentile(values: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def latency_summary(values: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"count": len(values)}
    for pct in PERCENTILES:
        value = percentile(values, pct)
        out[f"p{pct}"] = None if value is None else round(value)
    out["max"] = round(max(values)) if values else None
    out["mean"] = round(sum(values) / len(values)) if values else None
    return out


def failure_key(error: dict[str, Any] | None) -> tuple[str, str]:
    error = error or {}
    return (str(error.get("step") or "run"), str(error.get("code") or "failed"))


def compute_stats(summaries: list[dict[str, Any]], now: datetime, window_minutes: int) -> dict[str, Any]:
    """Counts by status and stage, ranked failure reasons, throughput, latency percentiles and a series."""
    start = now - timedelta(minutes=window_minutes)
    in_window = [s for s in summaries if (parse_time(s.get("createdTime")) or start) >= start]
    finished: list[tuple[datetime, dict[str, Any], float]] = []
    for summary in summaries:
        if summary.get("runtimeStatus") in ACTIVE_STATUSES:
            continue
        end = parse_time(summary.get("lastUpdatedTime"))
        created = parse_time(summary.get("createdTime"))
        if end is None or end < start or end > now + timedelta(minutes=1):
            continue
        finished.append((end, summary, float(millis_between(created, end) or 0)))

    by_status = Counter(str(s.get("runtimeStatus")) for s in in_window)
    by_stage = Counter(str(s.get("stage") or str(s.get("runtimeStatus") or "unknown").lower()) for s in in_window)

    reasons: dict[tuple[str, str], dict[str, Any]] = {}
    for summary in in_window:
        if summary.get("runtimeStatus") != "Failed":
            continue
        step, code = failure_key(summary.get("error"))
        entry = reasons.setdefault(
            (step, code),
            {
                "step": step,
                "code": code,
                "count": 0,
                "example": (summary.get("error") or {}).get("message"),
                "instanceIds": [],
            },
        )
        entry["count"] += 1
        if len(entry["instanceIds"]) < 5:
            entry["instanceIds"].append(summary.get("instanceId"))
    ranked = sorted(reasons.values(), key=lambda r: (-r["count"], r["step"], r["code"]))

    completed = [lat for _, s, lat in finished if s.get("runtimeStatus") == "Completed"]
    failed = [lat for _, s, lat in finished if s.get("runtimeStatus") == "Failed"]

    buckets = min(MAX_BUCKETS, max(1, window_minutes))
    width = timedelta(minutes=window_minutes) / buckets
    series: list[dict[str, Any]] = []
    for index in range(buckets):
        b_start = start + width * index
        b_end = b_start + width
        last = index == buckets - 1
        rows = [(s, lat) for end, s, lat in finished if b_start <= end < b_end or (last and end >= b_end)]
        done = [lat for s, lat in rows if s.get("runtimeStatus") == "Completed"]
        series.append(
            {
                "start": iso(b_start),
                "end": iso(b_end),
                "completed": len(done),
                "failed": sum(1 for s, _ in rows if s.get("runtimeStatus") == "Failed"),
                "started": sum(
                    1
                    for s in in_window
                    if b_start <= (parse_time(s.get("createdTime")) or start) < b_end
                    or (last and (parse_time(s.get("createdTime")) or start) >= b_end)
                ),
                "p50Ms": None if not done else round(percentile(done, 50) or 0),
                "p95Ms": None if not done else round(percentile(done, 95) or 0),
            }
        )

    return {
        "windowMinutes": window_minutes,
        "from": iso(start),
        "to": iso(now),
        "total": len(in_window),
        "byStatus": dict(sorted(by_status.items())),
        "byStage": dict(sorted(by_stage.items())),
        "failureReasons": ranked,
        "throughput": {
            "completed": len(completed),
            "failed": len(failed),
            "perMinute": round(len(completed) / window_minutes, 3) if window_minutes else None,
        },
        "latencyMs": {"completed": latency_summary(completed), "failed": latency_summary(failed)},
        "series": series,
        "bucketSeconds": int(width.total_seconds()),
    }
