"""Durable history -> a run's timeline: every activity step with its attempts, durations and errors.

Accepts both shapes a management API returns: the extension's rendered history (``EventType`` names,
``TaskScheduled`` rows folded into their completion rows as ``FunctionName`` + ``ScheduledTime``) and raw
DTFx history (integer ``EventType``, ``TaskScheduled`` rows with ``EventId`` and ``TaskScheduledId`` links).
An activity that *returned* a typed failure (``{"ok": false, "error": {...}}``, our permanent failures) is
shown as a failed, non-retryable attempt when the history carries outputs (``showHistoryOutput``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imagepipe.timeutil import iso, millis_between, parse_time
from imagepipe.vocabulary import ACTIVITY_STEPS, RuntimeStatus, history_event_name, runtime_status_name

_ACTIVITY_FAILED = re.compile(r"^(?:Activity function '[^']*' failed: )?(?P<type>[A-Za-z_][\w.]*): (?P<msg>.*)$", re.S)
_ORCHESTRATOR_FAILED = re.compile(r"^Orchestrator function '[^']*' failed: ", re.S)
_PIPELINE_FAILED = re.compile(r"^(?P<step>[a-z_]+) failed \((?P<code>[^)]*)\): (?P<msg>.*)$", re.S)


def event_name(event: dict[str, Any]) -> str:
    """The rendered name of a history event (raw history gives the type as an integer)."""
    return history_event_name(event.get("EventType"))


def parse_activity_error(reason: str | None, details: str | None = None) -> dict[str, str]:
    """``{"type", "message"}`` from a TaskFailed ``Reason`` (``Activity function 'x' failed: Type: message``)."""
    text = (reason or "").strip()
    match = _ACTIVITY_FAILED.match(text)
    if match:
        return {"type": match.group("type").rsplit(".", 1)[-1], "message": match.group("msg").strip()}
    if not text and details:
        text = details.strip().splitlines()[-1] if details.strip() else ""
    return {"type": "Error", "message": text}


def parse_run_failure(output: Any) -> dict[str, str] | None:
    """``{"code", "message", "step"}`` from a Failed run's output text, or None when there is none.

    ``Orchestrator function 'image_pipeline' failed: analyze_image failed (InvalidImageFormat): ...`` ->
    step ``analyze_image``, code ``InvalidImageFormat``; other texts keep their whole message.
    """
    if output is None:
        return None
    if isinstance(output, dict):
        text = str(output.get("message") or output.get("ErrorMessage") or json.dumps(output))
    else:
        text = str(output)
    text = _ORCHESTRATOR_FAILED.sub("", text.strip()).split("\n")[0].strip()
    match = _PIPELINE_FAILED.match(text)
    if match:
        return {"code": match.group("code"), "message": match.group("msg").strip(), "step": match.group("step")}
    generic = _ACTIVITY_FAILED.match(text)
    if generic:
        return {"code": generic.group("type"), "message": generic.group("msg").strip(), "step": "run"}
    return {"code": "failed", "message": text, "step": "run"}


def _result_value(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


@dataclass
class _Attempt:
    number: int
    scheduled: datetime | None
    finished: datetime | None = None
    outcome: str = "pending"
    error: dict[str, Any] | None = None
    retry_after_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attempt": self.number,
            "outcome": self.outcome,
            "scheduledTime": iso(self.scheduled),
            "finishedTime": iso(self.finished),
            "durationMs": millis_between(self.scheduled, self.finished),
        }
        if self.error is not None:
            out["error"] = self.error
        if self.retry_after_ms is not None:
            out["retryDelayMs"] = self.retry_after_ms
        return out


@dataclass
class _Step:
    name: str
    attempts: list[_Attempt] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        first = self.attempts[0].scheduled if self.attempts else None
        last = self.attempts[-1]
        finished = last.finished
        if last.outcome == "pending":
            status = "running"
        elif last.outcome == "succeeded":
            status = "succeeded"
        else:
            status = "failed"
        return {
            "name": self.name,
            "status": status,
            "attempts": [a.to_json() for a in self.attempts],
            "attemptCount": len(self.attempts),
            "failedAttempts": sum(1 for a in self.attempts if a.outcome == "failed"),
            "startedTime": iso(first),
            "finishedTime": iso(finished),
            "durationMs": millis_between(first, finished),
            "activeMs": sum(millis_between(a.scheduled, a.finished) or 0 for a in self.attempts),
            "error": last.error if status == "failed" else None,
            "retryTimers": self.timers,
        }


def build_timeline(
    events: list[dict[str, Any]] | None,
    runtime_status: str | None = None,
    custom_status: Any = None,
) -> dict[str, Any]:
    """The run's steps (one per activity name, in order) with attempts, plus start/end and events count.

    ``runtime_status``/``custom_status`` add the attempt in flight (rendered history drops the
    ``TaskScheduled`` row of a task that has not finished yet).
    """
    steps: dict[str, _Step] = {}
    scheduled_by_id: dict[int, dict[str, Any]] = {}
    open_timers: dict[Any, dict[str, Any]] = {}
    last_failed_step: _Step | None = None
    started: datetime | None = None
    ended: datetime | None = None
    outcome: str | None = None
    failure: dict[str, Any] | None = None
    pending_names: dict[str, datetime | None] = {}

    def step_of(name: str) -> _Step:
        if name not in steps:
            steps[name] = _Step(name)
        return steps[name]

    def add_attempt(name: str, scheduled: datetime | None, finished: datetime | None, ok: bool, err: Any) -> None:
        nonlocal last_failed_step
        step = step_of(name)
        attempt = _Attempt(len(step.attempts) + 1, scheduled, finished)
        if step.timers and step.timers[-1].get("attemptAfter") is None:
            step.timers[-1]["attemptAfter"] = attempt.number
            attempt.retry_after_ms = step.timers[-1].get("delayMs")
        attempt.outcome = "succeeded" if ok else "failed"
        attempt.error = err
        step.attempts.append(attempt)
        last_failed_step = step if not ok else None

    for event in events or []:
        name = event_name(event)
        at = parse_time(event.get("Timestamp"))
        if name == "ExecutionStarted":
            started = started or at
        elif name == "TaskScheduled":
            task_id = event.get("EventId")
            if isinstance(task_id, int):
                scheduled_by_id[task_id] = event
            pending_names[str(event.get("Name"))] = at
        elif name in ("TaskCompleted", "TaskFailed"):
            fn = event.get("FunctionName")
            sched_time = parse_time(event.get("ScheduledTime"))
            source = scheduled_by_id.pop(event.get("TaskScheduledId", -2), None)
            if source is not None:
                fn = fn or source.get("Name")
                sched_time = sched_time or parse_time(source.get("Timestamp"))
            fn = str(fn or "unknown")
            pending_names.pop(fn, None)
            if name == "TaskFailed":
                err: dict[str, Any] = parse_activity_error(event.get("Reason"), event.get("Details"))
                details = event.get("FailureDetails")
                if isinstance(details, dict) and details.get("ErrorType"):
                    err = {"type": str(details["ErrorType"]), "message": str(details.get("ErrorMessage") or "")}
                err["retryable"] = True
                add_attempt(fn, sched_time, at, False, err)
            else:
                result = _result_value(event.get("Result"))
                typed = result.get("error") if isinstance(result, dict) and result.get("ok") is False else None
                if isinstance(typed, dict):
                    err = {
                        "type": str(typed.get("code") or "failed"),
                        "message": str(typed.get("message") or ""),
                        "retryable": False,
                    }
                    add_attempt(fn, sched_time, at, False, err)
                else:
                    add_attempt(fn, sched_time, at, True, None)
        elif name == "TimerCreated":
            fire_at = parse_time(event.get("FireAt"))
            timer = {"createdTime": iso(at), "fireAt": iso(fire_at), "delayMs": millis_between(at, fire_at)}
            timer["firedTime"] = None
            timer["attemptAfter"] = None
            key = event.get("EventId") if isinstance(event.get("EventId"), int) else iso(fire_at)
            open_timers[key] = timer
            if last_failed_step is not None:
                last_failed_step.timers.append(timer)
        elif name == "TimerFired":
            key = (
                event.get("TimerId") if isinstance(event.get("TimerId"), int) else iso(parse_time(event.get("FireAt")))
            )
            timer_fired = open_timers.pop(key, None)
            if timer_fired is not None:
                timer_fired["firedTime"] = iso(at)
        elif name == "ExecutionCompleted":
            ended = at
            status = event.get("OrchestrationStatus")
            outcome = runtime_status_name(status) if isinstance(status, int) else status
            if outcome == "Failed":
                details = event.get("FailureDetails")
                text = details.get("ErrorMessage") if isinstance(details, dict) else None
                failure = parse_run_failure(text or event.get("Result"))
        elif name == "ExecutionTerminated":
            ended = at
            outcome = "Terminated"
            failure = {"code": "terminated", "message": str(event.get("Input") or ""), "step": "run"}

    # The attempt in flight: raw history shows its TaskScheduled; rendered history only the custom status.
    for fn, when in pending_names.items():
        step_of(fn).attempts.append(_Attempt(len(step_of(fn).attempts) + 1, when))
    stage = custom_status.get("stage") if isinstance(custom_status, dict) else None
    waiting = runtime_status in (RuntimeStatus.Running.value, RuntimeStatus.Pending.value)
    if waiting and isinstance(stage, str) and stage not in pending_names:
        step = steps.get(stage)
        waiting_timer = bool(step and step.timers and step.timers[-1].get("firedTime") is None)
        if (step is None or step.attempts[-1].outcome != "succeeded") and not waiting_timer:
            if stage in ACTIVITY_STEPS:
                step_of(stage).attempts.append(_Attempt(len(step_of(stage).attempts) + 1, None))

    return {
        "startedTime": iso(started),
        "finishedTime": iso(ended),
        "durationMs": millis_between(started, ended),
        "outcome": outcome,
        "failure": failure,
        "steps": [s.to_json() for s in steps.values() if s.attempts],
        "eventCount": len(events or []),
    }


def scheduled_count(events: list[dict[str, Any]] | None, function_name: str) -> int:
    """How many times the history scheduled ``function_name`` (raw TaskScheduled rows or folded completions)."""
    raw = sum(1 for e in events or [] if event_name(e) == "TaskScheduled" and e.get("Name") == function_name)
    if raw:
        return raw
    return sum(
        1
        for e in events or []
        if event_name(e) in ("TaskCompleted", "TaskFailed") and e.get("FunctionName") == function_name
    )


def is_rewindable(timeline: dict[str, Any]) -> bool:
    """Whether a rewind can succeed: no step failed by *returning* a permanent (non-retryable) failure.

    Rewind re-runs only activities that threw (``TaskFailed``); an activity that returned a typed failure
    completed as far as Durable knows, so a rewind replays the same recorded rejection. Those runs need a
    restart (a fresh execution) once the cause is fixed.
    """
    for step in timeline.get("steps") or []:
        error = step.get("error") or {}
        if step.get("status") == "failed" and error.get("retryable") is False:
            return False
    return True
