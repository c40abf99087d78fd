"""Event Grid emulator against a real Azurite started by devhost: event shape, retries, dead letters."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost import azurite, eventgrid
from tests.devhost.harness import APPS, Devhost, free_port
from tests.support.waiting import eventually, eventually_value

pytestmark = [pytest.mark.devhost, pytest.mark.integration]


@pytest.fixture(scope="module")
def eg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devhost, Path, Any]]:
    from azure.storage.blob import BlobServiceClient

    base = tmp_path_factory.mktemp("eg")
    out = base / "out"
    out.mkdir()
    port = free_port()
    conn = azurite.connection_string(port)
    env = {
        "AZURITE_BLOB_PORT": str(port),
        "TEST_STORAGE": conn,
        "DEVHOST_TEST_OUT": str(out),
        "DEVHOST_EVENTGRID_RETRY_SCALE": "0.01",
    }
    host = Devhost(APPS / "eventgrid_app", base / "state", env=env, storage="azurite").start()
    svc = BlobServiceClient.from_connection_string(conn)
    svc.create_container("uploads")
    try:
        yield host, out, svc
    finally:
        host.stop()
        svc.close()  # Azurite's graceful shutdown waits for its clients' connections to close
    assert eventually(lambda: not azurite.is_listening(port), timeout=15), "devhost must stop the Azurite it started"


def _wait_for(read: Any, timeout: float = 30) -> Any:
    return eventually_value(read, timeout, interval=0.1)


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in out.glob("*.json")]


def test_blob_upload_delivers_blob_created_event(eg: tuple[Devhost, Path, Any]) -> None:
    from azure.storage.blob import ContentSettings

    host, out, svc = eg
    blob = svc.get_blob_client("uploads", "dir/cat.jpg")
    info = blob.upload_blob(b"\xff\xd8" + b"x" * 100, content_settings=ContentSettings(content_type="image/jpeg"))
    rec = _wait_for(lambda: [r for r in _records(out) if r["subject"].endswith("/dir/cat.jpg")])[0]
    assert rec["eventType"] == "Microsoft.Storage.BlobCreated"
    assert rec["subject"] == "/blobServices/default/containers/uploads/blobs/dir/cat.jpg"
    assert rec["topic"].endswith("/providers/Microsoft.Storage/storageAccounts/devstoreaccount1")
    assert rec["topic"].startswith("/subscriptions/")
    assert rec["dataVersion"] == ""
    data = rec["data"]
    assert data["api"] == "PutBlob"
    assert data["eTag"] == info["etag"] and data["eTag"].startswith('"')  # Event Grid quotes the ETag
    assert data["contentType"] == "image/jpeg" and data["contentLength"] == 102
    assert data["blobType"] == "BlockBlob"
    assert data["url"] == blob.url
    assert set(data) >= {"clientRequestId", "requestId", "sequencer", "storageDiagnostics"}
    # the Event Grid function used its durable client: the orchestration it started completes
    status = requests.get(f"{host.base}/runtime/webhooks/durabletask/instances/{rec['instanceId']}", timeout=10)
    _wait_for(
        lambda: (
            requests.get(f"{host.base}/runtime/webhooks/durabletask/instances/{rec['instanceId']}", timeout=10).json()[
                "runtimeStatus"
            ]
            == "Completed"
        )
    )
    assert status.status_code in (200, 202)
    # overwriting the blob is a new event; an unchanged blob is not re-delivered
    blob.upload_blob(b"second version", overwrite=True)
    _wait_for(lambda: len([r for r in _records(out) if r["subject"].endswith("/dir/cat.jpg")]) == 2)
    # later markers: once the second marker's event is in, the emulator has looked at the unchanged blob again
    for marker in ("dir/marker-1.txt", "dir/marker-2.txt"):
        svc.get_blob_client("uploads", marker).upload_blob(b"later")
        _wait_for(lambda m=marker: [r for r in _records(out) if r["subject"].endswith("/" + m)])
    assert len([r for r in _records(out) if r["subject"].endswith("/dir/cat.jpg")]) == 2


def test_block_list_upload_is_put_block_list(eg: tuple[Devhost, Path, Any]) -> None:
    _, out, svc = eg
    blob = svc.get_blob_client("uploads", "big.bin")
    blob.stage_block("b1", b"a" * 10)
    blob.stage_block("b2", b"b" * 10)
    blob.commit_block_list(["b1", "b2"])
    rec = _wait_for(lambda: [r for r in _records(out) if r["subject"].endswith("/big.bin")])[0]
    assert rec["data"]["api"] == "PutBlockList"


def test_copied_blob_is_copy_blob(eg: tuple[Devhost, Path, Any]) -> None:
    _, out, svc = eg
    source = svc.get_blob_client("uploads", "copy-source.bin")
    source.upload_blob(b"c" * 10)
    svc.get_blob_client("uploads", "copied.bin").start_copy_from_url(source.url, requires_sync=True)
    rec = _wait_for(lambda: [r for r in _records(out) if r["subject"].endswith("/copied.bin")])[0]
    assert rec["data"]["api"] == "CopyBlob"


def test_failing_handler_retries_then_dead_letters_then_redrive(eg: tuple[Devhost, Path, Any]) -> None:
    host, out, svc = eg
    svc.get_blob_client("uploads", "fail-1.txt").upload_blob(b"nope")
    url = host.base + "/admin/eventgrid/deadletters"
    dead = _wait_for(
        lambda: [
            d for d in requests.get(url, timeout=10).json()["value"] if d["event"]["subject"].endswith("/fail-1.txt")
        ]
    )[0]
    assert dead["deliveryAttempts"] == 3
    assert "refusing fail-1.txt" in dead["lastError"]
    assert dead["function"] == "on_blob_created"
    letters = svc.get_container_client("deadletters")

    def dead_blobs() -> list[Any]:
        # the SQLite record is written first, the blob right after
        return list(letters.list_blobs()) if letters.exists() else []

    blobs = _wait_for(dead_blobs)
    body = json.loads(letters.download_blob(blobs[0].name).readall())
    assert body[0]["id"] == dead["id"] and body[0]["deliveryAttempts"] == 3
    assert not [r for r in _records(out) if r["subject"].endswith("/fail-1.txt")]
    (out / "allow-failures").write_text("1")
    r = requests.post(url + "/redrive", json={"ids": [dead["id"]]}, timeout=10)
    assert r.json() == {"redriven": [dead["id"]]}
    rec = _wait_for(lambda: [r for r in _records(out) if r["subject"].endswith("/fail-1.txt")])[0]
    assert rec["id"] == dead["id"]
    assert not [d for d in requests.get(url, timeout=10).json()["value"] if d["id"] == dead["id"]]


def test_webhook_injection_and_filters(eg: tuple[Devhost, Path, Any]) -> None:
    host, out, _ = eg
    event = {
        "id": "injected-1",
        "topic": "t",
        "subject": "/blobServices/default/containers/uploads/blobs/inj.png",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-01-01T00:00:00.0000000Z",
        "data": {"api": "PutBlob"},
        "dataVersion": "",
        "metadataVersion": "1",
    }
    url = host.base + "/runtime/webhooks/eventgrid"
    r = requests.post(
        url,
        params={"functionName": "on_blob_created"},
        json=[event],
        headers={"aeg-event-type": "Notification"},
        timeout=30,
    )
    assert r.status_code == 202
    assert (out / "injected-1.json").exists()
    v = requests.post(
        url,
        params={"functionName": "on_blob_created"},
        headers={"aeg-event-type": "SubscriptionValidation"},
        json=[
            {
                "id": "v",
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "data": {"validationCode": "abc"},
            }
        ],
        timeout=10,
    )
    assert v.json() == {"validationResponse": "abc"}
    assert requests.post(url, params={"functionName": "nope"}, json=[event], timeout=10).status_code == 404


# ---------------------------------------------------------------------- CloudEvents 1.0 delivery


@pytest.fixture(scope="module")
def ce(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devhost, Path, Any]]:
    """The Event Grid app with its subscription switched to ``CloudEventSchemaV1_0`` in the config file."""
    from azure.storage.blob import BlobServiceClient

    base = tmp_path_factory.mktemp("ce")
    app = base / "app"
    shutil.copytree(APPS / "eventgrid_app", app, ignore=shutil.ignore_patterns("__pycache__"))
    subs_file = app / "config" / "eventgrid-subscriptions.json"
    subs = json.loads(subs_file.read_text())
    subs["subscriptions"][0]["eventDeliverySchema"] = "CloudEventSchemaV1_0"
    subs_file.write_text(json.dumps(subs))
    out = base / "out"
    out.mkdir()
    port = free_port()
    conn = azurite.connection_string(port)
    env = {"AZURITE_BLOB_PORT": str(port), "TEST_STORAGE": conn, "DEVHOST_TEST_OUT": str(out)}
    env.pop("DEVHOST_EVENTGRID_SCHEMA", None)
    host = Devhost(app, base / "state", env=env, storage="azurite").start()
    svc = BlobServiceClient.from_connection_string(conn)
    svc.create_container("uploads")
    try:
        yield host, out, svc
    finally:
        host.stop()
        svc.close()


def test_cloud_events_schema_delivers_a_cloud_event(ce: tuple[Devhost, Path, Any]) -> None:
    from azure.storage.blob import ContentSettings

    host, out, svc = ce
    blob = svc.get_blob_client("uploads", "ce/dog.png")
    info = blob.upload_blob(b"\x89PNG" + b"x" * 60, content_settings=ContentSettings(content_type="image/png"))
    rec = _wait_for(lambda: [r for r in _records(out) if r["subject"].endswith("/ce/dog.png")])[0]
    # what the worker's converter hands the function for an event with `specversion`
    assert rec["kind"] == "CloudEvent"
    assert rec["specversion"] == "1.0"
    assert rec["type"] == "Microsoft.Storage.BlobCreated"
    assert rec["source"] == eventgrid.TOPIC  # the storage account's resource id
    assert rec["subject"] == "/blobServices/default/containers/uploads/blobs/ce/dog.png"
    assert rec["datacontenttype"] == "application/json"
    assert rec["time"] is not None and len(rec["id"]) == 36
    data = rec["data"]
    assert data["api"] == "PutBlob" and data["eTag"] == info["etag"] and data["url"] == blob.url
    assert data["contentType"] == "image/png" and data["contentLength"] == 64
    assert rec["extensions"] == {}  # no Event Grid schema names (eventType, topic, ...) ride along
    _wait_for(
        lambda: (
            requests.get(f"{host.base}/runtime/webhooks/durabletask/instances/{rec['instanceId']}", timeout=10).json()[
                "runtimeStatus"
            ]
            == "Completed"
        )
    )


def test_legacy_converter_gives_an_event_grid_event_without_event_type(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env = {"DEVHOST_TEST_OUT": str(out), "DEVHOST_EVENTGRID_CONVERTER": "legacy"}
    host = Devhost(APPS / "eventgrid_app", tmp_path / "state", env=env, storage="none").start()
    try:
        cloud_event = {
            "specversion": "1.0",
            "type": "Microsoft.Storage.BlobCreated",
            "source": eventgrid.TOPIC,
            "id": "legacy-1",
            "time": "2026-01-01T00:00:00.0000000Z",
            "subject": "/blobServices/default/containers/uploads/blobs/old.png",
            "datacontenttype": "application/json",
            "data": {"api": "PutBlob"},
        }
        r = requests.post(
            host.base + "/runtime/webhooks/eventgrid",
            params={"functionName": "on_blob_created"},
            data=json.dumps([cloud_event]),
            headers={"Content-Type": "application/cloudevents-batch+json; charset=utf-8"},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        rec = json.loads((out / "legacy-1.json").read_text())
        # a worker bundling azure-functions < 1.25 reads Event Grid names only: the type is lost
        assert rec["kind"] == "EventGridEvent"
        assert rec["eventType"] is None and rec["topic"] is None and rec["eventTime"] is None
        assert rec["subject"].endswith("/old.png") and rec["data"] == {"api": "PutBlob"}
        hook = host.base + "/runtime/webhooks/eventgrid"
        shake = requests.options(hook, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
        assert shake.status_code == 200 and shake.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
        assert requests.get(hook, params={"functionName": "on_blob_created"}, timeout=10).status_code == 405
    finally:
        host.stop()
