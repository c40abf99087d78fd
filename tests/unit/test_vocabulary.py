"""The run vocabulary, time and perceptual-hash helpers are each defined once and agree with the SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from imagepipe.phash import hamming, phash_distance, phash_to_int
from imagepipe.timeutil import iso, millis_between, parse_time
from imagepipe.vocabulary import (
    ACTIVE_STATUSES,
    ACTIVITY_STEPS,
    history_event_name,
    is_active,
    runtime_status_name,
)

pytestmark = pytest.mark.unit


def test_a_suspended_run_is_active_like_a_running_one() -> None:
    assert is_active("Suspended") and is_active(OrchestrationRuntimeStatus.Suspended)
    assert is_active("Pending") and is_active("Running") and is_active("ContinuedAsNew")
    for done in ("Completed", "Failed", "Terminated", "Canceled", None, "Unknown"):
        assert not is_active(done)
    assert ACTIVE_STATUSES <= {s.value for s in OrchestrationRuntimeStatus}


def test_raw_history_codes_map_to_the_sdk_names() -> None:
    # Durable Task's OrchestrationStatus codes (raw history) and HistoryEventType numbers
    assert [runtime_status_name(i) for i in (0, 1, 2, 3, 4, 5, 6, 7)] == [
        "Running",
        "Completed",
        "ContinuedAsNew",
        "Failed",
        "Canceled",
        "Terminated",
        "Pending",
        "Suspended",
    ]
    assert runtime_status_name(42) == "42"
    assert history_event_name(4) == "TaskScheduled" and history_event_name(7) == "SubOrchestrationInstanceCreated"
    assert history_event_name("TaskCompleted") == "TaskCompleted" and history_event_name(99) == "99"


def test_step_names_are_the_activity_functions() -> None:
    assert [str(s) for s in ACTIVITY_STEPS] == ["fetch_image_metadata", "analyze_image", "read_text", "persist_record"]


def test_one_time_format_parses_what_it_writes() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678912, tzinfo=UTC)
    assert iso(moment) == "2026-01-02T03:04:05.678Z"
    assert iso(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-01-02T03:04:05.678Z"
    assert parse_time("2026-01-02T05:04:05.678912345+02:00") == moment
    assert parse_time("2026-01-02T03:04:05.678Z") == moment.replace(microsecond=678000)
    assert parse_time("not a time") is None and parse_time("") is None and iso(None) is None
    assert millis_between(moment, moment + timedelta(seconds=1.5)) == 1500


def test_one_hamming_distance() -> None:
    assert phash_distance("ffffffffffffffff", "0000000000000000") == 64
    assert phash_distance("00000000000000ff", "000000000000000f") == 4
    assert hamming(-1, (1 << 64) - 1) == 0  # SQLite's signed view of the same 64 bits
    assert phash_to_int("xyz") is None
    with pytest.raises(ValueError):
        phash_distance("nothex", "0000000000000000")
