"""Devhost engine benchmark: no-op activities through the Durable engine, as a chain and as a fan-out/fan-in.

Starts the devhost as a subprocess on ``tests/devhost/apps/noop_app`` (no storage, no auth), warms it with a
short chain, then runs chains of ``--chains`` no-op activities (one activity per episode: the cost of history
length shows here) and fan-out/fan-in of ``--fans`` (completions batched into episodes). Each run is timed on
the host's own clock: from the ``ExecutionStarted`` to the ``ExecutionCompleted`` history event (microsecond
timestamps), so client polling does not blur short runs; the client-side wall time is kept beside it.

The SDK replays the whole history in every episode (it parses each event's timestamp with dateutil), so part of
the cost grows with history whatever the host does. The benchmark splits each run with the devhost's own
execution log: ``sdkMs`` is the time spent inside the orchestrator function (the SDK's replay and the user
code), ``activityMs`` inside activities, and ``hostMs`` the rest: the host's own work (task hub, dispatch).

Writes ``bench/results/devhost.json``: ms per activity per chain length (total and the host's own share),
activities/s per fan-out size, and the issue's targets (chain of 200 at <= 5 ms/activity, fan-out of 1,000 at
>= 500 activities/s, per-activity cost flat: chain 200 / chain 20 <= 1.5), plus the host's own share of them.
"""

from __future__ import annotations

import argparse
import json
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
    total_s = parse_ts(last["Timestamp"]) - parse_ts(first["Timestamp"])
    sdk_ms, activity_ms = function_ms(host.log, iid, orchestrator)
    return {
        "n": n,
        "hostSeconds": round(total_s, 4),
        "wallSeconds": round(wall, 3),
        "sdkMs": round(sdk_ms, 1),
        "activityMs": round(activity_ms, 1),
        # a chain's activities run one at a time, between episodes; a fan's overlap with each other and episodes
        "hostMs": round(max(0.0, 1000 * total_s - sdk_ms - (activity_ms if orchestrator == "noop_chain" else 0)), 1),
    }


def function_ms(log: Path, instance_id: str, orchestrator: str) -> tuple[float, float]:
    """Milliseconds the devhost logged for the instance's orchestrator and activity executions."""
    sdk = activity = 0.0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if instance_id not in line or not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("instanceId") != instance_id:
            continue
        if rec.get("function") == orchestrator:
            sdk += float(rec.get("durationMs", 0.0))
        else:
            activity += float(rec.get("durationMs", 0.0))
    return sdk, activity


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
                    row["hostMsPerActivity"] = round(row["hostMs"] / n, 2)
                    row["sdkMsPerActivity"] = round(row["sdkMs"] / n, 2)
                    result["chains"].append(row)
                    print(
                        f"chain {n:>5}: {row['msPerActivity']:8.2f} ms/activity (SDK {row['sdkMsPerActivity']:.2f}, "
                        f"host {row['hostMsPerActivity']:.2f}; {row['wallSeconds']} s wall)"
                    )
                for n in fans:
                    row = run_one(host, session, "noop_fan", n, args.timeout)
                    row["activitiesPerSecond"] = round(n / max(row["hostSeconds"], 1e-6), 1)
                    row["hostMsPerActivity"] = round(row["hostMs"] / n, 2)
                    result["fans"].append(row)
                    print(
                        f"fan   {n:>5}: {row['activitiesPerSecond']:8.1f} activities/s (SDK {row['sdkMs']:.0f} ms, "
                        f"host {row['hostMs']:.0f} ms; {row['wallSeconds']} s wall)"
                    )
        finally:
            host.stop()
    per = {row["n"]: row["msPerActivity"] for row in result["chains"]}
    fan = {row["n"]: row["activitiesPerSecond"] for row in result["fans"]}
    own = {row["n"]: row["hostMsPerActivity"] for row in result["chains"]}
    ratio = round(per[200] / per[20], 2) if 200 in per and 20 in per and per[20] > 0 else None
    own_ratio = round(own[200] / own[20], 2) if 200 in own and 20 in own and own[20] > 0 else None
    result["targets"] = [
        target("chain of 200 no-op activities", per.get(200), 5, "ms/activity"),
        target("fan-out/fan-in of 1,000 no-op activities", fan.get(1000), 500, "act/s", higher_is_better=True),
        target("per-activity cost ratio chain 200 / chain 20", ratio, 1.5, "x"),
        target("host's own cost (no SDK replay) chain 200", own.get(200), 5, "ms/activity"),
        target("host's own cost ratio chain 200 / chain 20", own_ratio, 1.5, "x"),
    ]
    write_result(RESULTS / "devhost.json", result)
    return 0
