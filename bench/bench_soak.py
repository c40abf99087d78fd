"""Soak benchmark: many images through the whole local stack in rounds, sampling the devhost's resources.

Starts the devhost (with its own Azurite) like the pipeline benchmark, warms it with one image, then uploads
``--images`` images in ``--rounds`` equal rounds, waiting for every run of a round before the next. After each
round it samples the devhost process: resident memory (VmRSS), open file descriptors (``/proc/<pid>/fd``),
threads and the SQLite files it holds open. A leak shows as growth that continues round after round; a bounded
process is flat after the first rounds (warm-up: model sessions, pools and caches fill once).

Flatness is judged on the rounds after ``--warmup-rounds``: the growth of RSS from the first judged round to
the last (MiB and ratio) and the change in open handles and threads. Writes ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_pipeline import Sample, _upload, cycle, load_samples, running_stack, warm_up
from bench.common import RESULTS, ROOT, machine_facts, write_result

# A run of the soak is "flat" when, after warm-up, RSS grows by less than this (MiB) and handles/threads by
# at most the slack below. The RSS allowance covers allocator noise on a 2-core machine, not a leak: the
# leak this guards against grew ~700 MiB and ~330 descriptors per 200 images.
RSS_GROWTH_LIMIT_MIB = 150.0
HANDLE_SLACK = 8
# bounded pools fill lazily: the record store may open its last pooled connections (db, WAL and shm: three
# descriptors each) only when a busier moment needs them
SQLITE_SLACK = 6
THREAD_SLACK = 4
# The Durable client (azure-functions-durable) keeps one aiohttp session per process with at most 30
# connections; on the devhost they are loopback connections to the host itself, two descriptors each (client
# and server side). That pool fills as concurrency peaks: growth up to its limit is not a leak.
SDK_POOL_CONNECTIONS = 30


def socket_peers(pid: int, inodes: set[str]) -> dict[str, int]:
    """TCP sockets of process ``pid`` (whose socket inodes are ``inodes``) by direction, state and port.

    ``in:<state>:<our port>`` for connections to one of its listening ports, ``out:<state>:<remote port>`` for
    the connections it made (to Azurite, to itself through the Durable client, …), ``listen`` for listeners.
    """
    states = {"01": "established", "06": "time_wait", "08": "close_wait", "0A": "listen"}
    sockets: list[tuple[str, int, int]] = []
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[9] in inodes:
                local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
                sockets.append((states.get(fields[3], fields[3]), local, remote))
    listening = {local for state, local, _ in sockets if state == "listen"}
    out: dict[str, int] = {}
    for state, local, remote in sockets:
        key = (
            "listen" if state == "listen" else f"in:{state}:{local}" if local in listening else f"out:{state}:{remote}"
        )
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def process_sample(pid: int) -> dict[str, Any]:
    """RSS (MiB), open descriptors, threads and open SQLite-related descriptors of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines()
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in status if ":" in line}
    fd_dir = Path(f"/proc/{pid}/fd")
    targets: list[str] = []
    for entry in fd_dir.iterdir():
        try:
            targets.append(os.readlink(entry))
        except OSError:  # closed between listing and reading
            continue
    sqlite = [t for t in targets if ".sqlite" in t or t.endswith(("-wal", "-shm", ".db"))]
    return {
        "rssMiB": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "openFds": len(targets),
        "sqliteFds": len(sqlite),
        "sockets": sum(1 for t in targets if t.startswith("socket:")),
        "tcp": socket_peers(pid, {t[len("socket:[") : -1] for t in targets if t.startswith("socket:[")}),
        "threads": int(fields["Threads"]),
    }


def self_connection_fds(sample: dict[str, Any]) -> int:
    """Descriptors of the process's TCP connections to its own listening port (both ends)."""
    tcp: dict[str, int] = sample.get("tcp") or {}
    own = {key.rsplit(":", 1)[1] for key in tcp if key.startswith("in:")}
    return sum(n for key, n in tcp.items() if key != "listen" and key.rsplit(":", 1)[1] in own)


