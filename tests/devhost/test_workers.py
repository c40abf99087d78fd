"""The orchestration workers: an instance kicked while its episode runs gets another episode right after."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from devhost.store import Store
from devhost.taskhub import TaskHub
from devhost.workers import OrchestrationWorkers


@pytest.mark.unit
def test_a_kick_during_an_episode_runs_the_instance_again_without_the_dispatcher(tmp_path: Path) -> None:
    gate = threading.Event()
    second = threading.Event()
    calls: list[str] = []
    running = 0
    overlap: list[int] = []
    lock = threading.Lock()

    def episode(instance_id: str) -> bool:
        nonlocal running
        with lock:
            running += 1
            overlap.append(running)
            calls.append(instance_id)
            n = len(calls)
        if n == 1:
            gate.wait(10)
        else:
            second.set()
        with lock:
            running -= 1
        return False  # nothing (more) to do: without the mark, the worker would stop here

    # The dispatcher thread is never started: only the kick path can run the second episode.
    workers = OrchestrationWorkers(TaskHub(Store(tmp_path / "hub.sqlite3")), 4, episode)
    try:
        workers.kick("a")
        while not calls:
            threading.Event().wait(0.01)
        workers.kick("a")  # an answer arrives while the first episode runs
        gate.set()
        assert second.wait(10), "the kicked instance was not run again"
        assert calls == ["a", "a"] and max(overlap) == 1  # one episode of an instance at a time
    finally:
        gate.set()
        workers.stop()
