"""What the client API discloses, on the devhost: a failed run's status carries a reason, never the run's
traceback; a forged ``Host`` header never comes back in a link, a header or a body.

The stack's images live in a container no Event Grid subscription watches, so the test alone decides which
run exists for a blob version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.ids import instance_id
from tests.support.devhost import ROOT
from tests.support.stack import Stack, start_stack
from tests.support.waiting import eventually_value

pytestmark = pytest.mark.e2e

CONTAINER = "quiet"
FORGED_HOST = "evil.example"


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, AzureBlobStore]]:
    running = start_stack(tmp_path_factory.mktemp("disclosure"), {"IMAGES_CONTAINER": CONTAINER})
    try:
        blobs = AzureBlobStore(CONTAINER, connection_string=running.env["IMAGES_STORAGE"])
        blobs.ensure_container()
        yield running, blobs
    finally:
        running.stop()


def test_failed_run_status_has_a_reason_not_a_traceback(quiet: tuple[Stack, AzureBlobStore]) -> None:
    stack, blobs = quiet
    base = stack.host.base
    image_id = stack.client.upload(ROOT / "samples" / "cat.jpg")["id"]
    (blob,) = list(blobs.list(prefix=image_id))
    instance = instance_id(image_id, blob.etag)
    # A run started with a malformed input (etag of the wrong type) fails at once: its output is the
    # orchestrator's own exception text, which the status API must not hand to the client.
    given = {"imageId": image_id, "blobName": blob.name, "etag": 12345, "instanceId": instance}
    started = requests.post(
        f"{base}/runtime/webhooks/durabletask/orchestrators/image_pipeline/{instance}", json=given, timeout=10
    )
    assert started.status_code == 202, started.text

    def ended() -> dict[str, Any] | None:
        run = requests.get(f"{base}/runtime/webhooks/durabletask/instances/{instance}", timeout=10).json()
        return None if run["runtimeStatus"] in ("Pending", "Running") else dict(run)

    run = eventually_value(ended, timeout=120, what=f"the end of {instance}")
    assert run["runtimeStatus"] == "Failed"
    output = str(run["output"])
    assert "Orchestrator function" in output, output

    status = stack.client.status(image_id)
    assert status["status"] == "failed"
    error = status["error"]
    assert error["code"] and error["step"]
    shown = json.dumps(status)
    for internal in ("Traceback", ".py", "/work/", str(ROOT), "AttributeError", 'File \\"', "Orchestrator function"):
        assert internal not in shown, (internal, shown)
    assert instance in error["message"]


def test_forged_host_header_never_comes_back(quiet: tuple[Stack, AzureBlobStore]) -> None:
    stack, _ = quiet
    base = stack.host.base
    forged = {"Host": FORGED_HOST}
    data = (ROOT / "samples" / "coffee.jpg").read_bytes()
    upload = requests.post(
        f"{base}/api/images", data=data, headers={**forged, "content-type": "image/jpeg"}, timeout=60
    )
    assert upload.status_code == 202, upload.text
    image_id = upload.json()["id"]
    responses = [
        upload,
        requests.post(f"{base}/api/uploads", json={"contentType": "image/png"}, headers=forged, timeout=60),
        requests.get(f"{base}/api/images/{image_id}/status", headers=forged, timeout=60),
        requests.get(f"{base}/api/images/{image_id}", headers=forged, timeout=60),
        requests.get(f"{base}/api/images", params={"limit": "5"}, headers=forged, timeout=60),
        requests.get(f"{base}/api/images/{'0' * 26}", headers=forged, timeout=60),
    ]
    for response in responses:
        seen = response.text + json.dumps(dict(response.headers))
        assert FORGED_HOST not in seen, (response.request.method, response.url, seen)
    # links are built from the host's own name (WEBSITE_HOSTNAME), never from the request
    assert upload.headers["Location"] == f"{base}/api/images/{image_id}/status"