def judge(samples: list[dict[str, Any]], warmup_rounds: int) -> dict[str, Any]:
    """Growth over the judged rounds (after warm-up) and whether it is flat by the limits above.

    Open descriptors are judged without the host's connections to itself (the Durable client's bounded pool),
    which are judged against that pool's limit instead.
    """
    judged = samples[warmup_rounds:]
    if len(judged) < 2:
        raise ValueError(f"need at least {warmup_rounds + 2} rounds to judge flatness, got {len(samples)}")
    first, last = judged[0], judged[-1]
    growth = {
        "rssMiB": round(last["rssMiB"] - first["rssMiB"], 1),
        "rssRatio": round(last["rssMiB"] / first["rssMiB"], 3),
        "openFds": last["openFds"] - first["openFds"],
        "openFdsBesidesSelfConnections": (last["openFds"] - self_connection_fds(last))
        - (first["openFds"] - self_connection_fds(first)),
        "maxSelfConnectionFds": max(self_connection_fds(s) for s in judged),
        "sqliteFds": last["sqliteFds"] - first["sqliteFds"],
        "threads": last["threads"] - first["threads"],
        "maxOpenFds": max(s["openFds"] for s in judged),
        "maxThreads": max(s["threads"] for s in judged),
    }
    flat = (
        growth["rssMiB"] < RSS_GROWTH_LIMIT_MIB
        and growth["openFdsBesidesSelfConnections"] <= HANDLE_SLACK
        and growth["maxSelfConnectionFds"] <= 2 * SDK_POOL_CONNECTIONS
        and growth["sqliteFds"] <= SQLITE_SLACK
        and growth["threads"] <= THREAD_SLACK
    )
    return {"judgedRounds": len(judged), "growth": growth, "flat": flat}


def soak(images: list[Sample], rounds: int, timeout_s: float, state: Path) -> dict[str, Any]:
    from imagepipe.client import ImagepipeClient

    per_round = max(1, len(images) // rounds)
    out: dict[str, Any] = {"rounds": []}
    with running_stack(state) as (stack, startup):
        assert stack.proc is not None
        pid = stack.proc.pid
        client = ImagepipeClient(stack.base, key="", timeout_s=60)
        out["warmUpImageSeconds"] = warm_up(stack, images[0], timeout_s)
        out["afterWarmUp"] = process_sample(pid)
        for index in range(rounds):
            batch = images[index * per_round : (index + 1) * per_round]
            started = time.monotonic()
            ids = [_upload(client, sample)["id"] for sample in batch]
            statuses = client.wait(ids, timeout_s=timeout_s, poll_s=0.5)
            outcome: dict[str, int] = {}
            for status in statuses.values():
                outcome[str(status.get("status"))] = outcome.get(str(status.get("status")), 0) + 1
            row = {
                "round": index + 1,
                "images": len(batch),
                "seconds": round(time.monotonic() - started, 1),
                "outcome": outcome,
                **process_sample(pid),
            }
            out["rounds"].append(row)
            print(json.dumps(row), flush=True)
        out["stackStartSeconds"] = round(startup, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup-rounds", type=int, default=2)
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for one round's runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    if args.rounds < args.warmup_rounds + 2:
        parser.error("--rounds must exceed --warmup-rounds by at least 2")
    images = cycle(load_samples(args.samples), args.images)
    result: dict[str, Any] = {"benchmark": "soak", "machine": machine_facts(), "images": len(images)}
    with tempfile.TemporaryDirectory(prefix="imagepipe-soak-") as tmp:
        result |= soak(images, args.rounds, args.timeout, Path(tmp) / "stack")
    result["verdict"] = judge(result["rounds"], args.warmup_rounds)
    result["limits"] = {
        "rssGrowthMiB": RSS_GROWTH_LIMIT_MIB,
        "handleSlack": HANDLE_SLACK,
        "sqliteSlack": SQLITE_SLACK,
        "threadSlack": THREAD_SLACK,
    }
    write_result(args.out, result)
    print(json.dumps(result["verdict"], indent=2))
    print(f"wrote {args.out}")
    return 0 if result["verdict"]["flat"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
