"""Helpers shared by the benchmarks: percentiles and summaries, machine facts, memory, time parsing, JSON out."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """``{n, p50, p95, max, mean}`` of ``values`` (rounded); ``{n: 0}`` when empty."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "max": round(max(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


def parse_ts(value: str) -> float:
    """POSIX seconds of an ISO-8601 timestamp (``Z`` or offset; any number of fraction digits)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:  # fromisoformat wants at most 6 fraction digits
        head, _, rest = text.partition(".")
        count = next((i for i, ch in enumerate(rest) if not ch.isdigit()), len(rest))
        digits, zone = rest[:count], rest[count:]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    return datetime.fromisoformat(text).timestamp()


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """Peak resident set size (``VmHWM`` of /proc/<pid>/status) in MiB, or None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _stat_fields(path: Path) -> list[str]:
    """The fields of a ``/proc/.../stat`` file after the command name (field 3 onwards)."""
    return path.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (all its threads)."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of process group ``pgid`` (exited ones are not counted)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry / "stat")
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_facts() -> dict[str, Any]:
    """CPU count, CPU model, memory, platform and Python version of this machine."""
    facts: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                facts["cpuModel"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                facts["memTotalGiB"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
        facts["loadAvg1mAtStart"] = round(os.getloadavg()[0], 2)
    except (OSError, ValueError, IndexError):
        pass
    return facts


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as indented JSON, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def target(
    name: str, measured: float | None, limit: float, unit: str, *, higher_is_better: bool = False
) -> dict[str, Any]:
    """One row of a benchmark's ``targets`` list: what was measured against the issue's limit, and whether it met it.

    Every benchmark puts its rows under ``result["targets"]``; ``python -m bench`` prints them as one table.
    ``measured`` None means the benchmark could not measure it (counted as not met)."""
    met = measured is not None and (measured >= limit if higher_is_better else measured <= limit)
    return {
        "name": name,
        "measured": measured,
        "target": f"{'>=' if higher_is_better else '<='} {limit:g} {unit}".strip(),
        "unit": unit,
        "met": met,
    }


def targets_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table of ``(benchmark, target row)`` pairs."""
    lines = [f"{'benchmark':<10} {'target':<52} {'measured':>12} {'goal':>16}  met"]
    for bench_name, row in rows:
        measured = row.get("measured")
        shown = "-" if measured is None else f"{measured:g}"
        lines.append(
            f"{bench_name:<10} {row.get('name', '?')[:52]:<52} {shown:>12} {row.get('target', ''):>16}  "
            f"{'yes' if row.get('met') else 'NO'}"
        )
    return "\n".join(lines)
