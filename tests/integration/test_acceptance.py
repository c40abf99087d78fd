"""Accepted uploads are recorded durably (issue 10.7) and the sweep ends what no run will end; real Azurite,
SQLite and the upload functions in-process. The sweep's run lookup is a plain callback here (no host)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from imagepipe import acceptance, pipeline
from imagepipe.composition import services
from imagepipe.errors import TransientServiceError
from imagepipe.ids import instance_id
from imagepipe.vocabulary import Step
from tests.integration.samples import store_sample
from tests.support import images
from tests.support.inprocess import body_json, call_http

pytestmark = pytest.mark.integration


def upload(body: bytes) -> tuple[int, dict[str, Any]]:
    response = call_http(
        "upload_image",
        "POST",
        "/api/images",
        body=body,
        headers={"content-type": "image/jpeg", "x-filename": "claim.jpg", "x-client-metadata": '{"k": "v"}'},
        params={"profile": "insurance"},
    )
    return response.status_code, body_json(response)


def create_upload(spec: dict[str, Any]) -> dict[str, Any]:
    response = call_http(
        "create_upload",
        "POST",
        "/api/uploads",
        body=json.dumps(spec).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.get_body()
    return dict(body_json(response))


def sweep(now: datetime | None = None, runs: dict[str, tuple[str, Any]] | None = None) -> list[tuple[str, str]]:
    async def run_state(instance: str) -> tuple[str, Any] | None:
        return (runs or {}).get(instance)

    return asyncio.run(acceptance.settle_unfinished(services(), run_state, now=now))


# ---------------------------------------------------------------------------------------------------
# acceptance at upload time
# ---------------------------------------------------------------------------------------------------


def test_upload_is_recorded_pending_before_202(app_env: dict[str, str]) -> None:
    status, body = upload(images.jpeg())
    assert status == 202, body
    record = services().records.get(body["id"])
    assert record is not None, "a 202 without a durable record can vanish (issue 10.7)"
    assert record["status"] == "pending" and record["profile"] == "insurance"
    assert record["blob"]["name"] == f"{body['id']}.jpg" and record["blob"]["etag"] is None
    assert record["client"] == {"originalName": "claim.jpg", "metadata": {"k": "v"}}
    assert record["acceptance"]["source"] == "upload" and record["createdAt"].endswith("Z")


def test_record_store_down_answers_503_and_stores_no_blob(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(record: dict[str, Any]) -> bool:
        raise TransientServiceError("record store unreachable")

    monkeypatch.setattr(services().records, "upsert_if_not_older", down)
    status, body = upload(images.jpeg())
    assert status == 503 and body["error"]["code"] == "records_unavailable", body
    assert list(services().blobs.list()) == []


def test_storage_down_answers_503_and_removes_the_acceptance(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise TransientServiceError("upload blob: storage unreachable; retry later")

    monkeypatch.setattr(services().blobs, "put", down)
    status, body = upload(images.jpeg())
    assert status == 503, body
    assert list(services().records.iter_all()) == []


def test_upload_url_is_recorded_awaiting_upload(app_env: dict[str, str]) -> None:
    before = datetime.now(UTC)
    spec = create_upload({"contentType": "image/png", "profile": "general", "filename": "big.png"})
    record = services().records.get(spec["id"])
    assert record is not None and record["status"] == "pending"
    assert record["acceptance"]["source"] == "sas"
    expires = datetime.fromisoformat(record["acceptance"]["uploadExpiresAt"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=spec["expiresInSeconds"] - 5) < expires
    assert acceptance.status_without_blob(record)["stage"] == "awaiting_upload"


def test_direct_upload_keeps_the_accepted_profile_and_name(app_env: dict[str, str]) -> None:
    spec = create_upload({"contentType": "image/png", "profile": "general", "filename": "big.png"})
    headers = {**spec["requiredHeaders"], "x-ms-meta-profile": "insurance", "x-ms-meta-originalname": "..%2Fevil"}
    assert requests.put(spec["uploadUrl"], data=images.png(), headers=headers, timeout=10).status_code == 201
    info = services().blobs.get_properties(f"{spec['id']}.png")
    step = {
        "imageId": spec["id"],
        "blobName": info.name,
        "etag": info.etag,
        "instanceId": instance_id(spec["id"], info.etag),
    }
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, services(), step)["profile"] == "general"
    record = services().records.get(spec["id"])
    assert record is not None and record["client"]["originalName"] == "big.png"
    assert record["acceptance"]["source"] == "sas"


# ---------------------------------------------------------------------------------------------------
# the sweep ends what no run will end
# ---------------------------------------------------------------------------------------------------


def test_sweep_ends_an_expired_unused_upload_url(app_env: dict[str, str]) -> None:
    spec = create_upload({"contentType": "image/jpeg"})
    assert sweep() == []  # not expired yet
    later = datetime.now(UTC) + timedelta(seconds=spec["expiresInSeconds"] + 301)
    assert sweep(later) == [(spec["id"], "upload_not_received")]
    record = services().records.get(spec["id"])
    assert record is not None and record["status"] == "failed"
    assert record["error"]["code"] == "upload_not_received" and "new upload URL" in record["error"]["guidance"]


def test_sweep_ends_accepted_images_whose_blob_is_gone(app_env: dict[str, str]) -> None:
    svc = services()
    status, body = upload(images.jpeg())
    assert status == 202
    pending_id = body["id"]
    processing = store_sample(svc.blobs, "cat.jpg", "general")
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, processing)["ok"]
    svc.blobs.delete(f"{pending_id}.jpg")  # storage lost both (as a killed Azurite does)
    svc.blobs.delete(processing["blobName"])
    assert sweep() == []  # within the grace period: an upload or a run may be writing right now
    ended = sweep(datetime.now(UTC) + timedelta(seconds=301))
    assert sorted(ended) == sorted([(pending_id, "lost"), (processing["imageId"], "lost")])
    for image_id in (pending_id, processing["imageId"]):
        record = svc.records.get(image_id)
        assert record is not None and record["status"] == "failed"
        assert record["error"]["code"] == "lost" and "upload the image again" in record["error"]["guidance"]
        assert acceptance.status_without_blob(record)["error"]["code"] == "lost"


def test_sweep_ends_a_record_whose_run_ended_without_a_result(app_env: dict[str, str]) -> None:
    svc = services()
    step = store_sample(svc.blobs, "coffee.jpg", "general")
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert sweep(later, {step["instanceId"]: ("Running", None)}) == []
    assert sweep(later, {}) == []  # no run: the blob pass starts one
    failed = {step["instanceId"]: ("Failed", "persist_record failed (retries_exhausted): storage unreachable")}
    assert sweep(later, failed) == [(step["imageId"], "run_ended")]
    record = svc.records.get(step["imageId"])
    assert record is not None and "storage unreachable" in record["error"]["message"]


def test_sweep_leaves_finished_and_deleted_images_alone(app_env: dict[str, str]) -> None:
    svc = services()
    step = store_sample(svc.blobs, "coffee.jpg", "general")
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    assert pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})["ok"]
    svc.blobs.delete(step["blobName"])
    assert sweep(datetime.now(UTC) + timedelta(seconds=301)) == []
    assert svc.records.get(step["imageId"])["status"] == "completed"  # type: ignore[index]


def test_a_forged_run_for_an_unused_upload_url_does_not_end_it(app_env: dict[str, str]) -> None:
    spec = create_upload({"contentType": "image/jpeg"})
    name, etag = f"{spec['id']}.jpg", "0x8DEADBEEF"
    step = {"imageId": spec["id"], "blobName": name, "etag": etag, "instanceId": instance_id(spec["id"], etag)}
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, services(), step)["superseded"] is True
    assert pipeline.run_activity(Step.PERSIST_RECORD, services(), {**step, "status": "completed"})["superseded"] is True
    record = services().records.get(spec["id"])
    assert record is not None and record["status"] == "pending" and record["error"] is None
