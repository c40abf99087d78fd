"""The Event Grid starter: one run per blob version; duplicates and foreign events start nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
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
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingClient]:
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


# -- both delivery schemas, decoded by the real azure.functions converter (as the worker does) ----------------

BLOB_DATA = {
    "api": "PutBlob",
    "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
    "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
    "eTag": "0x8DD1",
    "contentType": "image/jpeg",
    "contentLength": 524288,
    "blobType": "BlockBlob",
    "url": f"https://acct.blob.core.windows.net/images/{IMAGE_ID}.jpg",
    "sequencer": "00000000000004420000000000028963",
    "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"},
}
SOURCE = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct"


def decoded(body: dict[str, Any]) -> Any:
    """The trigger argument the Python worker passes for this delivered JSON (``json`` Datum -> converter)."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    return EventGridEventInConverter.decode(meta.Datum(value=json.dumps(body), type="json"), trigger_metadata={})


def eventgrid_schema(kind: str = "Microsoft.Storage.BlobCreated", subject: str = SUBJECT) -> dict[str, Any]:
    return {
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "topic": SOURCE,
        "subject": subject,
        "eventType": kind,
        "eventTime": "2026-12-02T10:00:00.1234567Z",
        "data": BLOB_DATA,
        "dataVersion": "",
        "metadataVersion": "1",
    }


def cloudevents_schema(kind: str = "Microsoft.Storage.BlobCreated", subject: str = SUBJECT) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "source": SOURCE,
        "subject": subject,
        "type": kind,
        "time": "2026-12-02T10:00:00.1234567Z",
        "datacontenttype": "application/json",
        "data": BLOB_DATA,
    }


@pytest.mark.parametrize("schema", [eventgrid_schema, cloudevents_schema], ids=["EventGridSchema", "CloudEventSchema"])
def test_both_delivery_schemas_start_the_run(client: RecordingClient, schema: Any) -> None:
    deliver(client, decoded(schema()))
    assert list(client.started) == [instance_id(IMAGE_ID, "0x8DD1")]


@pytest.mark.parametrize("schema", [eventgrid_schema, cloudevents_schema], ids=["EventGridSchema", "CloudEventSchema"])
@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("Microsoft.Storage.BlobDeleted", SUBJECT),
        ("Microsoft.Storage.BlobCreated", "/blobServices/default/containers/other/blobs/x.jpg"),
    ],
    ids=["deleted", "other container"],
)
def test_both_schemas_ignore_foreign_events(client: RecordingClient, schema: Any, kind: str, subject: str) -> None:
    deliver(client, decoded(schema(kind, subject)))
    assert client.started == {}


def test_cloudevent_decoded_by_an_older_converter_still_starts(client: RecordingClient) -> None:
    # azure-functions before CloudEvent support decodes a CloudEvents payload as an EventGridEvent whose
    # eventType is missing (the type travels as "type"): the blob facts in data still identify a create.
    body = cloudevents_schema()
    old = func.EventGridEvent(
        id=body["id"],
        data=body["data"],
        topic=None,
        subject=body["subject"],
        event_type=None,
        event_time=None,
        data_version=None,
    )
    deliver(client, old)
    assert list(client.started) == [instance_id(IMAGE_ID, "0x8DD1")]
    deleted = {**body, "data": {**BLOB_DATA, "api": "DeleteBlob"}}
    client.started.clear()
    deliver(
        client,
        func.EventGridEvent(
            id="x",
            data=deleted["data"],
            topic=None,
            subject=SUBJECT,
            event_type=None,
            event_time=None,
            data_version=None,
        ),
    )
    assert client.started == {}
