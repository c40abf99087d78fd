"""The engine's threads: the orchestration dispatcher and its episode pool, the activity workers and their watchdog.

* Orchestrations: one dispatcher thread finds instances with visible inbox messages and runs their episodes in
  a pool bounded by ``maxConcurrentOrchestratorFunctions``; episodes of one instance never overlap.
* Activities: a fixed set of ``maxConcurrentActivityFunctions`` worker threads runs work items straight from a
  queue the dispatcher fills (no thread per activity). A finished call queues its answer; whichever worker
  finds no other one recording becomes the recorder until the queue is empty: it records all the answers
  waiting at that moment in one transaction, then runs each answered instance once. A fan-out's answers cost one
  commit per batch, not one per activity, and a lone answer (a chain) is recorded by its own worker at once.
  When ``functionTimeout`` is set, a watchdog thread fails a call that exceeds it; the call cannot be killed,
  so its thread is counted as stuck and a replacement worker starts, up to twice the worker count in all (then
  new activities wait, and the host says so once).
* An instance that gets a message while one of its episodes runs is marked and run again right after (no
  dispatcher round trip, so a burst of answers does not make the dispatcher scan the task hub once per answer).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from devhost.protocol import Event
from devhost.taskhub import ActivityWork, TaskHub

# How often the activity dispatcher looks for work items no episode handed over (after a restart: at once).
SWEEP_S = 5.0
# The most answers the recorder commits in one transaction.
RECORD_BATCH = 500
# An activity runner returns the answer event (TaskCompleted / TaskFailed) of a work item.
ActivityRunner = Callable[[ActivityWork], Event]
# Called when a call exceeded the timeout: the answer event to record for it.
TimeoutAnswer = Callable[[ActivityWork, float], Event]


@dataclass
class _Running:
    item: ActivityWork
    started: float
    abandoned: bool = field(default=False)


class OrchestrationWorkers:
    """Runs episodes (``episode(instance_id) -> bool``: False when the instance had nothing to do)."""

    def __init__(self, hub: TaskHub, size: int, episode: Callable[[str], bool]) -> None:
        self.hub = hub
        self.size = max(1, size)
        self.episode = episode
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[str] = set()
        self._again: set[str] = set()  # busy instances that got a message after their last episode began
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="orch")
        self._thread = threading.Thread(target=self._loop, name="orch-dispatch", daemon=True)

    def start(self) -> None:
        """Start dispatching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching; an episode that runs on is committed or abandoned whole."""
        self._stop.set()
        self.wake.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def kick(self, instance_id: str) -> None:
        """Run the instance's episodes now if it is idle and a slot is free; else leave it to the dispatcher."""
        with self._lock:
            if instance_id in self._busy and not self._stop.is_set():
                self._again.add(instance_id)  # its running loop looks again after the current episode
                return
            if self._stop.is_set() or len(self._busy) >= self.size:
                submit = False
            else:
                self._busy.add(instance_id)
                submit = True
        if submit:
            self._pool.submit(self._run_instance, instance_id)
        else:
            self.wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            now = time.time()
            try:
                ready, next_at = self.hub.ready_instances(now)
            except Exception:  # noqa: BLE001 - keep the dispatcher alive
                traceback.print_exc()
                self._stop.wait(0.5)
                continue
            for iid in ready:
                with self._lock:
                    if iid in self._busy or len(self._busy) >= self.size:
                        continue
                    self._busy.add(iid)
                self._pool.submit(self._run_instance, iid)
            timeout = 0.5 if next_at is None else max(0.005, min(0.5, next_at - now))
            self.wake.wait(timeout)

    def _run_instance(self, instance_id: str) -> None:
        rounds = 0
        try:
            while rounds < 20:
                rounds += 1
                with self._lock:
                    self._again.discard(instance_id)
                if self._stop.is_set() or not self.episode(instance_id):
                    break
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        finally:
            with self._lock:
                # kicked meanwhile and not past its fair share: run again (queued behind the pool's other work)
                again = instance_id in self._again and rounds < 20 and not self._stop.is_set()
                self._again.discard(instance_id)
                if not again:
                    self._busy.discard(instance_id)
            if again:
                self._pool.submit(self._run_instance, instance_id)
            else:
                self.wake.set()


