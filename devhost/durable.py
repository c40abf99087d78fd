"""Durable Functions engine: the host side of the out-of-process orchestration protocol.

Orchestrators are executed by calling the registered orchestrator handle with the context JSON
(history + input); the SDK replays and returns its action list, the host allocates event ids, writes
decision events, schedules work and completes the instance (``docs/durable-protocol.md`` §3).

Durability model (all in one SQLite file, see ``devhost.store``):

* ``instances`` — one row per instance: status, serialized input/output, custom status and a JSON
  ``state`` (history, next id, handled actions, open tasks, retry records).
* ``inbox`` — pending events per instance (``ExecutionStarted``, completions, timer firings with a
  future ``visible_at``, raised events). One episode consumes exactly one message; the message is
  deleted in the same transaction that appends the episode to the history and schedules its work.
* ``work_items`` — activity executions to run. An activity's completion event is inserted in the
  same transaction that deletes its work item, so a finished activity is never lost nor re-run;
  one killed while running is run again (at-least-once, like the real host).

Episodes of one instance are serialized; different instances run in a thread pool bounded by
``maxConcurrentOrchestratorFunctions``; activities in a pool bounded by
``maxConcurrentActivityFunctions`` with ``functionTimeout`` enforced.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost.app_loader import HostConfig, Registry
from devhost.invoke import build_kwargs, call_sync, log_execution, new_invocation_id
from devhost.store import Store

# History event types (DurableTask.Core HistoryEventType).
ES, EC, EF, ET, TS, TC, TF, SOC, SOCOMP, SOF, TCR, TFI, OS, OC, ESENT, ER, CAN = range(17)
EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
}
ORCH_STATUS_INT = {
    "Running": 0,
    "Completed": 1,
    "ContinuedAsNew": 2,
    "Failed": 3,
    "Canceled": 4,
    "Terminated": 5,
    "Pending": 6,
    "Suspended": 7,
}
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")
MARKER = "$OutOfProcData$:"
MAX_BATCH = 50
ENTITIES_UNSUPPORTED = "Durable entities are not supported by devhost"


class DurableError(Exception):
    """A management operation failed; ``status`` is the HTTP status code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def iso(ts: float, fraction: bool = True) -> str:
    """Format a POSIX time as UTC ISO 8601 with ``Z``."""
    dt = datetime.fromtimestamp(ts, UTC)
    if fraction:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """Parse an ISO 8601 time (naive → UTC) into POSIX seconds."""
    t = text.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def event(etype: int, ts: float, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """A history event with the four required keys."""
    ev: dict[str, Any] = {"EventType": etype, "EventId": event_id, "IsPlayed": False, "Timestamp": iso(ts)}
    ev.update(fields)
    return ev


def flatten(actions: list[Any]) -> Iterator[dict[str, Any]]:
    """Expand WhenAny/WhenAll compound actions in order."""
    for a in actions:
        if isinstance(a, list):
            yield from flatten(a)
        elif a.get("actionType") in (11, 12):
            yield from flatten(a.get("compoundActions") or [])
        else:
            yield a


def parse_json_or_raw(text: str | None) -> Any:
    """``ParseToJToken``: JSON value of text, or the raw string if it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def new_state() -> dict[str, Any]:
    """Fresh per-execution bookkeeping."""
    return {
        "history": [],
        "seq": 0,
        "known": 0,
        "action_ids": [],
        "tasks": {},
        "retries": {},
        "last_ts": 0.0,
        "rewind_cache": {},
    }


@dataclass
class Dispatch:
    """Side effects an episode (or management op) commits together with the state."""

    work: list[tuple[int, str, str | None]]
    messages: list[tuple[str, str | None, float, str, int | None, dict[str, Any]]]
    children: list[dict[str, Any]]
    cancel_timers: list[int]


class Engine:
    """Runs orchestrations and activities against the SQLite task hub."""

    def __init__(self, store: Store, registry: Registry, config: HostConfig, app_dir: Path) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self.app_dir = str(app_dir)
        self._wake = threading.Event()
        self._act_wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[str] = set()
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._orch_pool = ThreadPoolExecutor(max(1, config.max_orchestrators), thread_name_prefix="orch")
        # Activities: ``_act_pool`` threads each wait (with functionTimeout) on one function call that runs in
        # ``_act_exec``. A timed-out call cannot be killed; it keeps its ``_act_exec`` worker until it returns
        # (a "stuck" call). Both pools are fixed, so the thread count is bounded whatever the activity count.
        workers = max(1, config.max_activities)
        self._act_pool = ThreadPoolExecutor(workers, thread_name_prefix="activity-wait")
        self._act_exec_size = 2 * workers
        self._act_exec = ThreadPoolExecutor(self._act_exec_size, thread_name_prefix="activity")
        self._stuck = 0
        self._stuck_warned = False
        self._threads: list[threading.Thread] = []
        self.on_instance_done: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the dispatcher threads."""
        for target, name in ((self._orch_loop, "orch-dispatch"), (self._act_loop, "act-dispatch")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop dispatching; running functions are abandoned (their work stays in the store)."""
        self._stop.set()
        self._wake.set()
        self._act_wake.set()
        for t in self._threads:
            t.join(timeout=5)
        self._orch_pool.shutdown(wait=False, cancel_futures=True)
        self._act_pool.shutdown(wait=False, cancel_futures=True)
        self._act_exec.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Nudge both dispatchers."""
        self._wake.set()
        self._act_wake.set()

    # ------------------------------------------------------------------ dispatch loops

    def _orch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            now = time.time()
            try:
                rows = self.store.query(
                    "SELECT DISTINCT i.instance_id FROM inbox i LEFT JOIN instances s "
                    "ON s.instance_id = i.instance_id WHERE i.visible_at <= ? "
                    "AND (s.status IS NULL OR s.status != 'Suspended') ORDER BY i.msg_id LIMIT 500",
                    (now,),
                )
                nxt = self.store.one("SELECT MIN(visible_at) AS t FROM inbox WHERE visible_at > ?", (now,))
            except Exception:  # noqa: BLE001 - keep the dispatcher alive
                traceback.print_exc()
                self._stop.wait(0.5)
                continue
            for row in rows:
                iid = row["instance_id"]
                with self._lock:
                    if iid in self._busy or len(self._busy) >= self.config.max_orchestrators:
                        continue
                    self._busy.add(iid)
                self._orch_pool.submit(self._run_instance, iid)
            timeout = 0.5
            if nxt is not None and nxt["t"] is not None:
                timeout = max(0.005, min(timeout, float(nxt["t"]) - now))
            self._wake.wait(timeout)

    def _run_instance(self, instance_id: str) -> None:
        try:
            for _ in range(20):
                if self._stop.is_set() or not self._episode(instance_id):
                    break
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        finally:
            with self._lock:
                self._busy.discard(instance_id)
            self._wake.set()

    def _act_loop(self) -> None:
        while not self._stop.is_set():
            self._act_wake.clear()
            try:
                rows = self.store.query("SELECT * FROM work_items ORDER BY work_id LIMIT 1000")
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                self._stop.wait(0.5)
                continue
            for row in rows:
                wid = int(row["work_id"])
                with self._lock:
                    if wid in self._inflight or len(self._inflight) >= self.config.max_activities:
                        continue
                    if len(self._inflight) + self._stuck >= self._act_exec_size:
                        self._warn_stuck()
                        continue
                    self._inflight.add(wid)
                self._act_pool.submit(self._run_activity, dict(row))
            self._act_wake.wait(0.5)

    # ------------------------------------------------------------------ activities

    def _run_activity(self, item: dict[str, Any]) -> None:
        wid = int(item["work_id"])
        try:
            self._execute_activity(item)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        finally:
            with self._lock:
                self._inflight.discard(wid)
            self._act_wake.set()

    def _warn_stuck(self) -> None:
        if not self._stuck_warned:
            self._stuck_warned = True
            sys.stderr.write(
                f"devhost: {self._stuck} activity worker(s) are held by calls that exceeded functionTimeout; "
                "new activities wait until they return (restart the host to free them)\n"
            )

    def _call_bounded(self, target: Callable[[], None]) -> str:
        """Run ``target`` on the activity executor: ``"done"``, ``"timeout"`` (exceeded ``functionTimeout``)
        or ``"abandoned"`` (the host is stopping; its work item stays for the next start).

        The timeout counts from the moment the call starts running, not from when it was queued.
        """
        started = threading.Event()

        def run() -> None:
            started.set()
            target()

        future = self._act_exec.submit(run)
        while not started.wait(0.5):
            if self._stop.is_set() or future.cancelled():
                return "abandoned"
        try:
            future.result(self.config.function_timeout_s)
        except FutureTimeout:
            with self._lock:
                self._stuck += 1

            def released(_: Future[None]) -> None:
                with self._lock:
                    self._stuck -= 1
                    self._stuck_warned = False
                self._act_wake.set()

            future.add_done_callback(released)
            return "timeout"
        except CancelledError:
            return "abandoned"
        return "done"

    def _execute_activity(self, item: dict[str, Any]) -> None:
        from azure.functions import meta
        from azure.functions.durable_functions import ActivityTriggerConverter

        name = item["name"]
        info = self.registry.activities.get(name)
        started = time.monotonic()
        inv = new_invocation_id()
        result_text: str | None = None
        reason: str | None = None
        details = ""
        if info is None:
            reason = f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
        else:
            value = ActivityTriggerConverter.decode(meta.Datum(value=item["input"], type="json"), trigger_metadata=None)
            kwargs = build_kwargs(info, value, inv, self.app_dir)
            outcome: dict[str, Any] = {}

            def target() -> None:
                try:
                    ret = call_sync(info, kwargs)
                    outcome["result"] = ActivityTriggerConverter.encode(ret, expected_type=None).value
                except BaseException as exc:  # noqa: BLE001 - reported to the orchestrator
                    outcome["error"] = exc
                    outcome["tb"] = traceback.format_exc()

            ran = self._call_bounded(target)
            if ran == "abandoned":
                return
            if ran == "timeout":
                reason = (
                    f"Activity function '{name}' failed: FunctionTimeoutException: Timeout value of "
                    f"{self.config.function_timeout_s}s was exceeded by function: Functions.{name}"
                )
            elif "error" in outcome:
                exc = outcome["error"]
                reason = f"Activity function '{name}' failed: {type(exc).__name__}: {exc}"
                details = str(outcome.get("tb", ""))
            else:
                result_text = outcome.get("result")
        log_execution(name, inv, started, reason, instance_id=item["instance_id"])
        now = time.time()
        if reason is None:
            ev = event(TC, now, TaskScheduledId=item["task_id"], Result=result_text)
        else:
            ev = event(TF, now, TaskScheduledId=item["task_id"], Reason=reason, Details=details)
        with self.store.tx() as conn:
            gone = conn.execute("DELETE FROM work_items WHERE work_id=?", (item["work_id"],)).rowcount
            if gone:
                row = conn.execute(
                    "SELECT status, execution_id FROM instances WHERE instance_id=?", (item["instance_id"],)
                ).fetchone()
                if row is not None and row["execution_id"] == item["execution_id"] and row["status"] not in TERMINAL:
                    conn.execute(
                        "INSERT INTO inbox(instance_id, execution_id, visible_at, event) VALUES(?,?,?,?)",
                        (item["instance_id"], item["execution_id"], now, json.dumps(ev)),
                    )
        self._wake.set()

    # ------------------------------------------------------------------ episodes

    def _episode(self, instance_id: str) -> bool:
        """Process one visible inbox message of the instance; False if there was none."""
        now = time.time()
        msg = self.store.one(
            "SELECT * FROM inbox WHERE instance_id=? AND visible_at<=? ORDER BY msg_id LIMIT 1", (instance_id, now)
        )
        if msg is None:
            return False
        row = self.store.one("SELECT * FROM instances WHERE instance_id=?", (instance_id,))
        msg_id = int(msg["msg_id"])
        if (
            row is None
            or row["status"] in TERMINAL
            or row["status"] == "Suspended"
            or (msg["execution_id"] is not None and msg["execution_id"] != row["execution_id"])
        ):
            if row is None or row["status"] != "Suspended":
                self.store.execute("DELETE FROM inbox WHERE msg_id=?", (msg_id,))
            return row is not None and row["status"] != "Suspended"
        ev: dict[str, Any] = json.loads(msg["event"])
        state: dict[str, Any] = json.loads(row["state"])
        tasks: dict[str, Any] = state["tasks"]
        etype = ev["EventType"]
        key = ev.get("TaskScheduledId", ev.get("TimerId"))
        if etype in (TC, TF, SOCOMP, SOF, TFI) and str(key) not in tasks:
            self.store.execute("DELETE FROM inbox WHERE msg_id=?", (msg_id,))  # stale / duplicate
            return True
        evs = [ev]
        msg_ids = [msg_id]
        if self._batchable(ev, tasks):
            # Plain completions carry no hidden id allocations, so several can share an episode
            # (docs/durable-protocol.md §3); retry-related events and everything else get an episode of their own.
            keys = {str(key)}
            for m in self.store.query(
                "SELECT * FROM inbox WHERE instance_id=? AND visible_at<=? AND msg_id>? ORDER BY msg_id LIMIT ?",
                (instance_id, now, msg_id, MAX_BATCH - 1),
            ):
                nxt: dict[str, Any] = json.loads(m["event"])
                nkey = str(nxt.get("TaskScheduledId", nxt.get("TimerId")))
                if m["execution_id"] != row["execution_id"] or nkey in keys or not self._batchable(nxt, tasks):
                    break
                keys.add(nkey)
                evs.append(nxt)
                msg_ids.append(int(m["msg_id"]))
        return self._run_episode(row, state, evs, msg_ids)

    @staticmethod
    def _batchable(ev: dict[str, Any], tasks: dict[str, Any]) -> bool:
        etype = ev["EventType"]
        task = tasks.get(str(ev.get("TaskScheduledId", ev.get("TimerId"))))
        if task is None:
            return False
        if etype in (TC, SOCOMP):
            return True
        if etype in (TF, SOF):
            return task.get("retry") is None
        return bool(etype == TFI and task.get("kind") == "timer")

    def _run_episode(self, row: Any, state: dict[str, Any], evs: list[dict[str, Any]], msg_ids: list[int]) -> bool:
        iid: str = row["instance_id"]
        name: str = row["name"]
        exec_id: str = row["execution_id"]
        tasks: dict[str, Any] = state["tasks"]
        retries: dict[str, Any] = state["retries"]
        now = max(time.time(), float(state["last_ts"]) + 0.000001)
        for e in evs:
            if e["EventType"] == TFI and e.get("FireAt"):
                now = max(now, parse_time(e["FireAt"]))
        state["last_ts"] = now
        history: list[dict[str, Any]] = state["history"]
        for h in history:
            h["IsPlayed"] = True
        history.append(event(OS, now))
        for e in evs:
            e["Timestamp"] = iso(now)
            e["IsPlayed"] = False
            history.append(e)
        ev = evs[0]
        d = Dispatch(work=[], messages=[], children=[], cancel_timers=[])
        decisions: list[dict[str, Any]] = []
        etype = ev["EventType"]
        key = ev.get("TaskScheduledId", ev.get("TimerId"))
        task = tasks.get(str(key)) if key is not None else None
        # Hidden id allocations the SDK makes while it processes this event (docs/durable-protocol.md §3).
        if etype in (TF, SOF) and task is not None and task.get("retry") is not None:
            rec = retries[task["retry"]]
            tid = state["seq"]
            state["seq"] += 1
            delay_ms = rec["interval_ms"] * rec.get("backoff", 1.0) ** (rec["attempts"] - 1)
            fire = now + min(delay_ms, rec.get("max_interval_ms", delay_ms)) / 1000.0
            decisions.append(event(TCR, now, tid, FireAt=iso(fire)))
            tasks[str(tid)] = {"kind": "retry_timer", "retry": task["retry"]}
            d.messages.append((iid, exec_id, fire, "timer", tid, event(TFI, fire, TimerId=tid, FireAt=iso(fire))))
        elif etype == TFI and task is not None and task["kind"] == "retry_timer":
            rec = retries[task["retry"]]
            if rec["attempts"] < rec["max"]:
                rid = state["seq"]
                state["seq"] += 1
                rec["attempts"] += 1
                self._schedule(
                    state,
                    d,
                    decisions,
                    iid,
                    exec_id,
                    rid,
                    rec["kind"],
                    rec["name"],
                    rec["input"],
                    rec.get("instance_id"),
                    task["retry"],
                    now,
                    row,
                )
        for e in evs:
            ekey = e.get("TaskScheduledId", e.get("TimerId"))
            if ekey is not None:
                tasks.pop(str(ekey), None)

        error, result = self._invoke_orchestrator(name, iid, row, history)
        flat = list(flatten(result.get("actions") or []))
        # Cancelled timers that are still armed.
        for idx, a in enumerate(flat[: state["known"]]):
            if a.get("actionType") == 5 and a.get("isCanceled") and idx < len(state["action_ids"]):
                tid = state["action_ids"][idx]
                if tid is not None and str(tid) in tasks:
                    tasks.pop(str(tid), None)
                    d.cancel_timers.append(tid)
        can_input: Any = None
        continue_as_new = False
        if error is None:
            for a in flat[state["known"] :]:
                at = a.get("actionType")
                if at == 6:
                    state["action_ids"].append(None)
                    continue
                aid = state["seq"]
                state["seq"] += 1
                state["action_ids"].append(aid)
                if at in (0, 1, 2, 3):
                    kind = "activity" if at in (0, 1) else "sub"
                    rid = None
                    if at in (1, 3):
                        ro = a.get("retryOptions") or {}
                        rid = str(aid)
                        retries[rid] = {
                            "kind": kind,
                            "name": a["functionName"],
                            "input": a.get("input"),
                            "attempts": 1,
                            "max": int(ro.get("maxNumberOfAttempts", 1)),
                            "interval_ms": float(ro.get("firstRetryIntervalInMilliseconds", 1000)),
                            # The extension's RetryOptions also honour these (the JS SDK sends them).
                            "backoff": float(ro.get("backoffCoefficient", 1.0)),
                            "max_interval_ms": float(ro.get("maxRetryIntervalInMilliseconds", 6 * 86400 * 1000)),
                            "instance_id": a.get("instanceId"),
                        }
                    self._schedule(
                        state,
                        d,
                        decisions,
                        iid,
                        exec_id,
                        aid,
                        kind,
                        a["functionName"],
                        a.get("input"),
                        a.get("instanceId"),
                        rid,
                        now,
                        row,
                    )
                elif at == 5:
                    fire_at = a["fireAt"]
                    decisions.append(event(TCR, now, aid, FireAt=fire_at))
                    if not a.get("isCanceled"):
                        tasks[str(aid)] = {"kind": "timer"}
                        fire = parse_time(fire_at)
                        d.messages.append(
                            (iid, exec_id, fire, "timer", aid, event(TFI, fire, TimerId=aid, FireAt=fire_at))
                        )
                elif at == 4:
                    continue_as_new = True
                    can_input = a.get("input")
                elif at == 8:
                    decisions.append(event(TS, now, aid, Name="BuiltIn::HttpActivity", Version="", Input=None))
                    tasks[str(aid)] = {"kind": "activity"}
                    d.messages.append(
                        (
                            iid,
                            exec_id,
                            now,
                            "",
                            None,
                            event(
                                TF, now, TaskScheduledId=aid, Reason="call_http is not supported by devhost", Details=""
                            ),
                        )
                    )
                else:  # 7 CallEntity, 9 SignalEntity, 10 ScheduledSignalEntity
                    error = ENTITIES_UNSUPPORTED
                    break
            state["known"] = len(flat)
        history.extend(decisions)
        status = "Running"
        output_text: str | None = row["output"]
        new_exec: str | None = None
        done_status: str | None = None
        if error is not None:
            done_status = "Failed"
            out = f"Orchestrator function '{name}' failed: {error}"
            output_text = json.dumps(out)
            history.append(
                event(
                    EC,
                    now,
                    OrchestrationStatus=3,
                    Result=output_text,
                    FailureDetails={"ErrorType": "OrchestrationFailure", "ErrorMessage": error},
                )
            )
            self._notify_parent(row, d, now, failed=True, reason=out, details=error)
        elif result.get("isDone"):
            if continue_as_new:
                history.append(event(EC, now, OrchestrationStatus=2, Result=None))
                status = "ContinuedAsNew"
                new_exec = uuid.uuid4().hex
            else:
                done_status = "Completed"
                output_text = json.dumps(result.get("output"))
                history.append(event(EC, now, OrchestrationStatus=1, Result=output_text))
                self._notify_parent(row, d, now, failed=False, result=output_text)
        history.append(event(OC, now))
        custom = result.get("customStatus")
        custom_text = None if custom is None else json.dumps(custom)
        if done_status is not None:
            status = done_status
        serialized_input = row["input"]
        if new_exec is not None:
            cache = state.get("rewind_cache", {})
            state = new_state()
            state["rewind_cache"] = cache
            state["last_ts"] = now
            serialized_input = None if can_input is None else json.dumps(can_input)
            d.messages.append(
                (iid, new_exec, now, "", None, self._started_event(name, iid, new_exec, serialized_input, row, now))
            )
        with self.store.tx() as conn:
            cur = conn.execute("SELECT execution_id, status FROM instances WHERE instance_id=?", (iid,)).fetchone()
            marks = ",".join("?" * len(msg_ids))
            if cur is None or cur["execution_id"] != exec_id or cur["status"] in TERMINAL:
                conn.execute(f"DELETE FROM inbox WHERE msg_id IN ({marks})", msg_ids)
                return True  # terminated / purged / rewound while the episode ran
            if conn.execute(f"DELETE FROM inbox WHERE msg_id IN ({marks})", msg_ids).rowcount != len(msg_ids):
                raise RuntimeError(f"inbox of {iid} changed during an episode")
            if cur["status"] == "Suspended" and status == "Running":
                status = "Suspended"
            conn.execute(
                "UPDATE instances SET status=?, output=?, custom_status=?, updated_time=?, state=?, "
                "execution_id=?, input=? WHERE instance_id=?",
                (
                    status,
                    output_text,
                    custom_text,
                    iso(now, False),
                    json.dumps(state),
                    new_exec or exec_id,
                    serialized_input,
                    iid,
                ),
            )
            self._apply(conn, d, iid, exec_id)
            if done_status is not None or new_exec is not None:
                conn.execute("DELETE FROM work_items WHERE instance_id=? AND execution_id=?", (iid, exec_id))
                conn.execute("DELETE FROM inbox WHERE instance_id=? AND execution_id=?", (iid, exec_id))
        if done_status is not None and self.on_instance_done is not None:
            self.on_instance_done(iid)
        self._wake.set()
        if d.work:
            self._act_wake.set()
        return True

    def _invoke_orchestrator(
        self, name: str, iid: str, row: Any, history: list[dict[str, Any]]
    ) -> tuple[str | None, dict[str, Any]]:
        info = self.registry.orchestrators.get(name)
        if info is None:
            return (
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.",
                {"actions": []},
            )
        ctx = {
            "history": history,
            "input": parse_json_or_raw(row["input"]),
            "instanceId": iid,
            "isReplaying": False,
            "parentInstanceId": row["parent_instance_id"],
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
        started = time.monotonic()
        inv = new_invocation_id()
        try:
            out = info.callable(json.dumps(ctx))
            result: dict[str, Any] = json.loads(out) if isinstance(out, str) else dict(out)
            log_execution(info.name, inv, started, None, instance_id=iid)
            return None, result
        except Exception as exc:  # noqa: BLE001 - orchestrator failure protocol
            text = str(exc)
            log_execution(info.name, inv, started, text.split("\n\n" + MARKER)[0], instance_id=iid)
            if MARKER in text:
                head, _, payload = text.partition(MARKER)
                try:
                    state = json.loads(payload)
                except ValueError:
                    return head.rstrip(), {"actions": []}
                err = state.get("error") or head.rstrip()
                return str(err), state
            return text or type(exc).__name__, {"actions": []}

    def _schedule(
        self,
        state: dict[str, Any],
        d: Dispatch,
        decisions: list[dict[str, Any]],
        iid: str,
        exec_id: str,
        tid: int,
        kind: str,
        fname: str,
        finput: Any,
        child_id: str | None,
        rid: str | None,
        now: float,
        row: Any,
    ) -> None:
        tasks = state["tasks"]
        cache: dict[str, list[Any]] = state.setdefault("rewind_cache", {})
        ckey = f"{kind}\x00{fname}\x00{finput}"
        if kind == "activity":
            decisions.append(event(TS, now, tid, Name=fname, Version="", Input=finput))
            tasks[str(tid)] = {"kind": "activity", "retry": rid}
            if cache.get(ckey):
                d.messages.append(
                    (iid, exec_id, now, "", None, event(TC, now, TaskScheduledId=tid, Result=cache[ckey].pop(0)))
                )
            else:
                d.work.append((tid, fname, finput))
            return
        cid = child_id or f"{exec_id}:{tid}"
        decisions.append(event(SOC, now, tid, Name=fname, Version="", InstanceId=cid, Input=finput))
        tasks[str(tid)] = {"kind": "sub", "retry": rid, "instance": cid}
        if cache.get(ckey):
            d.messages.append(
                (iid, exec_id, now, "", None, event(SOCOMP, now, TaskScheduledId=tid, Result=cache[ckey].pop(0)))
            )
            return
        d.children.append(
            {
                "instance_id": cid,
                "name": fname,
                "input": None if finput is None else json.dumps(finput),
                "parent": (iid, exec_id, tid),
                "now": now,
            }
        )

    def _notify_parent(
        self,
        row: Any,
        d: Dispatch,
        now: float,
        failed: bool,
        result: str | None = None,
        reason: str = "",
        details: str = "",
    ) -> None:
        if row["parent_instance_id"] is None:
            return
        if failed:
            ev = event(SOF, now, TaskScheduledId=row["parent_task_id"], Reason=reason, Details=details)
        else:
            ev = event(SOCOMP, now, TaskScheduledId=row["parent_task_id"], Result=result)
        d.messages.append((row["parent_instance_id"], row["parent_execution_id"], now, "", None, ev))

    def _started_event(
        self, name: str, iid: str, exec_id: str, serialized_input: str | None, row: Any, now: float
    ) -> dict[str, Any]:
        parent = None
        if row is not None and row["parent_instance_id"] is not None:
            parent = {
                "Name": None,
                "TaskScheduleId": row["parent_task_id"],
                "OrchestrationInstance": {
                    "InstanceId": row["parent_instance_id"],
                    "ExecutionId": row["parent_execution_id"],
                },
            }
        return event(
            ES,
            now,
            Name=name,
            Version="",
            Input=serialized_input,
            OrchestrationInstance={"InstanceId": iid, "ExecutionId": exec_id},
            ParentInstance=parent,
            Tags=None,
        )

    def _apply(self, conn: Any, d: Dispatch, iid: str, exec_id: str) -> None:
        for miid, mexec, visible, kind, task_id, ev in d.messages:
            conn.execute(
                "INSERT INTO inbox(instance_id, execution_id, visible_at, kind, task_id, event) VALUES(?,?,?,?,?,?)",
                (miid, mexec, visible, kind, task_id, json.dumps(ev)),
            )
        for tid in d.cancel_timers:
            conn.execute("DELETE FROM inbox WHERE kind='timer' AND task_id=? AND instance_id=?", (tid, iid))
        for tid, fname, finput in d.work:
            conn.execute(
                "INSERT INTO work_items(instance_id, execution_id, task_id, name, input) VALUES(?,?,?,?,?)",
                (iid, exec_id, tid, fname, finput),
            )
        for child in d.children:
            piid, pexec, ptid = child["parent"]
            self._create_instance(
                conn, child["instance_id"], child["name"], child["input"], child["now"], parent=(piid, pexec, ptid)
            )

    # ------------------------------------------------------------------ creation

    def _create_instance(
        self,
        conn: Any,
        iid: str,
        name: str,
        serialized_input: str | None,
        now: float,
        parent: tuple[str, str, int] | None = None,
    ) -> None:
        exec_id = uuid.uuid4().hex
        cur = conn.execute("SELECT status FROM instances WHERE instance_id=?", (iid,)).fetchone()
        if cur is not None:
            if cur["status"] not in TERMINAL:
                if parent is not None:
                    ev = event(
                        SOF,
                        now,
                        TaskScheduledId=parent[2],
                        Reason=f"An instance with ID '{iid}' already exists.",
                        Details="",
                    )
                    conn.execute(
                        "INSERT INTO inbox(instance_id, execution_id, visible_at, event) VALUES(?,?,?,?)",
                        (parent[0], parent[1], now, json.dumps(ev)),
                    )
                    return
                raise DurableError(409, f"An instance with ID '{iid}' already exists.")
            self._delete_instance(conn, iid)
        state = new_state()
        conn.execute(
            "INSERT INTO instances(instance_id, name, execution_id, status, input, output, custom_status, "
            "created_time, created_ts, updated_time, parent_instance_id, parent_execution_id, parent_task_id, "
            "state) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                iid,
                name,
                exec_id,
                "Pending",
                serialized_input,
                None,
                None,
                iso(now, False),
                now,
                iso(now, False),
                parent[0] if parent else None,
                parent[1] if parent else None,
                parent[2] if parent else None,
                json.dumps(state),
            ),
        )
        row = {
            "parent_instance_id": parent[0] if parent else None,
            "parent_execution_id": parent[1] if parent else None,
            "parent_task_id": parent[2] if parent else None,
        }
        ev = self._started_event(name, iid, exec_id, serialized_input, row, now)
        conn.execute(
            "INSERT INTO inbox(instance_id, execution_id, visible_at, event) VALUES(?,?,?,?)",
            (iid, exec_id, now, json.dumps(ev)),
        )

    @staticmethod
    def _delete_instance(conn: Any, iid: str) -> None:
        conn.execute("DELETE FROM instances WHERE instance_id=?", (iid,))
        conn.execute("DELETE FROM inbox WHERE instance_id=?", (iid,))
        conn.execute("DELETE FROM work_items WHERE instance_id=?", (iid,))

    # ------------------------------------------------------------------ management operations

    def start_new(self, name: str, instance_id: str | None, serialized_input: str | None) -> str:
        """Create an instance; raises DurableError(400) for unknown orchestrators, 409 if running."""
        if name not in self.registry.orchestrators:
            raise DurableError(
                400, f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        iid = instance_id or uuid.uuid4().hex
        if (
            not iid.strip()
            or len(iid) > 256
            or any(c in iid for c in "/\\#?")
            or any(ord(c) < 32 or ord(c) == 127 for c in iid)
        ):
            raise DurableError(400, f"Instance ID '{iid}' is not valid (empty, too long, or contains /, \\, # or ?).")
        with self.store.tx() as conn:
            self._create_instance(conn, iid, name, serialized_input, time.time())
        self._wake.set()
        return iid

    def get(self, instance_id: str) -> dict[str, Any] | None:
        """The instance row as a dict, or None."""
        row = self.store.one("SELECT * FROM instances WHERE instance_id=?", (instance_id,))
        return None if row is None else dict(row)

    @staticmethod
    def _instance_row(conn: Any, instance_id: str, *, live: bool = False) -> Any:
        """The instance's row in this transaction: 404 when unknown, 410 when ``live`` and it has ended."""
        row = conn.execute("SELECT * FROM instances WHERE instance_id=?", (instance_id,)).fetchone()
        if row is None:
            raise DurableError(404, f"No instance with ID '{instance_id}' found.")
        if live and row["status"] in TERMINAL:
            raise DurableError(410, f"The instance '{instance_id}' is {row['status']}.")
        return row

    def raise_event(self, instance_id: str, event_name: str, input_text: str | None) -> None:
        """Deliver an external event (404 unknown, 410 terminal)."""
        now = time.time()
        with self.store.tx() as conn:
            self._instance_row(conn, instance_id, live=True)
            ev = event(ER, now, Name=event_name, Input=input_text)
            conn.execute(
                "INSERT INTO inbox(instance_id, execution_id, visible_at, event) VALUES(?,?,?,?)",
                (instance_id, None, now, json.dumps(ev)),
            )
        self._wake.set()

    def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate a non-terminal instance."""
        now = time.time()
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id, live=True)
            state = json.loads(row["state"])
            for h in state["history"]:
                h["IsPlayed"] = True
            state["history"] += [
                event(ET, now, Input=reason),
                event(EC, now, OrchestrationStatus=5, Result=json.dumps(reason)),
            ]
            conn.execute(
                "UPDATE instances SET status='Terminated', output=?, updated_time=?, state=? WHERE instance_id=?",
                (json.dumps(reason), iso(now, False), json.dumps(state), instance_id),
            )
            conn.execute("DELETE FROM inbox WHERE instance_id=?", (instance_id,))
            conn.execute("DELETE FROM work_items WHERE instance_id=?", (instance_id,))
        if self.on_instance_done is not None:
            self.on_instance_done(instance_id)

    def suspend(self, instance_id: str, reason: str) -> None:
        """Stop running episodes until resumed."""
        self._set_suspended(instance_id, True)

    def resume(self, instance_id: str, reason: str) -> None:
        """Resume a suspended instance."""
        self._set_suspended(instance_id, False)
        self._wake.set()

    def _set_suspended(self, instance_id: str, suspend: bool) -> None:
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id, live=True)
            if suspend:
                conn.execute(
                    "UPDATE instances SET status='Suspended', updated_time=? WHERE instance_id=?",
                    (iso(time.time(), False), instance_id),
                )
            elif row["status"] == "Suspended":
                conn.execute(
                    "UPDATE instances SET status='Running', updated_time=? WHERE instance_id=?",
                    (iso(time.time(), False), instance_id),
                )

    def rewind(self, instance_id: str, reason: str) -> None:
        """Rewind a Failed instance: replay from the start; previously successful results are reused."""
        now = time.time()
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id)
            if row["status"] != "Failed":
                raise DurableError(412, f"The instance '{instance_id}' is {row['status']}, not Failed.")
            old = json.loads(row["state"])
            cache: dict[str, list[Any]] = {}
            scheduled: dict[int, str] = {}
            for h in old["history"]:
                if h["EventType"] == TS:
                    scheduled[h["EventId"]] = f"activity\x00{h.get('Name')}\x00{h.get('Input')}"
                elif h["EventType"] == SOC:
                    scheduled[h["EventId"]] = f"sub\x00{h.get('Name')}\x00{h.get('Input')}"
                elif h["EventType"] in (TC, SOCOMP) and h.get("TaskScheduledId") in scheduled:
                    cache.setdefault(scheduled[h["TaskScheduledId"]], []).append(h.get("Result"))
            exec_id = uuid.uuid4().hex
            state = new_state()
            state["rewind_cache"] = cache
            state["last_ts"] = now
            conn.execute(
                "UPDATE instances SET status='Running', output=NULL, custom_status=NULL, updated_time=?, "
                "state=?, execution_id=? WHERE instance_id=?",
                (iso(now, False), json.dumps(state), exec_id, instance_id),
            )
            conn.execute("DELETE FROM inbox WHERE instance_id=?", (instance_id,))
            conn.execute("DELETE FROM work_items WHERE instance_id=?", (instance_id,))
            ev = self._started_event(row["name"], instance_id, exec_id, row["input"], row, now)
            conn.execute(
                "INSERT INTO inbox(instance_id, execution_id, visible_at, event) VALUES(?,?,?,?)",
                (instance_id, exec_id, now, json.dumps(ev)),
            )
        self._wake.set()

    def restart(self, instance_id: str, new_id: bool) -> str:
        """Start the same orchestrator with the same input (new id or same id)."""
        row = self.get(instance_id)
        if row is None:
            raise DurableError(400, f"No instance with ID '{instance_id}' found.")
        target = uuid.uuid4().hex if new_id else instance_id
        with self.store.tx() as conn:
            self._create_instance(conn, target, row["name"], row["input"], time.time())
        self._wake.set()
        return target

    def purge(self, instance_id: str) -> int:
        """Delete a terminal instance (404 unknown, 412 running)."""
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id)
            if row["status"] not in TERMINAL:
                raise DurableError(412, f"The instance '{instance_id}' is {row['status']}.")
            self._delete_instance(conn, instance_id)
        return 1

    def query(
        self, created_from: float | None, created_to: float | None, statuses: list[str] | None, prefix: str | None
    ) -> list[dict[str, Any]]:
        """Instances matching the filters, oldest first."""
        sql, args = _created_range(created_from, created_to)
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += statuses
        if prefix:
            sql += " AND substr(instance_id, 1, ?) = ?"
            args += [len(prefix), prefix]
        sql += " ORDER BY created_ts, instance_id"
        return [dict(r) for r in self.store.query(sql, args)]

    def query_page(
        self,
        created_from: float | None,
        created_to: float | None,
        statuses: list[str] | None,
        prefix: str | None,
        top: int,
        after: tuple[float, str] | None,
        segment: int,
    ) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
        """One page of an instance query, the way the Azure Storage backend answers it.

        Instances are scanned in (created time, instance id) order after the ``after`` key; one request scans
        at most ``segment`` instances of the created-time range (the table service's per-request limit) and
        keeps those matching the status and prefix filters, up to ``top``. Returns the page and the key to
        continue after, or None when the scan is complete. A page may therefore be short, or even empty,
        and still have a continuation.
        """
        sql, args = _created_range(created_from, created_to)
        if after is not None:
            sql += " AND (created_ts > ? OR (created_ts = ? AND instance_id > ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_ts, instance_id LIMIT ?"
        args.append(segment + 1)
        scanned = [dict(r) for r in self.store.query(sql, args)]
        page: list[dict[str, Any]] = []
        read = 0
        for row in scanned[:segment]:
            read += 1
            if (not statuses or row["status"] in statuses) and (not prefix or row["instance_id"].startswith(prefix)):
                page.append(row)
                if len(page) >= top:
                    break
        if read >= len(scanned):
            return page, None
        stop = scanned[read - 1]
        return page, (float(stop["created_ts"]), str(stop["instance_id"]))

    def purge_by(self, created_from: float, created_to: float | None, statuses: list[str] | None) -> int:
        """Delete terminal instances matching the filters."""
        rows = self.query(created_from, created_to, statuses or list(TERMINAL), None)
        n = 0
        with self.store.tx() as conn:
            for r in rows:
                if r["status"] in TERMINAL:
                    self._delete_instance(conn, r["instance_id"])
                    n += 1
        return n


def _created_range(created_from: float | None, created_to: float | None) -> tuple[str, list[Any]]:
    """The instances query (SQL and arguments) limited to a created-time range; filters are appended to it."""
    sql = "SELECT * FROM instances WHERE 1=1"
    args: list[Any] = []
    if created_from is not None:
        sql += " AND created_ts >= ?"
        args.append(created_from)
    if created_to is not None:
        sql += " AND created_ts <= ?"
        args.append(created_to)
    return sql, args


def render_history(state: dict[str, Any], show_output: bool, show_input: bool) -> list[dict[str, Any]]:
    """History as the extension's status API renders it (names, scheduled rows folded in)."""
    scheduled: dict[int, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for h in state.get("history", []):
        et = h["EventType"]
        if et in (OS, OC):
            continue
        if et in (TS, SOC):
            scheduled[h["EventId"]] = h
            continue
        r = {k: v for k, v in h.items() if k not in ("EventId", "IsPlayed", "TaskScheduledId", "TimerId")}
        r["EventType"] = EVENT_NAMES.get(et, str(et))
        if et in (TC, TF, SOCOMP, SOF):
            s = scheduled.get(h.get("TaskScheduledId", -2))
            if s is not None:
                r["FunctionName"] = s.get("Name")
                r["ScheduledTime"] = s.get("Timestamp")
                if show_input:
                    r["Input"] = parse_json_or_raw(s.get("Input"))
        if et == ES:
            r["FunctionName"] = r.pop("Name", None)
            for k in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                r.pop(k, None)
            if not show_input:
                r.pop("Input", None)
        if et == EC:
            r["OrchestrationStatus"] = next(
                (k for k, v in ORCH_STATUS_INT.items() if v == h.get("OrchestrationStatus")), None
            )
        if "Result" in r:
            if show_output:
                r["Result"] = parse_json_or_raw(r["Result"])
            else:
                r.pop("Result")
        out.append(r)
    return out
