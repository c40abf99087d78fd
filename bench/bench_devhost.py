"""Devhost engine benchmark: no-op activities through the Durable engine, as a chain and as a fan-out/fan-in.

Starts the devhost as a subprocess on ``tests/devhost/apps/noop_app`` (no storage, no auth), warms it with a
short chain, then runs chains of ``--chains`` no-op activities (one activity per episode: the cost of history
length shows here) and fan-out/fan-in of ``--fans`` (completions batched into episodes). Each run is timed on
the host's own clock: from the ``ExecutionStarted`` history event to the end of the last orchestrator execution
the host logged (an event's timestamp is its episode's start, so ``ExecutionCompleted`` alone would leave out the
last replay), so client polling does not blur short runs; the client-side wall time is kept beside it.

The SDK replays the whole history in every episode (it parses each event's timestamp with dateutil), so part of
the cost grows with history whatever the host does. The benchmark splits each run with the devhost's own
execution log: ``sdkMs`` is the time spent inside the orchestrator function (the SDK's replay and the user
code), ``activityMs`` inside activities, and ``hostMs`` the rest: the host's own work (task hub, dispatch).

Each run also reports the devhost process's CPU time per activity (``/proc/<pid>/stat``), which the machine's
load inflates far less than wall time. ``--baseline REV`` runs the devhost package of git revision ``REV`` (its
``devhost/`` extracted to a temp dir and put first on the subprocess's ``sys.path``) side by side: both hosts
start, and each workload runs on the old one and then the new one, back to back, so a before/after pair shares
the machine's load.

``sdkReplay`` measures the SDK alone, in this process: the context of a chain's last episode (history shaped as
the devhost writes it) replayed by the noop app's orchestrator, timed and profiled; its per-event cost times the
events a chain's episodes replay is the floor the SDK sets for a chain, whatever the host does.

Writes ``bench/results/devhost.json``: ms per activity per chain length (total and the host's own share),
activities/s per fan-out size, and the issue's targets (chain of 200 at <= 5 ms/activity, fan-out of 1,000 at
>= 500 activities/s, per-activity cost flat: chain 200 / chain 20 <= 1.5), plus the host's own share of them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.common import RESULTS, ROOT, cpu_seconds, machine_facts, parse_ts, target, write_result
from tests.devhost.harness import APPS, Devhost

BASE = "/runtime/webhooks/durabletask"


def run_one(host: Devhost, session: requests.Session, orchestrator: str, n: int, timeout_s: float) -> dict[str, Any]:
    """Start ``orchestrator`` with ``{"n": n}``, wait until it ends; its host-side and wall durations."""
    cpu_before = cpu_seconds(host.pid)
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
    cpu = cpu_seconds(host.pid) - cpu_before
    if body["runtimeStatus"] != "Completed":
        raise RuntimeError(f"{orchestrator}({n}) ended {body['runtimeStatus']}: {body.get('output')}")
    events = session.get(url, params={"showHistory": "true"}, timeout=60).json()["historyEvents"]
    first = next(e for e in events if e["EventType"] == "ExecutionStarted")
    last = next(e for e in events if e["EventType"] == "ExecutionCompleted")
    sdk_ms, activity_ms, last_episode_end = function_ms(host.log, iid, orchestrator)
    # History timestamps are the episodes' start times: the run ends when its last episode has ended (the log).
    total_s = max(parse_ts(last["Timestamp"]), last_episode_end) - parse_ts(first["Timestamp"])
    return {
        "n": n,
        "hostSeconds": round(total_s, 4),
        "wallSeconds": round(wall, 3),
        "cpuSeconds": round(cpu, 3),
        "cpuMsPerActivity": round(1000 * cpu / n, 3),
        "sdkMs": round(sdk_ms, 1),
        "activityMs": round(activity_ms, 1),
        # a chain's activities run one at a time, between episodes; a fan's overlap with each other and episodes
        "hostMs": round(max(0.0, 1000 * total_s - sdk_ms - (activity_ms if orchestrator == "noop_chain" else 0)), 1),
    }


def function_ms(log: Path, instance_id: str, orchestrator: str) -> tuple[float, float, float]:
    """Milliseconds the devhost logged for the instance's orchestrator and activity executions, and when its last
    orchestrator execution ended (POSIX seconds; 0 when none was logged)."""
    sdk = activity = last_end = 0.0
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
            last_end = max(last_end, parse_ts(str(rec.get("ts", "1970-01-01T00:00:00Z"))))
        else:
            activity += float(rec.get("durationMs", 0.0))
    return sdk, activity, last_end


def chain_row(row: dict[str, Any]) -> dict[str, Any]:
    """A chain run with its per-activity figures."""
    n = row["n"]
    row["msPerActivity"] = round(1000 * row["hostSeconds"] / n, 2)
    row["hostMsPerActivity"] = round(row["hostMs"] / n, 2)
    row["sdkMsPerActivity"] = round(row["sdkMs"] / n, 2)
    return row


def fan_row(row: dict[str, Any]) -> dict[str, Any]:
    """A fan-out/fan-in run with its throughput."""
    n = row["n"]
    row["activitiesPerSecond"] = round(n / max(row["hostSeconds"], 1e-6), 1)
    row["hostMsPerActivity"] = round(row["hostMs"] / n, 2)
    return row


def baseline_path(rev: str, into: Path) -> Path:
    """Extract the ``devhost`` package of git revision ``rev`` under ``into``; the folder to put on sys.path."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "devhost"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def host_env(first: Path) -> dict[str, str]:
    """The devhost subprocess's environment: ``first`` alone decides which ``devhost`` package it imports."""
    return {"PYTHONSAFEPATH": "1", "PYTHONPATH": os.pathsep.join([str(first), str(ROOT)])}


