"""The decision core: one orchestration episode as a pure function over typed values.

Input: the instance's bookkeeping (``InstanceState``), its open tasks, the new events of the episode and what
the SDK answered (``OrchestratorResult``). Output (``Decision``): the history rows to append, the tasks opened
and closed, activity work items, inbox messages (to this instance or others: timers, completions for a parent,
a next execution's start), child instances to create, timers to cancel and the instance's new status.

No I/O, no clock, no randomness: the caller passes ``now`` and a ``new_id`` function. Each action type has one
handler in ``HANDLERS`` (keyed by the SDK's ``ActionType``); ``docs/devhost-engine.md`` says how to add one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devhost.entities import EntityId, EntityProtocolError, EntityRequest, request_from_action
from devhost.protocol import (
    COMPLETIONS,
    SCHEDULED_SIGNAL_ENTITY,
    STATUS_CODE,
    ActionType,
    Event,
    EventType,
    RuntimeStatus,
    event,
    flatten,
    iso,
    parse_time,
    started_event,
    task_key,
)

# Plain completions that may share one episode (docs/durable-protocol.md §3): the SDK replays the whole history
# once per episode, so a fan-in takes every completion that is there.
MAX_BATCH = 1000


@dataclass
class RetryPolicy:
    """A ``call_*_with_retry`` in progress: what to call again, and how often and when."""

    kind: str  # "activity" | "sub"
    name: str
    input: str | None
    max_attempts: int
    first_interval_ms: float
    backoff: float = 1.0
    max_interval_ms: float = 6 * 86400 * 1000.0
    instance_id: str | None = None
    version: str | None = None
    attempts: int = 1

    def delay_s(self) -> float:
        """Seconds to wait before the next attempt (the extension's exponential back-off, capped)."""
        delay_ms = self.first_interval_ms * self.backoff ** (self.attempts - 1)
        return min(delay_ms, self.max_interval_ms) / 1000.0

    def to_json(self) -> str:
        """Stored form."""
        return json.dumps(self.__dict__)

    @staticmethod
    def from_json(text: str | None) -> RetryPolicy | None:
        """Inverse of ``to_json`` (None stays None)."""
        return None if text is None else RetryPolicy(**json.loads(text))


@dataclass
class OpenTask:
    """A task of the current execution that waits for an answer (completion, failure or timer firing)."""

    task_id: int
    kind: str  # "activity" | "sub" | "timer" | "retry_timer"
    action_index: int | None = None  # the SDK action that opened it (to notice a cancelled timer)
    child: str | None = None  # a sub-orchestration's instance id
    retry: RetryPolicy | None = None


@dataclass
class InstanceState:
    """What the decision core needs of an instance (one row of the task hub's ``instances``)."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None = None
    output: str | None = None
    parent: tuple[str, str, int] | None = None  # parent instance, execution, task id
    version: str = ""
    next_id: int = 0  # the next task id to allocate (the SDK's own numbering)
    known: int = 0  # actions of the SDK seen so far in this execution
    last_ts: float = 0.0
    rewind_cache: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class OrchestratorResult:
    """What the SDK answered: its state JSON, or the error it raised (with the state it carried)."""

    actions: list[Any] = field(default_factory=list)
    done: bool = False
    output: Any = None
    custom_status: Any = None
    error: str | None = None

    @staticmethod
    def from_state(state: dict[str, Any], error: str | None = None) -> OrchestratorResult:
        """From the SDK's state dict (``isDone``, ``output``, ``actions``, ``customStatus``)."""
        return OrchestratorResult(
            actions=list(state.get("actions") or []),
            done=bool(state.get("isDone")),
            output=state.get("output"),
            custom_status=state.get("customStatus"),
            error=error,
        )


@dataclass
class Message:
    """An event for an instance's inbox, visible from ``visible_at``; ``timer_id`` marks a cancellable timer."""

    instance_id: str
    execution_id: str | None
    visible_at: float
    event: Event
    timer_id: int | None = None


@dataclass
class WorkItem:
    """An activity execution to run."""

    task_id: int
    name: str
    input: str | None


@dataclass
class ChildStart:
    """A sub-orchestration instance to create."""

    instance_id: str
    name: str
    input: str | None
    parent: tuple[str, str, int]
    execution_id: str
    version: str = ""


@dataclass
class Decision:
    """Everything one episode changes; the task hub commits it in one transaction."""

    history: list[Event] = field(default_factory=list)
    status: str = RuntimeStatus.Running.value
    output: str | None = None
    custom_status: str | None = None
    next_id: int = 0
    known: int = 0
    last_ts: float = 0.0
    opened: list[OpenTask] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    work: list[WorkItem] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    children: list[ChildStart] = field(default_factory=list)
    cancel_timers: list[int] = field(default_factory=list)
    rewind_cache: dict[str, list[Any]] | None = None  # the new cache when it changed
    new_execution: tuple[str, str | None] | None = None  # continue-as-new: (execution id, input)
    finished: bool = False  # Completed or Failed
    entity_requests: list[tuple[EntityId, EntityRequest]] = field(default_factory=list)  # calls and signals


@dataclass
class Episode:
    """The working state of one decision: the handlers read and extend it."""

    instance: InstanceState
    tasks: dict[int, OpenTask]
    now: float
    new_id: Callable[[], str]
    decision: Decision
    default_version: str = ""
    error: str | None = None
    continue_as_new: tuple[bool, Any] = (False, None)
    entity_names: frozenset[str] | None = None  # the app's entity functions (lowercased); None: not checked

    def allocate(self) -> int:
        """The next task id, in the order the SDK numbers its tasks."""
        tid = self.instance.next_id
        self.instance.next_id += 1
        return tid

    def open(self, task: OpenTask) -> None:
        """Register a task that waits for an answer."""
        self.tasks[task.task_id] = task
        self.decision.opened.append(task)

    def emit(self, ev: Event) -> None:
        """Append a decision event (TaskScheduled, TimerCreated, …) to the new history."""
        self.decision.history.append(ev)

    def send(self, msg: Message) -> None:
        """Queue an inbox message."""
        self.decision.messages.append(msg)

    def to_self(self, ev: Event, visible_at: float | None = None, timer_id: int | None = None) -> None:
        """Queue an event for this execution."""
        at = self.now if visible_at is None else visible_at
        self.send(Message(self.instance.instance_id, self.instance.execution_id, at, ev, timer_id))


ActionHandler = Callable[[Episode, int, dict[str, Any]], None]
HANDLERS: dict[int, ActionHandler] = {}


def handles(*types: int) -> Callable[[ActionHandler], ActionHandler]:
    """Register the decorated function as the handler of the given action types."""

    def register(fn: ActionHandler) -> ActionHandler:
        for t in types:
            HANDLERS[int(t)] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------- batching


def batchable(ev: Event, tasks: dict[int, OpenTask]) -> bool:
    """Whether ``ev`` may share an episode: a plain completion (no hidden id allocation behind it)."""
    key = task_key(ev)
    task = None if key is None else tasks.get(key)
    if task is None:
        return False
    etype = ev["EventType"]
    if etype in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED):
        return True
    if etype in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
        return task.retry is None
    return bool(etype == EventType.TIMER_FIRED and task.kind == "timer")


