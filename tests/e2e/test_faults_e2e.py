"""Fault suite on the real app (issue 10 "Done when"): a killed host, a killed Azurite, a storage outage, a
vision outage, a blob lost or deleted mid-run, slow and abandoned clients. Every accepted upload ends
``completed`` or ``failed`` with a reason readable through ``GET /api/images/{id}/status``; none is lost,
none is run twice, no deleted image comes back. Each case uses a handful of images; the reconcile sweep
runs every 2 s with a 4 s grace period in this stack (RECONCILE_SCHEDULE, RECONCILE_GRACE_S)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost import azurite
from imagepipe.client import ApiError
from tests.support.devhost import ROOT
from tests.support.stack import Stack, start_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SAMPLES = ROOT / "samples"
REASONS = {"lost", "run_ended", "retries_exhausted"}


@pytest.fixture(scope="module")
def slow_retry_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("faults")
    extra = {"VISION_FIRST_RETRY_MS": "1500", "RECONCILE_SCHEDULE": "*/2 * * * * *", "RECONCILE_GRACE_S": "4"}
    running = start_stack(state, extra)
    try:
        yield running
    finally:
        running.stop()


def runs_for(stack: Stack, image_id: str) -> list[dict[str, Any]]:
    rows = requests.get(
        f"{stack.host.base}/runtime/webhooks/durabletask/instances", params={"instanceIdPrefix": image_id}, timeout=10
    ).json()
    return list(rows)


def wait_for_stage(stack: Stack, image_id: str, stage: str, timeout_s: float = 120) -> None:
    def reached() -> bool:
        run = runs_for(stack, image_id)
        return bool(run) and stage in json.dumps(run[0].get("customStatus"))

    assert eventually(reached, timeout_s, interval=0.1), (
        f"{image_id} never reached {stage}: {runs_for(stack, image_id)}"
    )


def ended_with_reason(stack: Stack, ids: list[str], timeout_s: float = 300) -> dict[str, dict[str, Any]]:
    """Wait until every image is completed or failed; a failure must carry a code, a message and its record."""
    final = stack.client.wait(ids, timeout_s=timeout_s)
    for image_id in ids:
        status = final[image_id]
        assert status["status"] in ("completed", "failed"), (image_id, status)
        record = stack.client.get(image_id)  # readable: never a 404 for an accepted upload
        assert record["status"] == status["status"], (status, record["status"])
        if status["status"] == "failed":
            error = status["error"]
            assert error["code"] and error["message"] and "Traceback" not in json.dumps(error), status
    return final


def azurite_pid(stack: Stack) -> int:
    """The pid of the Azurite serving this stack (the only one on the stack's free blob port)."""
    marker = f"--blobPort\0{stack.env['AZURITE_BLOB_PORT']}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"azurite" in cmdline and marker in cmdline:
            return int(entry.name)
    raise AssertionError("the stack's Azurite process was not found")


# ---------------------------------------------------------------------------------------------------
# a killed host
# ---------------------------------------------------------------------------------------------------


def test_killed_host_finishes_every_run_exactly_once(slow_retry_stack: Stack) -> None:
    stack = slow_retry_stack
    names = ["cat.jpg", "coffee.jpg", "motorcycle.jpg", "astronaut.jpg", "insurance-claim.png", "game-screenshot.png"]
    ids = [stack.client.upload(SAMPLES / name)["id"] for name in names]
    assert eventually(lambda: any(stack.client.status(i)["status"] == "completed" for i in ids), timeout=120)
    done_before_kill = sum(stack.client.status(i)["status"] == "completed" for i in ids)
    stack.host.kill9()
    assert done_before_kill < len(ids), "the host must die with runs in flight for this test to mean anything"
    stack.host.start(timeout=120)
    final = ended_with_reason(stack, ids)
    assert {i: final[i]["status"] for i in ids} == dict.fromkeys(ids, "completed")
    for image_id in ids:
        assert len(runs_for(stack, image_id)) == 1


# ---------------------------------------------------------------------------------------------------
# blobs that vanish: lost (storage) vs deleted (client)
# ---------------------------------------------------------------------------------------------------


@contextmanager
def held_in_analysis(stack: Stack, sample: Path) -> Iterator[str]:
    """Upload ``sample`` while the vision fault plan fails its analysis transiently; yield its id once the run
    waits in analyze_image. The fault is lifted on exit."""
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    stack.fault_plan.write_text(json.dumps({"rules": [{"sha256": digest, "fault": "transient"}]}))
    try:
        image_id = stack.client.upload(sample)["id"]
        wait_for_stage(stack, image_id, "analyze_image")
        yield image_id
    finally:
        stack.fault_plan.write_text("{}")


def test_blob_lost_mid_run_ends_failed_lost_not_deleted(slow_retry_stack: Stack) -> None:
    """Formerly 'deletion mid-run leaves no record': a blob that vanishes behind the API's back is a loss
    of an accepted upload, so the record now ends failed: lost with guidance, and the run ends Failed."""
    stack = slow_retry_stack
    with held_in_analysis(stack, SAMPLES / "uniform-portrait.jpg") as image_id:
        (blob,) = list(stack.blobs.list(prefix=image_id))
        stack.blobs.delete(blob.name)  # behind the API's back, while analyze_image waits to retry
        final = ended_with_reason(stack, [image_id], timeout_s=120)[image_id]
        assert final["status"] == "failed" and final["error"]["code"] == "lost", final
        assert "upload the image again" in final["error"]["guidance"]
        assert eventually(lambda: runs_for(stack, image_id)[0]["runtimeStatus"] not in ("Pending", "Running"), 60)
        run = runs_for(stack, image_id)
        assert run[0]["runtimeStatus"] == "Failed" and "(lost)" in str(run[0]["output"])
        assert image_id in {item["id"] for item in stack.client.search(status="failed", limit=1000)["items"]}


def test_image_deleted_through_the_api_mid_run_is_gone(slow_retry_stack: Stack) -> None:
    stack = slow_retry_stack
    with held_in_analysis(stack, SAMPLES / "uniform-portrait.jpg") as image_id:
        stack.client.delete(image_id)
        for read in (stack.client.get, stack.client.status):
            with pytest.raises(ApiError) as missing:
                read(image_id)
            assert missing.value.status == 404
        assert image_id not in {item["id"] for item in stack.client.search(limit=1000)["items"]}


# ---------------------------------------------------------------------------------------------------
# storage faults
# ---------------------------------------------------------------------------------------------------


def test_killed_azurite_ends_every_accepted_upload(slow_retry_stack: Stack) -> None:
    """kill -9 of Azurite, restarted on the same location: blobs not yet flushed are gone (issue 10.7)."""
    stack = slow_retry_stack
    names = ["cat.jpg", "coffee.jpg", "motorcycle.jpg", "qr-code.png"]
    ids = [stack.client.upload(SAMPLES / name)["id"] for name in names]
    os.kill(azurite_pid(stack), signal.SIGKILL)
    port = int(stack.env["AZURITE_BLOB_PORT"])
    assert eventually(lambda: not azurite.is_listening(port), timeout=10, interval=0.05)
    # restarted by the test, on the same port and location, and recorded where the devhost records its own:
    # the stack's stop() stops it
    azurite.start(port, stack.host.state / "azurite", ROOT, pid_file=stack.host.state / azurite.PID_FILE)
    stack.blobs.ensure_container()  # the deployment's container (Azure never loses it)
    final = ended_with_reason(stack, ids)
    outcomes = {i: (final[i]["status"], (final[i].get("error") or {}).get("code")) for i in ids}
    print("after kill -9 of Azurite:", outcomes)
    for status, code in outcomes.values():
        assert status == "completed" or code in REASONS, outcomes
    for image_id in ids:
        assert len(runs_for(stack, image_id)) <= 1
    later = stack.client.upload(SAMPLES / "coffee.jpg")["id"]  # the stack still works
    assert ended_with_reason(stack, [later])[later]["status"] == "completed"


def test_storage_outage_ends_every_accepted_upload(slow_retry_stack: Stack) -> None:
    """Azurite stops answering for 8 s while runs are in flight; afterwards every upload ends with a result."""
    stack = slow_retry_stack
    ids = [stack.client.upload(SAMPLES / name)["id"] for name in ("astronaut.jpg", "game-screenshot.png", "cat.jpg")]
    assert eventually(lambda: bool(runs_for(stack, ids[0])), timeout=60, interval=0.1)  # runs are in flight
    pid = azurite_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(8)  # the outage itself: its length is the point, not an event to await
    finally:
        os.kill(pid, signal.SIGCONT)
    final = ended_with_reason(stack, ids)
    for image_id in ids:
        status = final[image_id]
        assert status["status"] == "completed" or status["error"]["code"] in REASONS, status


# ---------------------------------------------------------------------------------------------------
# vision outage
# ---------------------------------------------------------------------------------------------------


def test_vision_outage_ends_failed_with_reason_and_a_short_one_completes(slow_retry_stack: Stack) -> None:
    stack = slow_retry_stack
    down, blip = "motorcycle.jpg", "astronaut.jpg"
    rules = [
        {"sha256": hashlib.sha256((SAMPLES / down).read_bytes()).hexdigest(), "fault": "transient"},
        {"sha256": hashlib.sha256((SAMPLES / blip).read_bytes()).hexdigest(), "fault": "transient", "times": 1},
    ]
    stack.fault_plan.write_text(json.dumps({"rules": rules}))
    try:
        ids = [stack.client.upload(SAMPLES / name)["id"] for name in (down, blip)]
        final = ended_with_reason(stack, ids, timeout_s=180)
    finally:
        stack.fault_plan.write_text("{}")
    outage, short = final[ids[0]], final[ids[1]]
    assert outage["status"] == "failed" and outage["error"]["code"] == "retries_exhausted", outage
    assert "analyze_image kept failing" in outage["error"]["message"] and "503" in outage["error"]["message"]
    assert short["status"] == "completed", short


# ---------------------------------------------------------------------------------------------------
# slow and abandoned clients
# ---------------------------------------------------------------------------------------------------


def _raw_post(stack: Stack, body: bytes, chunks: int, pause_s: float, send: int | None = None) -> bytes:
    """POST /api/images over a raw socket, the body in ``chunks`` pieces ``pause_s`` apart; ``send`` bytes only
    (then hang up) when given. Returns the raw response ('' when hung up)."""
    port = int(stack.host.base.rsplit(":", 1)[1])
    head = (
        f"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    payload = body[:send] if send is not None else body
    step = max(1, len(payload) // chunks)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        for offset in range(0, len(payload), step):
            sock.sendall(payload[offset : offset + step])
            time.sleep(pause_s)
        if send is not None:
            return b""
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def test_slow_client_is_accepted_and_completes_and_an_abandoned_one_leaves_nothing(slow_retry_stack: Stack) -> None:
    stack = slow_retry_stack
    blobs_before = {b.name for b in stack.blobs.list()}
    records_before = {item["id"] for item in stack.client.search(limit=1000)["items"]}
    data = (SAMPLES / "coffee.jpg").read_bytes()
    _raw_post(stack, data, chunks=6, pause_s=0.3, send=len(data) // 2)  # hangs up half-way
    slow = _raw_post(stack, data, chunks=10, pause_s=0.3)
    head, _, body = slow.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202"), head
    slow_id = json.loads(body)["id"]
    assert ended_with_reason(stack, [slow_id])[slow_id]["status"] == "completed"
    new_blobs = {b.name for b in stack.blobs.list()} - blobs_before
    new_records = {item["id"] for item in stack.client.search(limit=1000)["items"]} - records_before
    assert new_records == {slow_id}, "an abandoned upload must leave no record"
    assert {name.split(".")[0] for name in new_blobs} == {slow_id}, "an abandoned upload must leave no blob"