def sdk_chain_context(n: int, instance_id: str = "sdkbench") -> str:
    """The context of a chain's last episode (n completed no-op activities), shaped as the devhost writes it."""
    from devhost.protocol import EventType, event, started_event

    t = 1_700_000_000.0
    played: list[dict[str, Any]] = [
        event(EventType.ORCHESTRATOR_STARTED, t),
        started_event("noop_chain", instance_id, "exec", json.dumps({"n": n}), t),
    ]
    for k in range(n):
        if k:
            t += 0.004
            played += [
                event(EventType.ORCHESTRATOR_STARTED, t),
                event(EventType.TASK_COMPLETED, t, TaskScheduledId=k - 1, Result=json.dumps(k - 1)),
            ]
        played += [
            event(EventType.TASK_SCHEDULED, t, k, Name="noop", Version="", Input=json.dumps(k)),
            event(EventType.ORCHESTRATOR_COMPLETED, t),
        ]
    history = [ev | {"IsPlayed": True} for ev in played]
    t += 0.004
    history += [
        event(EventType.ORCHESTRATOR_STARTED, t),
        event(EventType.TASK_COMPLETED, t, TaskScheduledId=n - 1, Result=json.dumps(n - 1)),
    ]
    return json.dumps(
        {
            "history": history,
            "input": {"n": n},
            "instanceId": instance_id,
            "isReplaying": False,
            "parentInstanceId": None,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
    )


def sdk_replay(n: int, repeats: int = 5) -> dict[str, Any]:
    """Time and profile the SDK replaying a chain's last episode; its cost per history event."""
    from devhost.app_loader import load_app

    orchestrator: Callable[[str], Any] = load_app(APPS / "noop_app").orchestrators["noop_chain"].callable
    context = sdk_chain_context(n)
    events = len(json.loads(context)["history"])
    state = json.loads(orchestrator(context))
    if not state.get("isDone") or state.get("output") != n * (n - 1) // 2:
        raise RuntimeError(f"the SDK did not complete the synthetic chain: {state}")
    cpu = []
    for _ in range(repeats):
        started = time.process_time()
        orchestrator(context)
        cpu.append(time.process_time() - started)
    best = min(cpu)
    profile = cProfile.Profile()
    profile.enable()
    orchestrator(context)
    profile.disable()
    raw: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in raw.values()) or 1e-9

    def cumulative(path_part: str, name: str) -> float:
        """The largest cumulative time of a function ``name`` in a file whose path holds ``path_part``."""
        times = [row[3] for (fn, _line, fname), row in raw.items() if path_part in fn and fname == name]
        return round(max(times, default=0.0) / total, 3)

    top = sorted(((row[2], f"{Path(fn).name}:{line}({name})") for (fn, line, name), row in raw.items()), reverse=True)
    shares = {
        "HistoryEvent objects (one per event)": cumulative("history/HistoryEvent.py", "__init__"),
        "of which dateutil.parser.parse of Timestamp": cumulative("dateutil/parser/_parser.py", "parse"),
        "replay loop (TaskOrchestrationExecutor.execute)": cumulative("TaskOrchestrationExecutor.py", "execute"),
        "json.loads of the context": cumulative("json/__init__.py", "loads"),
    }
    # a chain of n replays, in episode k (1..n+1), the 4k-2 events of the history so far
    replayed = sum(4 * k - 2 for k in range(1, n + 2))
    per_event_ms = 1000 * best / events
    return {
        "chainLength": n,
        "historyEvents": events,
        "replayCpuMs": round(1000 * best, 2),
        "usPerEvent": round(1000 * per_event_ms, 1),
        "profileCumulativeShare": shares,
        "profileTopOwnTime": [{"function": name, "share": round(t / total, 3)} for t, name in top[:8]],
        "eventsReplayedByChain": replayed,
        "sdkFloorMsPerActivity": round(per_event_ms * replayed / n, 2),
    }


