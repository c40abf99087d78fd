"""Devhost engine benchmark: no-op activities through the Durable engine, as a chain and as a fan-out/fan-in.

Starts the devhost as a subprocess on ``tests/devhost/apps/noop_app`` (no storage, no auth), warms it with a
short chain, then runs chains of ``--chains`` no-op activities (one activity per episode: the cost of history
length shows here) and fan-out/fan-in of ``--fans`` (completions batched into episodes). Each run is timed on
the host's own clock: from the ``ExecutionStarted`` to the ``ExecutionCompleted`` history event (microsecond
timestamps), so client polling does not blur short runs; the client-side wall time is kept beside it.

Writes ``bench/results/devhost.json``: ms per activity per chain length, activities/s per fan-out size, and
the issue's targets (chain of 200 at <= 5 ms/activity, fan-out of 1,000 at >= 500 activities/s, and per-activity
cost flat: chain 200 / chain 20 <= 1.5).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import RESULTS, machine_facts, parse_ts, target, write_result
from tests.devhost.harness import APPS, Devhost

BASE = "/runtime/webhooks/durabletask"


def run_one(host: Devhost, session: requests.Session, orchestrator: str, n: int, timeout_s: float) -> dict[str, Any]:
    """Start ``orchestrator`` with ``{"n": n}``, wait until it ends; its host-side and wall durations."""
    started = time.monotonic()
    r = session.post(f"{host.base}{BASE}/orchestrators/{orchestrator}", json={"n": n}, timeout=30)
    r.raise_for_status()
    iid = r.json()["id"]
    url = f"{host.base}{BASE}/instances/{iid}"
    while True:
        body = session.get(url, params={"showInput": "false"}, timeout=30).json()
        if body["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
            break
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{orchestrator}({n}) did not finish in {timeout_s:.0f} s: {body}")
        time.sleep(0.05)
    wall = time.monotonic() - started
    if body["runtimeStatus"] != "Completed":
        raise RuntimeError(f"{orchestrator}({n}) ended {body['runtimeStatus']}: {body.get('output')}")
    events = session.get(url, params={"showHistory": "true"}, timeout=60).json()["historyEvents"]
    first = next(e for e in events if e["EventType"] == "ExecutionStarted")
    last = next(e for e in events if e["EventType"] == "ExecutionCompleted")
    host_s = parse_ts(last["Timestamp"]) - parse_ts(first["Timestamp"])
    return {"n": n, "hostSeconds": round(host_s, 4), "wallSeconds": round(wall, 3)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench devhost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default="20,60,200", help="chain lengths (comma-separated)")
    parser.add_argument("--fans", default="100,1000", help="fan-out/fan-in sizes (comma-separated)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    args = parser.parse_args(argv)
    chains = [int(x) for x in args.chains.split(",") if x]
    fans = [int(x) for x in args.fans.split(",") if x]
    result: dict[str, Any] = {"machine": machine_facts(), "chains": [], "fans": []}
    with tempfile.TemporaryDirectory(prefix="bench-devhost-") as tmp:
        host = Devhost(APPS / "noop_app", Path(tmp) / "state").start()
        try:
            with requests.Session() as session:
                run_one(host, session, "noop_chain", 5, args.timeout)  # warm-up: imports, first episodes
                for n in chains:
                    row = run_one(host, session, "noop_chain", n, args.timeout)
                    row["msPerActivity"] = round(1000 * row["hostSeconds"] / n, 2)
                    result["chains"].append(row)
                    print(f"chain {n:>5}: {row['msPerActivity']:8.2f} ms/activity ({row['wallSeconds']} s wall)")
                for n in fans:
                    row = run_one(host, session, "noop_fan", n, args.timeout)
                    row["activitiesPerSecond"] = round(n / max(row["hostSeconds"], 1e-6), 1)
                    result["fans"].append(row)
                    print(f"fan   {n:>5}: {row['activitiesPerSecond']:8.1f} activities/s ({row['wallSeconds']} s wall)")
        finally:
            host.stop()
    per = {row["n"]: row["msPerActivity"] for row in result["chains"]}
    fan = {row["n"]: row["activitiesPerSecond"] for row in result["fans"]}
    ratio = round(per[200] / per[20], 2) if 200 in per and 20 in per and per[20] > 0 else None
    result["targets"] = [
        target("chain of 200 no-op activities", per.get(200), 5, "ms/activity"),
        target("fan-out/fan-in of 1,000 no-op activities", fan.get(1000), 500, "act/s", higher_is_better=True),
        target("per-activity cost ratio chain 200 / chain 20", ratio, 1.5, "x"),
    ]
    write_result(RESULTS / "devhost.json", result)
    return 0