def select_batch(tasks: dict[int, OpenTask], events: list[tuple[str | None, Event]], execution_id: str) -> int:
    """How many of the visible ``(execution id, event)`` messages (in inbox order) the episode takes.

    0 means the first is stale (answers no open task: a duplicate, or one of a finished retry) and is dropped.
    """
    if not events:
        return 0
    first = events[0][1]
    if first["EventType"] in COMPLETIONS and task_key(first) not in tasks:
        return 0
    if not batchable(first, tasks):
        return 1
    keys = {task_key(first)}
    taken = 1
    for exec_id, ev in events[1:MAX_BATCH]:
        key = task_key(ev)
        if exec_id != execution_id or key in keys or not batchable(ev, tasks):
            break
        keys.add(key)
        taken += 1
    return taken


def begin(instance: InstanceState, events: list[Event], now: float) -> tuple[float, list[Event]]:
    """The episode's time and the events that open its history: ``OrchestratorStarted`` then the new events.

    The time never goes back (after the last episode) and is not before a fired timer's ``FireAt``.
    """
    t = max(now, instance.last_ts + 0.000001)
    for ev in events:
        if ev["EventType"] == EventType.TIMER_FIRED and ev.get("FireAt"):
            t = max(t, parse_time(ev["FireAt"]))
    opening = [event(EventType.ORCHESTRATOR_STARTED, t)]
    for ev in events:
        opening.append(ev | {"Timestamp": iso(t), "IsPlayed": False})
    return t, opening


