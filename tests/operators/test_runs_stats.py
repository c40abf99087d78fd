"""Unit tests: run summaries, filters, paging, replay decisions, statistics and dead-letter parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imagepipe.errors import ConflictError, InvalidInputError
from imagepipe.ids import instance_id, new_image_id
from imagepipe.operators import deadletters as dl
from imagepipe.operators.runs import (
    RunFilter,
    page,
    parse_statuses,
    plan_bulk_replay,
    replay_action,
    replay_limit,
    run_filter_from,
    summarize,
)
from imagepipe.operators.stats import compute_stats, percentile

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def status(runtime: str, created_s_ago: float, took_s: float, stage: str = "completed", **extra: Any) -> dict[str, Any]:
    image_id = new_image_id(int((NOW - timedelta(seconds=created_s_ago)).timestamp() * 1000))
    created = NOW - timedelta(seconds=created_s_ago)
    return {
        "name": "image_pipeline",
        "instanceId": instance_id(image_id, '"0x8D1"'),
        "runtimeStatus": runtime,
        "input": json.dumps({"imageId": image_id, "source": "eventgrid"}),
        "customStatus": {"stage": stage, "imageId": image_id},
        "output": extra.get("output"),
        "createdTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastUpdatedTime": (created + timedelta(seconds=took_s)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_summary_prefers_the_record_error_and_takes_profile_from_the_record() -> None:
    s = status("Failed", 60, 5, "failed", output="Orchestrator function 'image_pipeline' failed: x failed (c): m")
    record = {
        "profile": "documents",
        "status": "failed",
        "run": {"instanceId": s["instanceId"]},
        "error": {"code": "InvalidImageFormat", "message": "rejected", "step": "analyze_image"},
    }
    row = summarize(s, record)
    assert row["imageId"] == s["instanceId"][:26]
    assert row["profile"] == "documents"
    assert row["error"] == {"code": "InvalidImageFormat", "message": "rejected", "step": "analyze_image"}
    assert row["durationMs"] == 5000
    assert summarize(s, None)["error"] == {"code": "c", "message": "m", "step": "x"}
    assert summarize(status("Running", 5, 1, "analyze_image"), None)["durationMs"] is None


def test_filters_and_statuses() -> None:
    assert parse_statuses("failed, RUNNING,failed") == ["Failed", "Running"]
    every = "Running, Completed, ContinuedAsNew, Failed, Canceled, Terminated, Pending, Suspended"
    with pytest.raises(InvalidInputError, match=every):
        parse_statuses("broken")
    flt = run_filter_from({"status": "Failed", "profile": "general", "createdFrom": "2026-03-01T11:00:00Z"})
    row = summarize(status("Failed", 60, 1), {"profile": "general"})
    assert flt.matches(row)
    assert not flt.matches({**row, "profile": "documents"})
    assert not flt.matches(summarize(status("Failed", 7200, 1), {"profile": "general"}))
    with pytest.raises(InvalidInputError):
        run_filter_from({"createdTo": "yesterday"})


def test_paging_is_newest_first_and_complete() -> None:
    rows = [summarize(status("Completed", i * 10, 1), None) for i in range(7)]
    seen: list[str] = []
    token: str | None = None
    while True:
        chunk, token = page(rows, 3, token)
        seen += [r["instanceId"] for r in chunk]
        if token is None:
            break
    expected = [r["instanceId"] for r in sorted(rows, key=lambda r: r["createdTime"], reverse=True)]
    assert seen == expected
    with pytest.raises(InvalidInputError):
        page(rows, 3, "garbage!")


@pytest.mark.parametrize(
    ("runtime", "mode", "action"),
    [
        ("Failed", "auto", "rewind"),
        ("Completed", "auto", "restart"),
        ("Terminated", "auto", "restart"),
        ("Failed", "restart", "restart"),
        ("Failed", "rewind", "rewind"),
    ],
)
def test_replay_action(runtime: str, mode: str, action: str) -> None:
    assert replay_action(runtime, mode) == action


def test_replay_refuses_active_runs_and_rewinding_good_ones() -> None:
    for runtime in ("Pending", "Running"):
        with pytest.raises(ConflictError) as info:
            replay_action(runtime, "auto")
        assert info.value.http_status == 409
    with pytest.raises(ConflictError, match="only a Failed run"):
        replay_action("Completed", "rewind")
    with pytest.raises(InvalidInputError):
        replay_action("Failed", "sideways")
    assert replay_limit(None) == 100
    with pytest.raises(InvalidInputError):
        replay_limit(5000)


def test_bulk_plan_defaults_to_failed_and_caps_at_limit() -> None:
    rows = [summarize(status("Failed", 100 + i, 1), None) for i in range(5)]
    rows += [summarize(status("Completed", 50, 1), None), summarize(status("Running", 5, 1), None)]
    planned, skipped, matched = plan_bulk_replay(rows, RunFilter(), "auto", 3)
    assert matched == 5 and len(planned) == 3 and not skipped
    assert {p["action"] for p in planned} == {"rewind"}
    planned, skipped, matched = plan_bulk_replay(rows, RunFilter(("Running", "Completed")), "auto", 10)
    assert [p["runtimeStatus"] for p in planned] == ["Completed"]
    assert skipped[0]["runtimeStatus"] == "Running" and "wait" in skipped[0]["reason"]


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([], 50) is None
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95


def test_stats_counts_reasons_latency_and_series() -> None:
    rows = [summarize(status("Completed", 600 - i * 60, 2 + i), None) for i in range(5)]
    fail = "Orchestrator function 'image_pipeline' failed: analyze_image failed (InvalidImageFormat): bad"
    rows += [summarize(status("Failed", 300, 3, "failed", output=fail), None) for _ in range(2)]
    rows += [summarize(status("Running", 30, 0, "analyze_image"), None)]
    rows += [summarize(status("Completed", 7200, 5), None)]  # outside a 60 minute window
    stats = compute_stats(rows, NOW, 60)
    assert stats["total"] == 8
    assert stats["byStatus"] == {"Completed": 5, "Failed": 2, "Running": 1}
    assert stats["byStage"]["analyze_image"] == 1 and stats["byStage"]["failed"] == 2
    assert stats["failureReasons"][0]["step"] == "analyze_image"
    assert stats["failureReasons"][0]["code"] == "InvalidImageFormat"
    assert stats["failureReasons"][0]["count"] == 2
    assert stats["throughput"]["completed"] == 5
    assert stats["latencyMs"]["completed"]["p50"] == 4000
    assert stats["latencyMs"]["completed"]["max"] == 6000
    assert len(stats["series"]) == 30
    assert sum(b["completed"] for b in stats["series"]) == 5
    assert sum(b["started"] for b in stats["series"]) == 8


def test_deadletter_blob_azure_format_and_target() -> None:
    image_id = new_image_id()
    event = {
        "id": "e1",
        "eventType": "Microsoft.Storage.BlobCreated",
        "subject": f"/blobServices/default/containers/images/blobs/{image_id}.jpg",
        "data": {"api": "PutBlob", "eTag": '"0x8DABC"'},
        "eventTime": "2026-01-01T00:00:00Z",
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": 30,
        "lastDeliveryOutcome": "GenericError",
        "lastHttpStatusCode": 500,
        "publishTime": "2026-01-01T00:00:00Z",
        "lastDeliveryAttemptTime": "2026-01-01T01:00:00Z",
    }
    events = dl.parse_blob(json.dumps([event]).encode())
    row = dl.describe("topic/sub/2026/01/01/00/x.json", 0, events[0])
    assert row["imageId"] == image_id and row["eTag"] == '"0x8DABC"' and row["container"] == "images"
    assert row["deadLetterReason"] == "MaxDeliveryAttemptsExceeded" and row["lastHttpStatusCode"] == 500
    assert dl.selected(row, [image_id]) and dl.selected(row, None) and not dl.selected(row, ["other"])
    # a single object, JSON lines and an {"event": ...} envelope are accepted too
    assert dl.parse_blob(json.dumps(event).encode())[0]["id"] == "e1"
    assert len(dl.parse_blob((json.dumps(event) + "\n" + json.dumps(event)).encode())) == 2
    wrapped = dl.parse_blob(json.dumps({"event": {"id": "e2"}, "deadLetterReason": "TimeToLiveExceeded"}).encode())
    assert wrapped[0] == {"id": "e2", "deadLetterReason": "TimeToLiveExceeded"}
    with pytest.raises(dl.DeadLetterFormatError):
        dl.parse_blob(b"not json {")
    assert dl.target_of({"subject": "/other"}) is None


def test_auto_restarts_a_run_whose_failure_a_rewind_would_replay() -> None:
    assert replay_action("Failed", "auto", rewindable=False) == "restart"
    with pytest.raises(ConflictError) as info:
        replay_action("Failed", "rewind", rewindable=False)
    assert info.value.code == "not_rewindable"
    rows = [{**summarize(status("Failed", 10, 1), None), "rewindable": False}]
    assert plan_bulk_replay(rows, RunFilter(), "auto", 10)[0][0]["action"] == "restart"


def test_deadletter_blob_as_the_devhost_emulator_writes_it() -> None:
    """devhost/eventgrid.py writes Azure's array shape plus ``lastDeliveryError`` (devhost only)."""
    image_id = new_image_id()
    event = {
        "topic": "/subscriptions/0/resourceGroups/devhost/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": f"/blobServices/default/containers/images/blobs/{image_id}.png",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "8d7c",
        "data": {"api": "PutBlob", "eTag": '"0x1D"', "contentType": "image/png"},
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-01-01T00:00:00.1230Z",
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": 30,
        "lastDeliveryOutcome": "Failed",
        "lastHttpStatusCode": 500,
        "lastDeliveryError": "RuntimeError: boom",
        "publishTime": "2026-01-01T00:00:00.123Z",
        "lastDeliveryAttemptTime": "2026-01-01T00:10:00.000Z",
    }
    row = dl.describe(
        "devstoreaccount1/IMAGES-BLOB-CREATED/2026/01/01/00/8d7c.json",
        0,
        dl.parse_blob(json.dumps([event]).encode())[0],
    )
    assert row["imageId"] == image_id and row["eTag"] == '"0x1D"'
    assert row["lastDeliveryError"] == "RuntimeError: boom" and row["lastHttpStatusCode"] == 500
