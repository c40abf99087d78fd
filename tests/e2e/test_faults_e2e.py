"""Faults on the real app: a killed host, a blob deleted mid-run. Every image ends completed or
failed-with-reason; none is lost, none is run twice, no deleted image comes back."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import pytest
import requests

from imagepipe.client import ApiError
from tests.devhost.harness import ROOT
from tests.e2e.conftest import Stack, start_stack

pytestmark = pytest.mark.e2e

SAMPLES = ROOT / "samples"


@pytest.fixture(scope="module")
def slow_retry_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("faults")
    running = start_stack(state, {"VISION_FIRST_RETRY_MS": "1500"})
    try:
        yield running
    finally:
        running.stop()


def runs_for(stack: Stack, image_id: str) -> list[dict[str, object]]:
    rows = requests.get(
        f"{stack.host.base}/runtime/webhooks/durabletask/instances", params={"instanceIdPrefix": image_id}, timeout=10
    ).json()
    return list(rows)


def test_killed_host_finishes_every_run_exactly_once(slow_retry_stack: Stack) -> None:
    stack = slow_retry_stack
    names = ["cat.jpg", "coffee.jpg", "motorcycle.jpg", "astronaut.jpg", "insurance-claim.png", "game-screenshot.png"]
    ids = [stack.client.upload(SAMPLES / name)["id"] for name in names]
    deadline = time.monotonic() + 120
    while sum(stack.client.status(i)["status"] == "completed" for i in ids) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    done_before_kill = sum(stack.client.status(i)["status"] == "completed" for i in ids)
    stack.host.kill9()
    assert done_before_kill < len(ids), "the host must die with runs in flight for this test to mean anything"
    stack.host.start(timeout=120)
    final = stack.client.wait(ids, timeout_s=300)
    assert {i: final[i]["status"] for i in ids} == dict.fromkeys(ids, "completed")
    for image_id in ids:
        assert len(runs_for(stack, image_id)) == 1
        assert stack.client.get(image_id)["status"] == "completed"


def test_blob_deleted_mid_run_leaves_no_record(slow_retry_stack: Stack) -> None:
    stack = slow_retry_stack
    data = (SAMPLES / "uniform-portrait.jpg").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    stack.fault_plan.write_text(json.dumps({"rules": [{"sha256": digest, "fault": "transient"}]}))
    try:
        image_id = stack.client.upload(SAMPLES / "uniform-portrait.jpg")["id"]
        deadline = time.monotonic() + 120
        while not (run := runs_for(stack, image_id)) or "analyze_image" not in json.dumps(run[0].get("customStatus")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        (blob,) = list(stack.blobs.list(prefix=image_id))
        stack.blobs.delete(blob.name)  # behind the API's back, while analyze_image waits to retry
        while (run := runs_for(stack, image_id))[0]["runtimeStatus"] in ("Pending", "Running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert run[0]["runtimeStatus"] == "Completed"
        assert run[0]["output"]["status"] == "superseded"
        with pytest.raises(ApiError) as missing:
            stack.client.get(image_id)
        assert missing.value.status == 404
        assert image_id not in {item["id"] for item in stack.client.search(limit=1000)["items"]}
    finally:
        stack.fault_plan.write_text("{}")