# ---------------------------------------------------------------------------------------------- decide


def decide(
    instance: InstanceState,
    tasks: dict[int, OpenTask],
    opening: list[Event],
    result: OrchestratorResult,
    now: float,
    new_id: Callable[[], str],
    default_version: str = "",
    entity_names: frozenset[str] | None = None,
) -> Decision:
    """The episode's decision. ``opening`` is what ``begin`` returned (the SDK saw it after the old history);
    ``default_version`` is the version of sub-orchestrations that name none; ``entity_names`` are the app's
    entity functions (lowercased), to refuse calls and signals to others. ``instance`` and ``tasks`` are not
    modified."""
    inst = InstanceState(
        **{**instance.__dict__, "rewind_cache": {k: list(v) for k, v in instance.rewind_cache.items()}}
    )
    ep = Episode(
        inst,
        dict(tasks),
        now,
        new_id,
        Decision(history=list(opening)),
        default_version=default_version,
        entity_names=entity_names,
    )
    for ev in opening[1:]:
        _answer(ep, ev)
    flat = flatten(result.actions)
    _cancel_timers(ep, flat)
    ep.error = result.error
    if ep.error is None:
        for index in range(inst.known, len(flat)):
            action = flat[index]
            handler = HANDLERS.get(int(action.get("actionType", -1)), _unknown_action)
            handler(ep, index, action)
            if ep.error is not None:
                break
        inst.known = len(flat)
    _finish(ep, result)
    d = ep.decision
    d.next_id, d.known, d.last_ts = inst.next_id, inst.known, now
    if inst.rewind_cache != instance.rewind_cache:
        d.rewind_cache = inst.rewind_cache
    return d


def _answer(ep: Episode, ev: Event) -> None:
    """Close the task an event answers, making the hidden id allocations of a retry (DTFx semantics)."""
    key = task_key(ev)
    task = None if key is None else ep.tasks.pop(key, None)
    if task is None:
        return
    ep.decision.closed.append(task.task_id)
    etype = ev["EventType"]
    retry = task.retry
    if retry is None:
        return
    if etype in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
        tid = ep.allocate()
        fire = ep.now + retry.delay_s()
        ep.emit(event(EventType.TIMER_CREATED, ep.now, tid, FireAt=iso(fire)))
        ep.open(OpenTask(tid, "retry_timer", retry=retry))
        ep.to_self(event(EventType.TIMER_FIRED, fire, TimerId=tid, FireAt=iso(fire)), fire, tid)
    elif etype == EventType.TIMER_FIRED and task.kind == "retry_timer" and retry.attempts < retry.max_attempts:
        again = RetryPolicy(**{**retry.__dict__, "attempts": retry.attempts + 1})
        _schedule(ep, ep.allocate(), again.kind, again.name, again.input, again.instance_id, again, again.version)


def _cancel_timers(ep: Episode, flat: list[dict[str, Any]]) -> None:
    """Timers the orchestrator cancelled (``timer.cancel()``) after they were armed."""
    for task in list(ep.tasks.values()):
        index = task.action_index
        if task.kind != "timer" or index is None or index >= min(ep.instance.known, len(flat)):
            continue
        action = flat[index]
        if action.get("actionType") == ActionType.CREATE_TIMER and action.get("isCanceled"):
            del ep.tasks[task.task_id]
            ep.decision.closed.append(task.task_id)
            ep.decision.cancel_timers.append(task.task_id)


