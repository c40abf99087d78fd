"""The Event Grid starter: one run per blob version; duplicates and foreign events start nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import pytest

from imagepipe.composition import reset_services
from imagepipe.ids import instance_id
from triggers import starter

pytestmark = pytest.mark.unit

IMAGE_ID = "01jabcdefghjkmnpqrstvwxyz0"


@dataclass
class Status:
    runtime_status: Any


@dataclass
class RecordingClient:
    """Stands in for DurableOrchestrationClient: records start_new, answers get_status from what it started."""

    started: dict[str, Any] = field(default_factory=dict)

    async def get_status(self, instance: str) -> Status:
        return Status("Running" if instance in self.started else None)

    async def start_new(self, name: str, instance: str, payload: Any) -> str:
        assert name == "image_pipeline"
        self.started[instance] = payload
        return instance


def event(subject: str, api: str = "PutBlob", etag: str = "0x8DD1", kind: str = "Microsoft.Storage.BlobCreated") -> Any:
    return func.EventGridEvent(
        id="e1",
        data={"api": api, "eTag": etag, "contentType": "image/jpeg"},
        topic="/t",
        subject=subject,
        event_type=kind,
        event_time=None,
        data_version="",
    )


@pytest.fixture()
def client(monkeypatch: pytest.MonkeyPatch) -> RecordingClient:
    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("IMAGES_CONTAINER", "images")
    monkeypatch.setenv("VISION_MAX_ATTEMPTS", "4")
    reset_services()
    yield RecordingClient()
    reset_services()


def deliver(client: RecordingClient, ev: Any) -> None:
    handler = starter.on_image_blob_created.build().get_user_function().client_function
    asyncio.run(handler(ev, client))


SUBJECT = f"/blobServices/default/containers/images/blobs/{IMAGE_ID}.jpg"


def test_blob_created_starts_one_run_with_retry_policy(client: RecordingClient) -> None:
    deliver(client, event(SUBJECT))
    expected = instance_id(IMAGE_ID, "0x8DD1")
    assert list(client.started) == [expected]
    payload = client.started[expected]
    assert payload["blobName"] == f"{IMAGE_ID}.jpg" and payload["etag"] == "0x8DD1"
    assert payload["retry"]["maxNumberOfAttempts"] == 4
    json.dumps(payload)  # JSON-native input


def test_duplicate_deliveries_start_nothing_new(client: RecordingClient) -> None:
    for _ in range(3):
        deliver(client, event(SUBJECT))
    assert len(client.started) == 1


def test_new_version_gets_its_own_run(client: RecordingClient) -> None:
    deliver(client, event(SUBJECT, etag="0x1"))
    deliver(client, event(SUBJECT, etag="0x2"))
    assert set(client.started) == {instance_id(IMAGE_ID, "0x1"), instance_id(IMAGE_ID, "0x2")}


@pytest.mark.parametrize(
    "ev",
    [
        event("/blobServices/default/containers/other/blobs/x.jpg"),
        event(f"/blobServices/default/containers/images/blobs/{IMAGE_ID}.jpg", api="SetBlobMetadata"),
        event("/blobServices/default/containers/images/blobs/../../etc/passwd"),
        event(SUBJECT, kind="Microsoft.Storage.BlobDeleted"),
    ],
    ids=["other container", "not a create api", "foreign name", "deleted event"],
)
def test_foreign_events_are_ignored(client: RecordingClient, ev: Any) -> None:
    deliver(client, ev)
    assert client.started == {}
