"""The Durable engine: runs episodes and activities against the task hub and answers management operations.

An episode: read the instance's visible messages, pick the batch (``decisions.select_batch``), open the
episode (``decisions.begin``), hand the SDK the stored history plus the new events, let the decision core turn
the SDK's answer into a ``Decision`` and commit it in one transaction (``TaskHub.commit_episode``). The module
map is in ``docs/devhost-engine.md``; the protocol in ``docs/durable-protocol.md``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devhost import decisions
from devhost.app_loader import HostConfig, Registry
from devhost.decisions import InstanceState, OrchestratorResult
from devhost.entities_worker import EntityWorker
from devhost.invoke import build_kwargs, call_sync, log_execution, new_invocation_id
from devhost.protocol import (
    MARKER,
    TERMINAL,
    DurableError,
    Event,
    EventType,
    event,
    parse_json_or_raw,
)
from devhost.store import Store
from devhost.taskhub import ActivityWork, TaskHub
from devhost.versioning import read_versioning
from devhost.workers import ActivityWorkers, OrchestrationWorkers

# How long an instance this host must not run (versionFailureStrategy Reject) waits before it is looked at again.
REJECT_DELAY_S = 5.0


def _new_id() -> str:
    return uuid.uuid4().hex


def valid_instance_id(instance_id: str) -> bool:
    """Whether an instance id is one the extension accepts."""
    return not (
        not instance_id.strip()
        or len(instance_id) > 256
        or any(c in instance_id for c in "/\\#?")
        or any(ord(c) < 32 or ord(c) == 127 for c in instance_id)
    )


class HistoryCache:
    """The stored history of recently run executions as one JSON text, so an episode reads only the rows added
    since and the host never re-encodes (nor re-joins) the history it already handed the SDK.

    Rows are append-only and stored as played, so a cached prefix stays valid while the execution id is the
    same and the history has not shrunk; anything else (rewind, continue-as-new, purge) reloads it.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        # instance id -> (execution id, rows, the rows' stored texts joined with ",")
        self._entries: OrderedDict[str, tuple[str, int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, hub: TaskHub, instance: InstanceState, history_len: int) -> str:
        """The execution's ``history_len`` stored rows as the inside of a JSON array (``""`` when none)."""
        iid = instance.instance_id
        with self._lock:
            entry = self._entries.pop(iid, None)
        count, text = 0, ""
        if entry is not None and entry[0] == instance.execution_id and entry[1] <= history_len:
            count, text = entry[1], entry[2]
        if count < history_len:
            added = hub.history_texts(iid, count)
            count += len(added)
            text = ",".join([text, *added]) if text else ",".join(added)
        if count != history_len:
            raise RuntimeError(f"the history of {iid} has {count} rows, not {history_len}")
        with self._lock:
            self._entries[iid] = (instance.execution_id, count, text)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return text


class Engine:
    """Runs orchestrations and activities against the SQLite task hub."""

    def __init__(self, store: Store, registry: Registry, config: HostConfig, app_dir: Path) -> None:
        self.store = store
        self.hub = TaskHub(store)
        self.registry = registry
        self.config = config
        self.app_dir = str(app_dir)
        self.versioning = read_versioning(app_dir)
        self._rejected: set[str] = set()
        self.orchestrations = OrchestrationWorkers(self.hub, config.max_orchestrators, self.episode)
        self.activities = ActivityWorkers(
            self.hub,
            config.max_activities,
            config.function_timeout_s,
            self._run_activity,
            self._timed_out,
            lambda item: self.orchestrations.kick(item.instance_id),
        )
        self.entities = EntityWorker(self.hub, registry, config, app_dir, self.orchestrations.kick)
        self.on_instance_done: Callable[[str], None] | None = None
        self._history = HistoryCache()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the dispatchers and workers."""
        self.orchestrations.start()
        self.activities.start()
        self.entities.start()

    def stop(self) -> None:
        """Stop dispatching; running functions are abandoned (their work stays in the store)."""
        self.entities.stop()
        self.orchestrations.stop()
        self.activities.stop()

    def wake(self) -> None:
        """Nudge the dispatchers."""
        self.orchestrations.wake.set()
        self.activities.wake.set()
        self.entities.wake()

    # ------------------------------------------------------------------ episodes

    def episode(self, instance_id: str) -> bool:
        """Run one episode of the instance; False when it had nothing to do now."""
        now = time.time()
        messages = self.hub.visible_messages(instance_id, now, decisions.MAX_BATCH)
        if not messages:
            return False
        row = self.hub.get(instance_id)
        suspended = row is not None and row["status"] == "Suspended"
        if suspended:
            return False
        first = messages[0]
        if row is None or row["status"] in TERMINAL or first.execution_id not in (None, row["execution_id"]):
            self.hub.drop_messages([first.msg_id])
            return row is not None
        instance = self.hub.state_of(row)
        tasks = self.hub.open_tasks(instance_id)
        taken = decisions.select_batch(tasks, [(m.execution_id, m.event) for m in messages], instance.execution_id)
        if taken == 0:
            self.hub.drop_messages([first.msg_id])  # stale or duplicate
            return True
        batch = messages[:taken]
        why = self.versioning.mismatch(instance.version)
        if why is not None and self.versioning.failure == "Reject":
            self._reject(instance_id, why, now)
            return False
        t, opening = decisions.begin(instance, [m.event for m in batch], now)
        history_len = int(row["history_len"])
        stored = self._history.read(self.hub, instance, history_len)
        result = (
            OrchestratorResult(error=why) if why is not None else self._invoke_orchestrator(instance, stored, opening)
        )
        decision = decisions.decide(
            instance,
            tasks,
            opening,
            result,
            t,
            _new_id,
            self.versioning.default_version,
            entity_names=self.entities.names,
        )
        work = self.hub.commit_episode(instance, history_len, [m.msg_id for m in batch], decision)
        if work is None:
            return True  # terminated, purged or rewound while the episode ran
        self.activities.submit(work)
        if decision.finished and self.on_instance_done is not None:
            self.on_instance_done(instance_id)
        if decision.messages or decision.children:
            self.orchestrations.wake.set()
        if decision.entity_requests:
            self.entities.wake()
        return True

    def _reject(self, instance_id: str, why: str, now: float) -> None:
        """Leave an instance this host must not run for later (versionFailureStrategy Reject), saying so once."""
        self.hub.defer(instance_id, now, now + REJECT_DELAY_S)
        if instance_id not in self._rejected:
            self._rejected.add(instance_id)
            sys.stderr.write(f"devhost: instance '{instance_id}' waits: {why}\n")

    def _invoke_orchestrator(self, instance: InstanceState, stored: str, opening: list[Event]) -> OrchestratorResult:
        """Call the orchestrator with its context: the stored history (played) plus this episode's events."""
        info = self.registry.orchestrators.get(instance.name)
        if info is None:
            return OrchestratorResult(
                error=f"The function '{instance.name}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        rest = json.dumps(
            {
                "input": parse_json_or_raw(instance.input),
                "instanceId": instance.instance_id,
                "isReplaying": False,
                "parentInstanceId": None if instance.parent is None else instance.parent[0],
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
            }
        )
        # The stored rows are spliced in as text: the host never re-parses nor re-serializes old history.
        new = ",".join(json.dumps(ev) for ev in opening)
        context = '{"history": [' + (stored + "," + new if stored else new) + "], " + rest[1:]
        started, cpu = time.monotonic(), time.thread_time()
        inv = new_invocation_id()
        try:
            out = info.callable(context)
            state: dict[str, Any] = json.loads(out) if isinstance(out, str) else dict(out)
            log_execution(info.name, inv, started, None, instance_id=instance.instance_id, cpu_started=cpu)
            return OrchestratorResult.from_state(state)
        except Exception as exc:  # noqa: BLE001 - orchestrator failure protocol
            text = str(exc)
            log_execution(info.name, inv, started, text.split("\n\n" + MARKER)[0], instance_id=instance.instance_id)
            if MARKER in text:
                head, _, payload = text.partition(MARKER)
                try:
                    carried = json.loads(payload)
                except ValueError:
                    return OrchestratorResult(error=head.rstrip())
                return OrchestratorResult.from_state(carried, str(carried.get("error") or head.rstrip()))
            return OrchestratorResult(error=text or type(exc).__name__)

    # ------------------------------------------------------------------ activities

    def _run_activity(self, item: ActivityWork) -> Event:
        """Run one activity; its ``TaskCompleted`` or ``TaskFailed`` event."""
        from azure.functions import meta
        from azure.functions.durable_functions import ActivityTriggerConverter

        name = item.name
        info = self.registry.activities.get(name)
        started, cpu = time.monotonic(), time.thread_time()
        inv = new_invocation_id()
        now = time.time()
        if info is None:
            reason = f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            log_execution(name, inv, started, reason, instance_id=item.instance_id)
            return event(EventType.TASK_FAILED, now, TaskScheduledId=item.task_id, Reason=reason, Details="")
        value = ActivityTriggerConverter.decode(meta.Datum(value=item.input, type="json"), trigger_metadata=None)
        kwargs = build_kwargs(info, value, inv, self.app_dir)
        try:
            ret = call_sync(info, kwargs)
            result = ActivityTriggerConverter.encode(ret, expected_type=None).value
        except BaseException as exc:  # noqa: BLE001 - reported to the orchestrator
            reason = f"Activity function '{name}' failed: {type(exc).__name__}: {exc}"
            log_execution(name, inv, started, reason, instance_id=item.instance_id)
            details = traceback.format_exc()
            return event(
                EventType.TASK_FAILED, time.time(), TaskScheduledId=item.task_id, Reason=reason, Details=details
            )
        log_execution(name, inv, started, None, instance_id=item.instance_id, cpu_started=cpu)
        return event(EventType.TASK_COMPLETED, time.time(), TaskScheduledId=item.task_id, Result=result)

    def _timed_out(self, item: ActivityWork, elapsed_s: float) -> Event:
        reason = (
            f"Activity function '{item.name}' failed: FunctionTimeoutException: Timeout value of "
            f"{self.config.function_timeout_s}s was exceeded by function: Functions.{item.name}"
        )
        log_execution(
            item.name, new_invocation_id(), time.monotonic() - elapsed_s, reason, instance_id=item.instance_id
        )
        return event(EventType.TASK_FAILED, time.time(), TaskScheduledId=item.task_id, Reason=reason, Details="")

    # ------------------------------------------------------------------ management operations

    def start_new(
        self, name: str, instance_id: str | None, serialized_input: str | None, version: str | None = None
    ) -> str:
        """Create an instance; raises DurableError(400) for unknown orchestrators, 409 if running."""
        if name not in self.registry.orchestrators:
            raise DurableError(
                400, f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        iid = instance_id or _new_id()
        if not valid_instance_id(iid):
            raise DurableError(400, f"Instance ID '{iid}' is not valid (empty, too long, or contains /, \\, # or ?).")
        chosen = self.versioning.default_version if version is None else version
        self.hub.start(iid, name, serialized_input, time.time(), _new_id(), chosen)
        self.orchestrations.wake.set()
        return iid

    def get(self, instance_id: str) -> dict[str, Any] | None:
        """The instance row as a dict, or None."""
        return self.hub.get(instance_id)

    def history(self, instance_id: str) -> list[Event]:
        """The current execution's history events."""
        return self.hub.history(instance_id)

    def raise_event(self, instance_id: str, event_name: str, input_text: str | None) -> None:
        """Deliver an external event (404 unknown, 410 terminal)."""
        now = time.time()
        self.hub.raise_event(instance_id, event(EventType.EVENT_RAISED, now, Name=event_name, Input=input_text), now)
        self.orchestrations.wake.set()

    def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate a non-terminal instance."""
        self.hub.terminate(instance_id, reason, time.time())
        if self.on_instance_done is not None:
            self.on_instance_done(instance_id)

    def suspend(self, instance_id: str, reason: str) -> None:
        """Stop running episodes until resumed."""
        self.hub.set_suspended(instance_id, True, time.time())

    def resume(self, instance_id: str, reason: str) -> None:
        """Resume a suspended instance."""
        self.hub.set_suspended(instance_id, False, time.time())
        self.orchestrations.wake.set()

    def rewind(self, instance_id: str, reason: str) -> None:
        """Rewind a Failed instance: replay from the start; previously successful results are reused."""
        self.hub.rewind(instance_id, time.time(), _new_id())
        self.orchestrations.wake.set()

    def restart(self, instance_id: str, new_id: bool) -> str:
        """Start the same orchestrator with the same input (new id or same id)."""
        row = self.hub.get(instance_id)
        if row is None:
            raise DurableError(400, f"No instance with ID '{instance_id}' found.")
        target = _new_id() if new_id else instance_id
        self.hub.start(target, row["name"], row["input"], time.time(), _new_id(), row["version"])
        self.orchestrations.wake.set()
        return target

    def purge(self, instance_id: str) -> int:
        """Delete a terminal instance (404 unknown, 412 running)."""
        return self.hub.purge(instance_id)

    def query(
        self, created_from: float | None, created_to: float | None, statuses: list[str] | None, prefix: str | None
    ) -> list[dict[str, Any]]:
        """Instances matching the filters, oldest first."""
        return self.hub.query(created_from, created_to, statuses, prefix)

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
        scanned = self.hub.scan(created_from, created_to, after, segment + 1)
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
        return self.hub.purge_many([r["instance_id"] for r in rows])