def _finish(ep: Episode, result: OrchestratorResult) -> None:
    """Completion, failure or continue-as-new; then ``OrchestratorCompleted``."""
    inst, d, now = ep.instance, ep.decision, ep.now
    d.output = inst.output
    d.custom_status = None if result.custom_status is None else json.dumps(result.custom_status)
    if ep.error is not None:
        d.status = RuntimeStatus.Failed.value
        d.finished = True
        message = f"Orchestrator function '{inst.name}' failed: {ep.error}"
        d.output = json.dumps(message)
        failure = {"ErrorType": "OrchestrationFailure", "ErrorMessage": ep.error}
        ep.emit(
            event(
                EventType.EXECUTION_COMPLETED,
                now,
                OrchestrationStatus=STATUS_CODE[d.status],
                Result=d.output,
                FailureDetails=failure,
            )
        )
        _notify_parent(ep, failed=True, result=None, reason=message, details=ep.error)
    elif result.done and ep.continue_as_new[0]:
        d.status = RuntimeStatus.ContinuedAsNew.value
        ep.emit(event(EventType.EXECUTION_COMPLETED, now, OrchestrationStatus=STATUS_CODE[d.status], Result=None))
        exec_id = ep.new_id()
        can_input = ep.continue_as_new[1]
        serialized = None if can_input is None else json.dumps(can_input)
        d.new_execution = (exec_id, serialized)
        start = started_event(inst.name, inst.instance_id, exec_id, serialized, now, inst.parent, inst.version)
        ep.send(Message(inst.instance_id, exec_id, now, start))
    elif result.done:
        d.status = RuntimeStatus.Completed.value
        d.finished = True
        d.output = json.dumps(result.output)
        ep.emit(event(EventType.EXECUTION_COMPLETED, now, OrchestrationStatus=STATUS_CODE[d.status], Result=d.output))
        _notify_parent(ep, failed=False, result=d.output, reason="", details="")
    ep.emit(event(EventType.ORCHESTRATOR_COMPLETED, now))


def _notify_parent(ep: Episode, failed: bool, result: str | None, reason: str, details: str) -> None:
    parent = ep.instance.parent
    if parent is None:
        return
    if failed:
        ev = event(
            EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
            ep.now,
            TaskScheduledId=parent[2],
            Reason=reason,
            Details=details,
        )
    else:
        ev = event(EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED, ep.now, TaskScheduledId=parent[2], Result=result)
    ep.send(Message(parent[0], parent[1], ep.now, ev))


def _schedule(
    ep: Episode,
    tid: int,
    kind: str,
    name: str,
    serialized_input: str | None,
    child_id: str | None,
    retry: RetryPolicy | None,
    version: str | None,
    index: int | None = None,
) -> None:
    """Schedule an activity or a sub-orchestration as task ``tid`` (answered from the rewind cache if it can)."""
    inst = ep.instance
    cached = inst.rewind_cache.get(f"{kind}\x00{name}\x00{serialized_input}")
    if kind == "activity":
        ep.emit(event(EventType.TASK_SCHEDULED, ep.now, tid, Name=name, Version="", Input=serialized_input))
        ep.open(OpenTask(tid, "activity", index, retry=retry))
        if cached:
            ep.to_self(event(EventType.TASK_COMPLETED, ep.now, TaskScheduledId=tid, Result=cached.pop(0)))
        else:
            ep.decision.work.append(WorkItem(tid, name, serialized_input))
        return
    child = child_id or f"{inst.execution_id}:{tid}"
    child_version = ep.default_version if version is None else version
    ep.emit(
        event(
            EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
            ep.now,
            tid,
            Name=name,
            Version=child_version,
            InstanceId=child,
            Input=serialized_input,
        )
    )
    ep.open(OpenTask(tid, "sub", index, child=child, retry=retry))
    if cached:
        done = event(EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED, ep.now, TaskScheduledId=tid, Result=cached.pop(0))
        ep.to_self(done)
        return
    payload = None if serialized_input is None else json.dumps(serialized_input)
    ep.decision.children.append(
        ChildStart(child, name, payload, (inst.instance_id, inst.execution_id, tid), ep.new_id(), child_version)
    )


# ---------------------------------------------------------------------------------------------- handlers


@handles(ActionType.CALL_ACTIVITY, ActionType.CALL_SUB_ORCHESTRATOR)
def _call(ep: Episode, index: int, action: dict[str, Any]) -> None:
    kind = "activity" if action["actionType"] == ActionType.CALL_ACTIVITY else "sub"
    tid = ep.allocate()
    _schedule(
        ep, tid, kind, action["functionName"], action.get("input"), action.get("instanceId"), None,
        action.get("version"), index,
    )  # fmt: skip


