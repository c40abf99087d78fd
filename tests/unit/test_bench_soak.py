"""The soak benchmark's resource sampling and its flatness verdict."""

from __future__ import annotations

import os
import threading

import pytest

from bench.bench_soak import judge, process_sample

pytestmark = pytest.mark.unit


def _row(rss: float, fds: int, threads: int, sqlite: int = 2) -> dict[str, float | int]:
    return {"rssMiB": rss, "openFds": fds, "sqliteFds": sqlite, "sockets": 0, "threads": threads}


def test_process_sample_sees_this_process_open_a_file_and_a_thread(tmp_path: os.PathLike[str]) -> None:
    before = process_sample(os.getpid())
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        with open(os.path.join(tmp_path, "x.sqlite3"), "wb"):
            during = process_sample(os.getpid())
    finally:
        stop.set()
        worker.join()
    assert during["openFds"] == before["openFds"] + 1
    assert during["sqliteFds"] == before["sqliteFds"] + 1
    assert during["threads"] == before["threads"] + 1
    assert during["rssMiB"] > 1


def test_flat_after_warm_up() -> None:
    rows = [_row(900, 40, 20), _row(1500, 60, 30), _row(1520, 61, 30), _row(1530, 60, 31), _row(1510, 62, 30)]
    verdict = judge(rows, warmup_rounds=2)
    assert verdict["flat"] and verdict["judgedRounds"] == 3
    assert verdict["growth"]["rssMiB"] == -10


@pytest.mark.parametrize(
    "last",
    [_row(1900, 61, 30), _row(1520, 200, 30), _row(1520, 61, 90), _row(1520, 61, 30, sqlite=12)],
    ids=["rss", "fds", "threads", "sqlite"],
)
def test_growth_after_warm_up_is_not_flat(last: dict[str, float | int]) -> None:
    rows = [_row(900, 40, 20), _row(1500, 60, 30), _row(1510, 60, 30), last]
    assert not judge(rows, warmup_rounds=1)["flat"]


def test_the_durable_clients_own_pool_filling_is_not_a_leak() -> None:
    def with_self(row: dict[str, float | int], conns: int) -> dict[str, object]:
        tcp = {"listen": 1, "in:established:7071": conns, "out:established:7071": conns, "out:close_wait:10000": 3}
        return {**row, "openFds": int(row["openFds"]) + 2 * conns, "tcp": tcp}

    rows = [with_self(_row(1500, 40, 30), 8), with_self(_row(1500, 41, 30), 12), with_self(_row(1500, 40, 30), 16)]
    verdict = judge(rows, warmup_rounds=0)
    assert verdict["flat"] and verdict["growth"]["openFdsBesidesSelfConnections"] == 0
    beyond_the_pool = [*rows, with_self(_row(1500, 40, 30), 31)]
    assert not judge(beyond_the_pool, warmup_rounds=0)["flat"]


def test_too_few_rounds_to_judge() -> None:
    with pytest.raises(ValueError):
        judge([_row(1, 1, 1), _row(1, 1, 1)], warmup_rounds=1)