class ActivityWorkers:
    """Runs activity work items on a fixed set of threads; records each answer through the task hub."""

    def __init__(
        self,
        hub: TaskHub,
        size: int,
        timeout_s: float | None,
        run: ActivityRunner,
        timed_out: TimeoutAnswer,
        on_answer: Callable[[ActivityWork], None],
    ) -> None:
        self.hub = hub
        self.size = max(1, size)
        self.timeout_s = timeout_s
        self.run = run
        self.timed_out = timed_out
        self.on_answer = on_answer
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[ActivityWork] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[ActivityWork, Event]] = queue.SimpleQueue()
        self._recording = threading.Lock()  # held by the worker that records the queued answers
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._queued: set[int] = set()  # work ids queued or running
        self._finished: set[int] | None = None  # ids finished while a sweep reads the task hub
        self._live = 0  # worker threads that are not stuck in a timed-out call
        self._stuck = 0
        self._warned = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the dispatcher, the workers and (with a timeout) the watchdog."""
        self._spawn(self._dispatch, "act-dispatch")
        if self.timeout_s is not None:
            self._spawn(self._watchdog, "act-watchdog")
        with self._lock:
            for _ in range(self.size):
                self._live += 1
                self._spawn(self._work, "activity")

    def stop(self) -> None:
        """Stop taking work; running calls are abandoned (their work items stay for the next start)."""
        self._stop.set()
        self.wake.set()
        for t in self._threads[:2]:
            t.join(timeout=5)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def submit(self, items: list[ActivityWork]) -> None:
        """Queue work items an episode just committed (each work item is queued once)."""
        with self._lock:
            done = self._finished or set()
            fresh = [item for item in items if item.work_id not in self._queued and item.work_id not in done]
            self._queued.update(item.work_id for item in fresh)
        for item in fresh:
            self._queue.put(item)

    def _dispatch(self) -> None:
        """Queue the work items left in the task hub: at start (a restart runs them again), then as a safety
        net every few seconds; episodes hand their new work over directly (``submit``)."""
        while not self._stop.is_set():
            self.wake.clear()
            after = 0
            with self._lock:
                self._finished = set()  # a row read below may belong to an item that finishes meanwhile
            try:
                while True:
                    items = self.hub.work_after(after, 1000)
                    self.submit(items)
                    if len(items) < 1000:
                        break
                    after = items[-1].work_id
            except Exception:  # noqa: BLE001 - keep the dispatcher alive
                traceback.print_exc()
            finally:
                with self._lock:
                    self._finished = None
            self.wake.wait(SWEEP_S)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            running = _Running(item, time.monotonic())
            with self._lock:
                self._running[item.work_id] = running
            answer: Event | None = None
            try:
                answer = self.run(item)
            except Exception:  # noqa: BLE001 - the runner reports function failures itself
                traceback.print_exc()
            with self._lock:
                self._running.pop(item.work_id, None)
            if running.abandoned:  # the watchdog recorded its timeout; this thread was replaced meanwhile
                with self._lock:
                    self._stuck -= 1
                    self._warned = False
                    if self._live >= self.size:
                        return
                    self._live += 1
                continue
            if self._stop.is_set():
                return
            if answer is not None:
                self._answer(item, answer)  # forgotten once recorded
            else:
                self._forget(item.work_id)

    def _forget(self, work_id: int) -> None:
        """The item's answer is recorded (or it was abandoned): a later sweep may not queue it again."""
        with self._lock:
            self._queued.discard(work_id)
            if self._finished is not None:
                self._finished.add(work_id)

    def _answer(self, item: ActivityWork, answer: Event) -> None:
        """Queue an answer; record the queue unless another thread is recording it (it will take this one too)."""
        self._answers.put((item, answer))
        # Checked again after each release: an answer queued while the recorder let go is not left behind.
        while not self._stop.is_set() and not self._answers.empty() and self._recording.acquire(blocking=False):
            try:
                self._record_queued()
            finally:
                self._recording.release()

    def _record_queued(self) -> None:
        """Record the queued answers, all those waiting in one transaction, until none is left; then run each
        answered instance."""
        while not self._stop.is_set():  # after stop: not recorded, the work items run again at the next start
            batch: list[tuple[ActivityWork, Event]] = []
            while len(batch) < RECORD_BATCH:
                try:
                    batch.append(self._answers.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return
            try:
                self.hub.complete_activities(batch, time.time())
            except Exception:  # noqa: BLE001 - keep the worker alive; the sweep runs the items again
                traceback.print_exc()
            answered: dict[str, ActivityWork] = {}
            for item, _ in batch:
                self._forget(item.work_id)
                answered.setdefault(item.instance_id, item)
            for item in answered.values():
                self.on_answer(item)

    def _watchdog(self) -> None:
        assert self.timeout_s is not None
        while not self._stop.wait(min(0.1, self.timeout_s / 4)):
            now = time.monotonic()
            expired: list[_Running] = []
            with self._lock:
                for running in list(self._running.values()):
                    if not running.abandoned and now - running.started > self.timeout_s:
                        running.abandoned = True
                        expired.append(running)
                        self._live -= 1
                        self._stuck += 1
                        if self._live + self._stuck < 2 * self.size:
                            self._live += 1
                            self._spawn(self._work, "activity")
                        elif not self._warned:
                            self._warned = True
                            sys.stderr.write(
                                f"devhost: {self._stuck} activity worker(s) are held by calls that exceeded "
                                "functionTimeout; new activities wait until they return (restart the host to "
                                "free them)\n"
                            )
            for running in expired:
                self._answer(running.item, self.timed_out(running.item, now - running.started))