@handles(ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY)
def _call_with_retry(ep: Episode, index: int, action: dict[str, Any]) -> None:
    kind = "activity" if action["actionType"] == ActionType.CALL_ACTIVITY_WITH_RETRY else "sub"
    options = action.get("retryOptions") or {}
    retry = RetryPolicy(
        kind=kind,
        name=action["functionName"],
        input=action.get("input"),
        max_attempts=int(options.get("maxNumberOfAttempts", 1)),
        first_interval_ms=float(options.get("firstRetryIntervalInMilliseconds", 1000)),
        # The extension's RetryOptions also honour these (the JavaScript SDK sends them).
        backoff=float(options.get("backoffCoefficient", 1.0)),
        max_interval_ms=float(options.get("maxRetryIntervalInMilliseconds", 6 * 86400 * 1000)),
        instance_id=action.get("instanceId"),
        version=action.get("version"),
    )
    tid = ep.allocate()
    _schedule(ep, tid, kind, retry.name, retry.input, retry.instance_id, retry, retry.version, index)


@handles(ActionType.CREATE_TIMER)
def _timer(ep: Episode, index: int, action: dict[str, Any]) -> None:
    tid = ep.allocate()
    fire_at = action["fireAt"]
    ep.emit(event(EventType.TIMER_CREATED, ep.now, tid, FireAt=fire_at))
    if not action.get("isCanceled"):
        ep.open(OpenTask(tid, "timer", index))
        fire = parse_time(fire_at)
        ep.to_self(event(EventType.TIMER_FIRED, fire, TimerId=tid, FireAt=fire_at), fire, tid)


@handles(ActionType.WAIT_FOR_EXTERNAL_EVENT)
def _wait_for_event(ep: Episode, index: int, action: dict[str, Any]) -> None:
    """No id: the ``EventRaised`` is delivered when it arrives (the SDK buffers it until then)."""


@handles(ActionType.CONTINUE_AS_NEW)
def _continue_as_new(ep: Episode, index: int, action: dict[str, Any]) -> None:
    ep.allocate()
    ep.continue_as_new = (True, action.get("input"))


@handles(ActionType.CALL_HTTP)
def _call_http(ep: Episode, index: int, action: dict[str, Any]) -> None:
    """Not emulated: answered at once as a failed task."""
    tid = ep.allocate()
    ep.emit(event(EventType.TASK_SCHEDULED, ep.now, tid, Name="BuiltIn::HttpActivity", Version="", Input=None))
    ep.open(OpenTask(tid, "activity", index))
    reason = "call_http is not supported by devhost"
    ep.to_self(event(EventType.TASK_FAILED, ep.now, TaskScheduledId=tid, Reason=reason, Details=""))


@handles(ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY)
def _entity(ep: Episode, index: int, action: dict[str, Any]) -> None:
    """A call or a signal: an ``EventSent`` and a request in the entity queue (docs/durable-protocol.md §8).

    The SDK numbers both (a call when yielded, a signal when called); it answers a call's task by the request
    id it reads back from the ``EventSent``, so no task is opened here.
    """
    tid = ep.allocate()
    inst = ep.instance
    try:
        made = request_from_action(action, inst.instance_id, inst.execution_id, tid)
    except EntityProtocolError as exc:
        ep.error = f"invalid entity action: {exc}"
        return
    if ep.entity_names is not None and made.target.name not in ep.entity_names:
        ep.error = f"The function '{made.target.name}' doesn't exist, is disabled, or is not an entity function."
        return
    ep.emit(event(EventType.EVENT_SENT, ep.now, tid, **made.event_sent_fields()))
    ep.decision.entity_requests.append((made.target, made.request))


@handles(SCHEDULED_SIGNAL_ENTITY)
def _scheduled_signal(ep: Episode, index: int, action: dict[str, Any]) -> None:
    """Never sent by the Python SDK (it has no scheduled signals): the orchestration fails saying so."""
    ep.allocate()
    ep.error = "scheduled entity signals (action type 10) are not supported by devhost"


def _unknown_action(ep: Episode, index: int, action: dict[str, Any]) -> None:
    ep.allocate()
    ep.error = f"action type {action.get('actionType')!r} is not supported by devhost"
