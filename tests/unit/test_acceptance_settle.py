"""The reconcile sweep's decision for one unfinished record (imagepipe.acceptance.settle): a pure function
over the record, the live blob and the run's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imagepipe.acceptance import pending_record, settle, status_without_blob
from imagepipe.ports import BlobInfo
from imagepipe.records import iso

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
IMAGE = "01jabcdefghjkmnpqrstvwxyz0"
BLOB = BlobInfo("images", f"{IMAGE}.jpg", "0x8DC", 10, "image/jpeg", NOW)


def record(source: str = "upload", age_s: float = 600, expires_in_s: float | None = None, **changes: Any) -> Any:
    rec = pending_record(
        IMAGE,
        "images",
        f"{IMAGE}.jpg",
        content_type="image/jpeg",
        profile="general",
        original_name=None,
        client={},
        source=source,
        upload_expires_at=None if expires_in_s is None else iso(NOW + timedelta(seconds=expires_in_s)),
    )
    rec["updatedAt"] = iso(NOW - timedelta(seconds=age_s))
    rec.update(changes)
    return rec


def code(error: Any) -> str | None:
    return None if error is None else str(error["code"])


def test_recent_records_are_left_to_their_writer() -> None:
    assert settle(record(age_s=10), None, None, NOW, grace_s=60) is None


def test_accepted_upload_without_its_blob_is_lost() -> None:
    error = settle(record(), None, None, NOW, grace_s=60)
    assert code(error) == "lost" and "upload the image again" in error["guidance"]  # type: ignore[index]


def test_processing_record_without_its_blob_is_lost() -> None:
    processing = record(status="processing", blob={**record()["blob"], "etag": "0x8DC"})
    assert code(settle(processing, None, ("Running", None), NOW, grace_s=60)) == "lost"


def test_upload_url_waits_until_expiry_plus_grace() -> None:
    assert settle(record("sas", expires_in_s=30), None, None, NOW, grace_s=60) is None
    assert settle(record("sas", expires_in_s=-30), None, None, NOW, grace_s=60) is None
    error = settle(record("sas", expires_in_s=-61), None, None, NOW, grace_s=60)
    assert code(error) == "upload_not_received" and "POST /api/uploads" in error["guidance"]  # type: ignore[index]


def test_blob_without_a_run_is_left_to_the_blob_pass() -> None:
    assert settle(record(), BLOB, None, NOW, grace_s=60) is None  # record etag None: the run is not recorded yet
    current = record(status="processing", blob={**record()["blob"], "etag": BLOB.etag})
    assert settle(current, BLOB, None, NOW, grace_s=60) is None


@pytest.mark.parametrize("runtime", ["Pending", "Running", "ContinuedAsNew", "Suspended"])
def test_active_runs_are_left_alone(runtime: str) -> None:
    current = record(status="processing", blob={**record()["blob"], "etag": BLOB.etag})
    assert settle(current, BLOB, (runtime, None), NOW, grace_s=60) is None


@pytest.mark.parametrize("runtime", ["Failed", "Terminated", "Completed"])
def test_a_run_that_ended_without_a_result_ends_the_record(runtime: str) -> None:
    current = record(status="processing", blob={**record()["blob"], "etag": BLOB.etag})
    error = settle(current, BLOB, (runtime, "persist_record kept failing"), NOW, grace_s=60)
    assert code(error) == "run_ended" and runtime in error["message"]  # type: ignore[index]
    assert "persist_record kept failing" in error["message"]  # type: ignore[index]


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_finished_records_are_never_touched(status: str) -> None:
    assert settle(record(status=status), None, None, NOW, grace_s=0) is None


def test_status_without_blob() -> None:
    assert status_without_blob(record("sas", expires_in_s=60))["stage"] == "awaiting_upload"
    assert status_without_blob(record())["stage"] == "blob_missing"
    failed = record(status="failed", error={"code": "lost", "message": "m", "step": "storage"})
    assert status_without_blob(failed)["error"]["code"] == "lost"
