"""Unit tests: Durable history (rendered and raw) -> a run's timeline of steps, attempts and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagepipe.operators.history import build_timeline, parse_activity_error, parse_run_failure, scheduled_count

pytestmark = pytest.mark.unit

T = "2026-01-01T00:00:{:02d}.0000000Z"
TRANSIENT = "Activity function 'analyze_image' failed: TransientServiceError: injected transient fault: 503"


def rendered_retry_exhausted() -> list[dict[str, Any]]:
    """What the extension renders for: fetch ok, analyze fails 3 times (2 retry timers), persist, run Failed."""
    return [
        {"EventType": "ExecutionStarted", "Timestamp": T.format(0), "FunctionName": "image_pipeline"},
        {
            "EventType": "TaskCompleted",
            "Timestamp": T.format(2),
            "FunctionName": "fetch_image_metadata",
            "ScheduledTime": T.format(1),
            "Result": {"ok": True, "profile": "general"},
        },
        {
            "EventType": "TaskFailed",
            "Timestamp": T.format(4),
            "FunctionName": "analyze_image",
            "ScheduledTime": T.format(3),
            "Reason": TRANSIENT,
            "Details": "Traceback ...",
        },
        {"EventType": "TimerCreated", "Timestamp": T.format(4), "FireAt": T.format(5)},
        {"EventType": "TimerFired", "Timestamp": T.format(5), "FireAt": T.format(5)},
        {
            "EventType": "TaskFailed",
            "Timestamp": T.format(7),
            "FunctionName": "analyze_image",
            "ScheduledTime": T.format(6),
            "Reason": TRANSIENT,
            "Details": "",
        },
        {"EventType": "TimerCreated", "Timestamp": T.format(7), "FireAt": T.format(9)},
        {"EventType": "TimerFired", "Timestamp": T.format(9), "FireAt": T.format(9)},
        {
            "EventType": "TaskFailed",
            "Timestamp": T.format(11),
            "FunctionName": "analyze_image",
            "ScheduledTime": T.format(10),
            "Reason": TRANSIENT,
            "Details": "",
        },
        {
            "EventType": "TaskCompleted",
            "Timestamp": T.format(13),
            "FunctionName": "persist_record",
            "ScheduledTime": T.format(12),
            "Result": {"ok": True, "status": "failed"},
        },
        {
            "EventType": "ExecutionCompleted",
            "Timestamp": T.format(14),
            "OrchestrationStatus": "Failed",
            "Result": "Orchestrator function 'image_pipeline' failed: analyze_image failed (retries_exhausted): x",
        },
    ]


def test_rendered_history_gives_steps_attempts_durations_and_errors() -> None:
    timeline = build_timeline(rendered_retry_exhausted(), "Failed", {"stage": "failed"})
    names = [s["name"] for s in timeline["steps"]]
    assert names == ["fetch_image_metadata", "analyze_image", "persist_record"]
    fetch, analyze, persist = timeline["steps"]
    assert fetch["status"] == "succeeded" and fetch["attemptCount"] == 1
    assert fetch["attempts"][0]["durationMs"] == 1000
    assert analyze["status"] == "failed" and analyze["attemptCount"] == 3 and analyze["failedAttempts"] == 3
    first = analyze["attempts"][0]
    assert first["error"] == {
        "type": "TransientServiceError",
        "message": "injected transient fault: 503",
        "retryable": True,
    }
    assert [a.get("retryDelayMs") for a in analyze["attempts"]] == [None, 1000, 2000]
    assert analyze["durationMs"] == 8000 and analyze["activeMs"] == 3000
    assert persist["status"] == "succeeded"
    assert timeline["outcome"] == "Failed"
    assert timeline["failure"] == {"code": "retries_exhausted", "message": "x", "step": "analyze_image"}
    assert timeline["durationMs"] == 14000


def test_typed_failure_result_is_a_non_retryable_failed_attempt() -> None:
    events = [
        {
            "EventType": "TaskCompleted",
            "Timestamp": T.format(2),
            "FunctionName": "analyze_image",
            "ScheduledTime": T.format(1),
            "Result": {
                "ok": False,
                "error": {"code": "InvalidImageFormat", "message": "rejected", "step": "analyze_image"},
            },
        },
    ]
    step = build_timeline(events)["steps"][0]
    assert step["status"] == "failed"
    assert step["error"] == {"type": "InvalidImageFormat", "message": "rejected", "retryable": False}


def raw(kind: int, event_id: int = -1, second: int = 0, **fields: Any) -> dict[str, Any]:
    return {"EventType": kind, "EventId": event_id, "IsPlayed": True, "Timestamp": T.format(second), **fields}


def test_raw_history_links_by_task_id_and_shows_the_attempt_in_flight() -> None:
    events = [
        raw(12, second=0),
        raw(0, second=0, Name="image_pipeline", Input=json.dumps({"imageId": "x"})),
        raw(4, 0, 1, Name="fetch_image_metadata"),
        raw(13, second=1),
        raw(5, second=3, TaskScheduledId=0, Result=json.dumps({"ok": True})),
        raw(4, 1, 3, Name="analyze_image"),
        raw(6, second=4, TaskScheduledId=1, Reason="Activity function 'analyze_image' failed: OSError: reset"),
        raw(10, 2, 4, FireAt=T.format(6)),
        raw(11, second=6, TimerId=2, FireAt=T.format(6)),
        raw(4, 3, 6, Name="analyze_image"),
    ]
    timeline = build_timeline(events, "Running", {"stage": "analyze_image"})
    fetch, analyze = timeline["steps"]
    assert fetch["attempts"][0]["durationMs"] == 2000
    assert analyze["status"] == "running"
    assert [a["outcome"] for a in analyze["attempts"]] == ["failed", "pending"]
    assert analyze["retryTimers"][0]["firedTime"] == "2026-01-01T00:00:06.000Z"
    assert analyze["attempts"][0]["error"]["type"] == "OSError"
    assert scheduled_count(events, "analyze_image") == 2
    assert scheduled_count(events, "fetch_image_metadata") == 1


def test_rendered_history_in_flight_step_comes_from_the_custom_status() -> None:
    events = rendered_retry_exhausted()[:2]
    timeline = build_timeline(events, "Running", {"stage": "analyze_image", "imageId": "x"})
    assert timeline["steps"][-1]["name"] == "analyze_image"
    assert timeline["steps"][-1]["status"] == "running"
    assert scheduled_count(events, "fetch_image_metadata") == 1
    assert scheduled_count(events, "analyze_image") == 0


def test_terminated_run_has_the_reason() -> None:
    events = [{"EventType": "ExecutionTerminated", "Timestamp": T.format(3), "Input": "image deleted"}]
    assert build_timeline(events, "Terminated")["failure"] == {
        "code": "terminated",
        "message": "image deleted",
        "step": "run",
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "Activity function 'a' failed: imagepipe.errors.TransientServiceError: 503 now",
            {"type": "TransientServiceError", "message": "503 now"},
        ),
        (
            "FunctionTimeoutException: Timeout value of 30s",
            {"type": "FunctionTimeoutException", "message": "Timeout value of 30s"},
        ),
        ("something odd", {"type": "Error", "message": "something odd"}),
    ],
)
def test_parse_activity_error(reason: str, expected: dict[str, str]) -> None:
    assert parse_activity_error(reason) == expected


def test_parse_run_failure_variants() -> None:
    assert parse_run_failure(None) is None
    assert parse_run_failure("Orchestrator function 'image_pipeline' failed: read_text failed (c1): m \n tb") == {
        "code": "c1",
        "message": "m",
        "step": "read_text",
    }
    assert parse_run_failure("Orchestrator function 'p' failed: ValueError: bad")["code"] == "ValueError"  # type: ignore[index]
    assert parse_run_failure("weird")["message"] == "weird"  # type: ignore[index]


def test_rewindable_only_when_no_step_returned_a_permanent_failure() -> None:
    from imagepipe.operators.history import is_rewindable

    assert is_rewindable(build_timeline(rendered_retry_exhausted(), "Failed"))
    poison = [
        {
            "EventType": "TaskCompleted",
            "Timestamp": T.format(2),
            "FunctionName": "analyze_image",
            "ScheduledTime": T.format(1),
            "Result": {"ok": False, "error": {"code": "InvalidImageFormat"}},
        },
    ]
    assert not is_rewindable(build_timeline(poison, "Failed"))
