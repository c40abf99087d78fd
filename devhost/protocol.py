"""Durable protocol vocabulary: the SDK's enums, history events, times and the status API's history rendering.

Everything here is data and pure functions shared by the task hub, the decision core and the HTTP side.
The numbers are the SDK's own (``ActionType``, ``HistoryEventType``, ``OrchestrationRuntimeStatus``) so the
host keeps no copy of them; ``docs/durable-protocol.md`` describes the protocol.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as EventType
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus as RuntimeStatus

__all__ = ["ActionType", "EventType", "RuntimeStatus"]

# ScheduledSignalEntity: an action type the extension knows that the SDK's enum lacks.
SCHEDULED_SIGNAL_ENTITY = 10
TERMINAL = (
    RuntimeStatus.Completed.value,
    RuntimeStatus.Failed.value,
    RuntimeStatus.Terminated.value,
    RuntimeStatus.Canceled.value,
)
# DTFx OrchestrationStatus numbers, carried by ExecutionCompleted's OrchestrationStatus.
STATUS_CODE = {
    RuntimeStatus.Running.value: 0,
    RuntimeStatus.Completed.value: 1,
    RuntimeStatus.ContinuedAsNew.value: 2,
    RuntimeStatus.Failed.value: 3,
    RuntimeStatus.Canceled.value: 4,
    RuntimeStatus.Terminated.value: 5,
    RuntimeStatus.Pending.value: 6,
    RuntimeStatus.Suspended.value: 7,
}
STATUS_NAME = {code: name for name, code in STATUS_CODE.items()}
# The text a failing orchestrator's exception carries before the SDK's state JSON.
MARKER = "$OutOfProcData$:"
# The events that complete an open task, and the key naming that task.
COMPLETIONS = (
    EventType.TASK_COMPLETED,
    EventType.TASK_FAILED,
    EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
    EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
    EventType.TIMER_FIRED,
)

Event = dict[str, Any]


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


def parse_json_or_raw(text: str | None) -> Any:
    """``ParseToJToken``: JSON value of text, or the raw string if it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def event(etype: int, ts: float, event_id: int = -1, **fields: Any) -> Event:
    """A history event with the four keys every event carries."""
    ev: Event = {"EventType": int(etype), "EventId": event_id, "IsPlayed": False, "Timestamp": iso(ts)}
    ev.update(fields)
    return ev


def task_key(ev: Event) -> int | None:
    """The task id a completion or timer event answers (``TaskScheduledId`` / ``TimerId``), else None."""
    key = ev.get("TaskScheduledId", ev.get("TimerId"))
    return None if key is None else int(key)


def started_event(
    name: str,
    instance_id: str,
    execution_id: str,
    serialized_input: str | None,
    ts: float,
    parent: tuple[str, str, int] | None = None,
    version: str = "",
) -> Event:
    """The ``ExecutionStarted`` event of an execution (``parent``: instance, execution and task id)."""
    parent_instance = None
    if parent is not None:
        parent_instance = {
            "Name": None,
            "TaskScheduleId": parent[2],
            "OrchestrationInstance": {"InstanceId": parent[0], "ExecutionId": parent[1]},
        }
    return event(
        EventType.EXECUTION_STARTED,
        ts,
        Name=name,
        Version=version,
        Input=serialized_input,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent_instance,
        Tags=None,
    )


_COMPOUND = (ActionType.WHEN_ANY, ActionType.WHEN_ALL)


def flatten(actions: list[Any]) -> list[dict[str, Any]]:
    """Expand WhenAny/WhenAll compound actions (and schema V1's list of lists) in order.

    A plain loop, not a recursive generator: the SDK answers every episode with all the actions of the
    execution so far, so this runs over the whole list each episode and must stay cheap per action."""
    out: list[dict[str, Any]] = []
    for a in actions:
        if isinstance(a, list):
            out.extend(flatten(a))
        elif a.get("actionType") in _COMPOUND:
            out.extend(flatten(a.get("compoundActions") or []))
        else:
            out.append(a)
    return out


_HIDDEN = ("EventId", "IsPlayed", "TaskScheduledId", "TimerId")
_ANSWERS = (
    EventType.TASK_COMPLETED,
    EventType.TASK_FAILED,
    EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
    EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
)


def render_history(history: list[Event], show_output: bool, show_input: bool) -> list[dict[str, Any]]:
    """History as the extension's status API renders it (names, scheduled rows folded into their answers)."""
    scheduled: dict[int, Event] = {}
    out: list[dict[str, Any]] = []
    for h in history:
        et = h["EventType"]
        if et in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
            continue
        if et in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED):
            scheduled[h["EventId"]] = h
            continue
        r = {k: v for k, v in h.items() if k not in _HIDDEN}
        r["EventType"] = (
            EventType(et).name.title().replace("_", "") if et in EventType.__members__.values() else str(et)
        )
        if et in _ANSWERS:
            s = scheduled.get(h.get("TaskScheduledId", -2))
            if s is not None:
                r["FunctionName"] = s.get("Name")
                r["ScheduledTime"] = s.get("Timestamp")
                if show_input:
                    r["Input"] = parse_json_or_raw(s.get("Input"))
        if et == EventType.EXECUTION_STARTED:
            r["FunctionName"] = r.pop("Name", None)
            for k in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                r.pop(k, None)
            if not show_input:
                r.pop("Input", None)
        if et == EventType.EXECUTION_COMPLETED:
            r["OrchestrationStatus"] = STATUS_NAME.get(h.get("OrchestrationStatus", -1))
        if "Result" in r:
            if show_output:
                r["Result"] = parse_json_or_raw(r["Result"])
            else:
                r.pop("Result")
        out.append(r)
    return out
