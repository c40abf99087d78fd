"""End to end on the devhost: upload -> blob -> Event Grid event -> orchestration -> record -> query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from imagepipe.client import ApiError
from imagepipe.ids import instance_id
from tests.support.stack import Stack
from tests.support.waiting import eventually_value

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def run_to_end(stack: Stack, name: str, profile: str) -> tuple[str, dict[str, object]]:
    body = stack.client.upload(SAMPLES / name, profile=profile, metadata={"case": "e2e"})
    final = stack.client.wait([body["id"]], timeout_s=240)[body["id"]]
    return body["id"], final


def test_photo_runs_to_a_completed_record(stack: Stack) -> None:
    image_id, final = run_to_end(stack, "cat.jpg", "general")
    assert final["status"] == "completed", final
    record = stack.client.get(image_id)
    assert record["status"] == "completed" and record["profile"] == "general"
    assert record["client"] == {"originalName": "cat.jpg", "metadata": {"case": "e2e"}}
    assert record["image"]["width"] > 0 and len(record["image"]["phash"]) == 16
    assert "cat" in record["tags"]
    assert record["run"]["instanceId"] == final["instanceId"]
    assert stack.client.search(tag="cat")["items"][0]["id"] == image_id


def test_insurance_document_chains_ocr(stack: Stack) -> None:
    image_id, final = run_to_end(stack, "insurance-claim.png", "insurance")
    assert final["status"] == "completed", final
    record = stack.client.get(image_id)
    assert "policy" in record["text"].lower()
    assert "document" in record["labelNames"]
    history = requests.get(
        f"{stack.host.base}/runtime/webhooks/durabletask/instances/{final['instanceId']}",
        params={"showHistory": "true"},
        timeout=10,
    ).json()
    # the status API folds TaskScheduled into the completion rows, as the Durable extension does
    steps = [e["FunctionName"] for e in history["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert steps == ["fetch_image_metadata", "analyze_image", "read_text", "persist_record"]
    found = stack.client.search(text="policy", profile="insurance")["items"]
    assert [item["id"] for item in found] == [image_id]


def test_duplicate_event_delivery_starts_nothing_new(stack: Stack) -> None:
    image_id, final = run_to_end(stack, "coffee.jpg", "general")
    info = next(stack.blobs.list(prefix=image_id))
    event = {
        "id": "dup-1",
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z",
        "subject": f"/blobServices/default/containers/{stack.blobs.container}/blobs/{info.name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-11-25T00:00:00Z",
        "dataVersion": "",
        "metadataVersion": "1",
        "data": {"api": "PutBlob", "eTag": info.etag, "contentType": "image/jpeg", "url": info.url},
    }
    for _ in range(3):
        response = requests.post(
            f"{stack.host.base}/runtime/webhooks/eventgrid",
            params={"functionName": "on_image_blob_created"},
            data=json.dumps([event]),
            headers={"aeg-event-type": "Notification", "content-type": "application/json"},
            timeout=30,
        )
        assert response.status_code in (200, 202), response.text
    runs = requests.get(
        f"{stack.host.base}/runtime/webhooks/durabletask/instances",
        params={"instanceIdPrefix": image_id},
        timeout=10,
    ).json()
    assert [r["instanceId"] for r in runs] == [instance_id(image_id, info.etag)]
    assert stack.client.status(image_id)["status"] == "completed"


def test_overwrite_with_newer_version_wins(stack: Stack) -> None:
    image_id, final = run_to_end(stack, "motorcycle.jpg", "insurance")
    assert final["status"] == "completed"
    name = f"{image_id}.jpg"
    newer = (SAMPLES / "cat.jpg").read_bytes()
    stored = stack.blobs.put(name, newer, content_type="image/jpeg", metadata={"profile": "general"})

    def newer_completed() -> dict[str, Any] | None:
        record = stack.client.get(image_id)
        return record if record["blob"]["etag"] == stored.etag and record["status"] == "completed" else None

    record = eventually_value(newer_completed, timeout=240, interval=0.5, what="the newer version's completed record")
    assert "cat" in record["tags"] and record["profile"] == "general"


def test_undecodable_blob_fails_with_reason(stack: Stack) -> None:
    from imagepipe.ids import new_image_id

    image_id = new_image_id()
    stack.blobs.put(f"{image_id}.jpg", b"\xff\xd8\xff" + b"garbage" * 100, content_type="image/jpeg", metadata={})
    final = stack.client.wait([image_id], timeout_s=120)[image_id]
    assert final["status"] == "failed"
    assert final["error"]["step"] == "fetch_image_metadata"
    assert "not acceptable" in final["error"]["message"]


def test_delete_removes_blob_and_record(stack: Stack) -> None:
    image_id, final = run_to_end(stack, "qr-code.png", "general")
    stack.client.delete(image_id)
    assert list(stack.blobs.list(prefix=image_id)) == []
    with pytest.raises(ApiError) as error:
        stack.client.get(image_id)
    assert error.value.status == 404
    with pytest.raises(ApiError):
        stack.client.delete(image_id)


def test_deleting_an_image_terminates_its_suspended_run(stack: Stack) -> None:
    """A Suspended run is active (it resumes and writes): deleting its image must terminate it, as for Running."""
    import hashlib

    from tests.support.waiting import eventually

    sample = SAMPLES / "uniform-portrait.jpg"
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    stack.fault_plan.write_text(json.dumps({"rules": [{"sha256": digest, "fault": "transient"}]}))
    webhooks = f"{stack.host.base}/runtime/webhooks/durabletask/instances"

    def runtime(instance: str) -> str:
        return str(requests.get(f"{webhooks}/{instance}", timeout=10).json().get("runtimeStatus"))

    try:
        image_id = stack.client.upload(sample)["id"]
        assert eventually(lambda: stack.client.status(image_id).get("stage") == "analyze_image", 120)
        instance = stack.client.status(image_id)["instanceId"]
        suspended = requests.post(f"{webhooks}/{instance}/suspend", params={"reason": "operator"}, timeout=10)
        assert suspended.status_code in (200, 202), suspended.text
        assert eventually(lambda: runtime(instance) == "Suspended", 30)
        stack.client.delete(image_id)
        assert eventually(lambda: runtime(instance) == "Terminated", 30), runtime(instance)
    finally:
        stack.fault_plan.write_text("{}")
