"""The app runs end to end when Event Grid delivers CloudEvents 1.0 instead of the Event Grid schema.

A subscription with ``eventDeliverySchema = CloudEventSchemaV1_0`` makes the Functions worker hand the starter a
``func.CloudEvent`` (azure-functions ≥ 1.25) or, with an older worker library, an ``EventGridEvent`` whose
``event_type`` is empty. The devhost delivers either (``DEVHOST_EVENTGRID_SCHEMA``, ``DEVHOST_EVENTGRID_CONVERTER``);
the Event Grid schema itself is what every other e2e test uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import start_stack

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.mark.parametrize("converter", ["library", "legacy"])
def test_cloud_events_delivery_runs_the_pipeline(converter: str, tmp_path: Path) -> None:
    env = {"DEVHOST_EVENTGRID_SCHEMA": "CloudEventSchemaV1_0", "DEVHOST_EVENTGRID_CONVERTER": converter}
    stack = start_stack(tmp_path, env)
    try:
        body = stack.client.upload(SAMPLES / "cat.jpg", profile="general")
        # links come from the host's own name (WEBSITE_HOSTNAME, set by the devhost as by the Functions host)
        assert body["statusUrl"] == f"{stack.host.base}/api/images/{body['id']}/status"
        final = stack.client.wait([body["id"]], timeout_s=240)[body["id"]]
        assert final["status"] == "completed", final
        assert "cat" in stack.client.get(body["id"])["tags"]
        log = stack.host.log.read_text(encoding="utf-8", errors="replace")
        assert "ignoring event" not in log
        assert '"function": "on_image_blob_created"' in log
    finally:
        stack.stop()