def host_cpu_in_process(n: int) -> dict[str, Any]:
    """The host's own CPU in a chain of ``n``, measured in this process: an ``Engine`` on the noop app runs the
    chain, the orchestrator calls (the SDK) are timed on their thread's CPU clock, and the rest of the process's
    CPU is the host's (task hub, decisions, dispatch, recording, the no-op activities). Per episode, the host's
    part of the first and the last quarter of the episodes shows whether it grows with the history."""
    import threading

    from devhost.app_loader import load_app, read_host_config
    from devhost.engine import Engine
    from devhost.store import Store

    app = APPS / "noop_app"
    sdk: list[float] = []
    host: list[float] = []
    done = threading.Event()
    with tempfile.TemporaryDirectory(prefix="bench-devhost-inproc-") as tmp:
        engine = Engine(Store(Path(tmp) / "taskhub.sqlite3"), load_app(app), read_host_config(app), app)
        invoke, episode = engine._invoke_orchestrator, engine.episode

        def timed_invoke(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return invoke(*args)
            finally:
                sdk.append(time.thread_time() - started)

        def timed_episode(instance_id: str) -> bool:
            started, calls = time.thread_time(), len(sdk)
            ran = episode(instance_id)
            if ran and len(sdk) > calls:
                host.append(time.thread_time() - started - sdk[-1])
            return ran

        engine._invoke_orchestrator = timed_invoke  # type: ignore[method-assign]
        engine.episode = timed_episode  # type: ignore[method-assign]
        engine.orchestrations.episode = timed_episode
        engine.on_instance_done = lambda _iid: done.set()
        engine.start()
        try:
            quiet = contextlib.redirect_stderr(io.StringIO())  # the engine's one-line-per-execution log
            quiet.__enter__()
            started = time.process_time()
            engine.start_new("noop_chain", None, json.dumps({"n": n}))
            if not done.wait(600):
                raise RuntimeError(f"the in-process chain of {n} did not finish")
            cpu = time.process_time() - started
        finally:
            quiet.__exit__(None, None, None)
            engine.stop()
            engine.store.close()
    quarter = max(1, len(host) // 4)
    first, last = 1000 * sum(host[:quarter]) / quarter, 1000 * sum(host[-quarter:]) / quarter
    return {
        "n": n,
        "processCpuMsPerActivity": round(1000 * cpu / n, 2),
        "sdkCpuMsPerActivity": round(1000 * sum(sdk) / n, 2),
        "hostCpuMsPerActivity": round(1000 * (cpu - sum(sdk)) / n, 2),
        "hostCpuMsPerEpisodeFirstQuarter": round(first, 3),
        "hostCpuMsPerEpisodeLastQuarter": round(last, 3),
        "hostGrowthLastOverFirst": round(last / first, 2) if first > 0 else None,
    }


def timestamp_formats(repeats: int = 2000) -> dict[str, float]:
    """Microseconds the SDK's timestamp parser (``dateutil.parser.parse``) takes per timestamp, for the forms the
    extension sends (.NET round-trip: 7 fraction digits, trailing zeros trimmed, none when zero) and the
    devhost's 6 digits: whether a form is on a fast path."""
    import timeit

    from dateutil.parser import parse

    forms = {
        "7 digits (the extension)": "2026-12-08T00:39:15.4636051Z",
        "6 digits (devhost)": "2026-12-08T00:39:15.463605Z",
        "3 digits (trimmed zeros)": "2026-12-08T00:39:15.463Z",
        "no fraction (zero)": "2026-12-08T00:39:15Z",
    }
    return {
        name: round(1e6 * min(timeit.repeat(lambda text=text: parse(text), number=repeats, repeat=5)) / repeats, 1)
        for name, text in forms.items()
    }


def measure_pair(
    hosts: list[tuple[str, Devhost]], chains: list[int], fans: list[int], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Each workload on every host in turn (old then new), back to back; rows per host label."""
    out: dict[str, dict[str, Any]] = {label: {"chains": [], "fans": []} for label, _ in hosts}
    with requests.Session() as session:
        for _label, host in hosts:
            run_one(host, session, "noop_chain", 5, timeout_s)  # warm-up: imports, first episodes
            run_one(host, session, "noop_fan", 20, timeout_s)
        for n in chains:
            for label, host in hosts:
                row = chain_row(run_one(host, session, "noop_chain", n, timeout_s))
                out[label]["chains"].append(row)
                print(
                    f"{label:>8} chain {n:>5}: {row['msPerActivity']:8.2f} ms/activity "
                    f"(SDK {row['sdkMsPerActivity']:.2f}, "
                    f"host {row['hostMsPerActivity']:.2f}; devhost CPU {row['cpuMsPerActivity']:.2f} ms/activity; "
                    f"{row['wallSeconds']} s wall)",
                    flush=True,
                )
        for n in fans:
            for label, host in hosts:
                row = fan_row(run_one(host, session, "noop_fan", n, timeout_s))
                out[label]["fans"].append(row)
                print(
                    f"{label:>8} fan   {n:>5}: {row['activitiesPerSecond']:8.1f} activities/s "
                    f"(SDK {row['sdkMs']:.0f} ms; "
                    f"devhost CPU {row['cpuMsPerActivity']:.2f} ms/activity; {row['wallSeconds']} s wall)",
                    flush=True,
                )
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench devhost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default="20,60,200", help="chain lengths (comma-separated)")
    parser.add_argument("--fans", default="100,1000", help="fan-out/fan-in sizes (comma-separated)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    parser.add_argument("--baseline", default=None, help="git revision whose devhost runs side by side (before)")
    parser.add_argument("--sdk-chain", type=int, default=200, help="chain length of the SDK-only replay profile")
    args = parser.parse_args(argv)
    chains = [int(x) for x in args.chains.split(",") if x]
    fans = [int(x) for x in args.fans.split(",") if x]
    result: dict[str, Any] = {"machine": machine_facts(), "chains": [], "fans": []}
    with tempfile.TemporaryDirectory(prefix="bench-devhost-") as tmp:
        hosts: list[tuple[str, Devhost]] = []
        try:
            if args.baseline:
                old = baseline_path(args.baseline, Path(tmp) / "baseline")
                hosts.append(("before", Devhost(APPS / "noop_app", Path(tmp) / "state-old", env=host_env(old))))
            hosts.append(("now", Devhost(APPS / "noop_app", Path(tmp) / "state", env=host_env(ROOT))))
            for _label, host in hosts:
                host.start()
            rows = measure_pair(hosts, chains, fans, args.timeout)
        finally:
            for _label, host in hosts:
                host.stop()
    result["chains"], result["fans"] = rows["now"]["chains"], rows["now"]["fans"]
    if args.baseline:
        result["baseline"] = {"revision": args.baseline, **rows["before"]}
        result["compare"] = compare(rows["before"], rows["now"])
    result["loadAvg1mAtEnd"] = round(os.getloadavg()[0], 2)
    if args.sdk_chain:
        result["hostCpuInProcess"] = inproc = host_cpu_in_process(args.sdk_chain)
        print(
            f"in process, chain of {inproc['n']}: host CPU {inproc['hostCpuMsPerActivity']} ms/activity (SDK "
            f"{inproc['sdkCpuMsPerActivity']}); host CPU per episode {inproc['hostCpuMsPerEpisodeFirstQuarter']} ms "
            f"(first quarter) -> {inproc['hostCpuMsPerEpisodeLastQuarter']} ms (last quarter)",
            flush=True,
        )
        result["sdkReplay"] = sdk_replay(args.sdk_chain)
        result["sdkReplay"]["timestampParseUs"] = timestamp_formats()
        r = result["sdkReplay"]
        print(
            f"SDK alone, chain of {r['chainLength']}: last replay {r['replayCpuMs']} ms CPU for {r['historyEvents']} "
            f"events = {r['usPerEvent']} us/event ({r['profileCumulativeShare']}); the chain's replays alone: "
            f">= {r['sdkFloorMsPerActivity']} ms/activity"
        )
    per = {row["n"]: row["msPerActivity"] for row in result["chains"]}
    fan = {row["n"]: row["activitiesPerSecond"] for row in result["fans"]}
    own = {row["n"]: row["hostMsPerActivity"] for row in result["chains"]}
    ratio = round(per[200] / per[20], 2) if 200 in per and 20 in per and per[20] > 0 else None
    own_ratio = round(own[200] / own[20], 2) if 200 in own and 20 in own and own[20] > 0 else None
    result["targets"] = [
        target("chain of 200 no-op activities", per.get(200), 5, "ms/activity"),
        target("fan-out/fan-in of 1,000 no-op activities", fan.get(1000), 500, "act/s", higher_is_better=True),
        target("per-activity cost ratio chain 200 / chain 20", ratio, 1.5, "x"),
        target("host's own cost (no SDK replay) chain 200, wall", own.get(200), 5, "ms/activity"),
        target("host's own cost ratio chain 200 / chain 20, wall", own_ratio, 1.5, "x"),
    ]
    inproc = result.get("hostCpuInProcess") or {}
    if inproc.get("n") == 200:
        result["targets"] += [
            target("host's own CPU chain 200 (in process)", inproc["hostCpuMsPerActivity"], 5, "ms/activity"),
            target("host's CPU per episode, last / first quarter", inproc["hostGrowthLastOverFirst"], 1.5, "x"),
        ]
    write_result(RESULTS / "devhost.json", result)
    return 0


def compare(before: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    """Before/after pairs of the same workload (run back to back)."""
    out: list[dict[str, Any]] = []
    for kind, measure in (("chains", "msPerActivity"), ("fans", "activitiesPerSecond")):
        for old, new in zip(before[kind], now[kind], strict=True):
            out.append(
                {
                    "workload": f"{kind[:-1]} {new['n']}",
                    measure + "Before": old[measure],
                    measure + "Now": new[measure],
                    "cpuMsPerActivityBefore": old["cpuMsPerActivity"],
                    "cpuMsPerActivityNow": new["cpuMsPerActivity"],
                }
            )
    return out
