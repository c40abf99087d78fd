"""Events lost during an outage: with no Event Grid subscription at all, the reconcile sweep alone starts
one run per blob version that has no finished record, and a second sweep starts nothing; and it ends an
accepted upload whose blob storage lost before any run (failed: lost, never a 404)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from imagepipe.ids import blob_name, new_image_id
from tests.support.devhost import ROOT
from tests.support.stack import Stack, start_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SAMPLES = ROOT / "samples"


@pytest.fixture(scope="module")
def stack_without_events(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same app, from a directory that lacks config/eventgrid-subscriptions.json: no event is delivered."""
    app = tmp_path_factory.mktemp("app-without-events")
    for name in (
        "function_app.py",
        "host.json",
        "imagepipe",
        "triggers",
        "orchestrators",
        "activities",
        "node_modules",
    ):
        os.symlink(ROOT / name, app / name)
    state = tmp_path_factory.mktemp("stack-no-events")
    running = start_stack(state, {"RECONCILE_GRACE_S": "1"}, app_dir=app)
    try:
        yield running
    finally:
        running.stop()


def sweep(stack: Stack) -> None:
    response = requests.post(f"{stack.host.base}/admin/functions/reconcile_images", json={"input": ""}, timeout=60)
    assert response.status_code == 202, response.text


def runs_for(stack: Stack, image_id: str) -> list[str]:
    rows = requests.get(
        f"{stack.host.base}/runtime/webhooks/durabletask/instances", params={"instanceIdPrefix": image_id}, timeout=10
    ).json()
    return [row["instanceId"] for row in rows]


def test_sweep_starts_lost_runs_once(stack_without_events: Stack) -> None:
    stack = stack_without_events
    ids = []
    for sample in ("cat.jpg", "coffee.jpg"):
        image_id = new_image_id()
        data = (SAMPLES / sample).read_bytes()
        stack.blobs.put(blob_name(image_id, "jpg"), data, content_type="image/jpeg", metadata={"profile": "general"})
        ids.append(image_id)
    # no event (the app dir has no subscription, see below), so nothing starts them but the sweep
    assert all(stack.client.status(i)["status"] == "pending" for i in ids)
    assert [runs_for(stack, i) for i in ids] == [[], []]
    sweep(stack)
    final = stack.client.wait(ids, timeout_s=240)
    assert [final[i]["status"] for i in ids] == ["completed", "completed"], final
    sweep(stack)  # answers once the sweep function has returned: any run it started exists by then
    assert [len(runs_for(stack, i)) for i in ids] == [1, 1]


def test_app_dir_has_no_subscription(stack_without_events: Stack) -> None:
    assert not (Path(stack_without_events.host.app) / "config").exists()


def test_sweep_ends_an_accepted_upload_whose_blob_storage_lost(stack_without_events: Stack) -> None:
    stack = stack_without_events
    image_id = stack.client.upload(SAMPLES / "cat.jpg")["id"]
    assert stack.client.status(image_id)["status"] == "pending"
    stack.blobs.delete(f"{image_id}.jpg")  # lost behind the API's back, before any run
    assert stack.client.status(image_id)["stage"] == "blob_missing"

    def swept_to_failed() -> bool:
        sweep(stack)  # ends it once it is older than RECONCILE_GRACE_S
        return bool(stack.client.status(image_id)["status"] == "failed")

    assert eventually(swept_to_failed, timeout=60, interval=0.5), stack.client.status(image_id)
    status = stack.client.status(image_id)
    assert status["error"]["code"] == "lost" and "upload the image again" in status["error"]["guidance"]
    assert stack.client.get(image_id)["status"] == "failed"
    assert runs_for(stack, image_id) == []
