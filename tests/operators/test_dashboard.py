"""The operations dashboard in headless Chromium: filter to failed runs, open one, replay it, see it complete.

Chromium is Debian's (``apt-get install chromium``, or ``$CHROMIUM``), driven by ``playwright-core`` from npm
(no browser download); without it the test skips and says how to install it. Screenshots land in
``test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from imagepipe.client import ApiError
from tests.support import browser
from tests.support.devhost import ROOT
from tests.support.stack import Stack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.dashboard, pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]

CHROMIUM = browser.chromium()
DRIVER = Path(__file__).with_name("dashboard_driver.cjs")
ARTIFACTS = ROOT / "test-artifacts"
CAT = ROOT / "samples" / "cat.jpg"


def test_dashboard_filters_opens_and_replays_a_failed_run(ops_stack: Stack) -> None:
    stack = ops_stack
    data = CAT.read_bytes()
    rule = {"sha256": hashlib.sha256(data).hexdigest(), "fault": "transient"}
    stack.fault_plan.write_text(json.dumps({"rules": [rule]}))
    image_id = stack.client.upload(CAT, profile="general")["id"]
    final = stack.client.wait([image_id], timeout_s=120)[image_id]
    assert final["status"] == "failed", final
    stack.fault_plan.write_text(json.dumps({"rules": []}))

    ARTIFACTS.mkdir(exist_ok=True)
    seen = browser.run_driver(DRIVER, stack.host.base, str(ARTIFACTS), str(CHROMIUM))
    assert seen["consoleErrors"] == []
    assert seen["failedRows"] == 1 and seen["runId"] == final["instanceId"]
    assert "analyze_image" in seen["errorText"] and "retries_exhausted" in seen["errorText"]
    assert seen["failedSteps"] == ["analyze_image"]
    assert any("TransientServiceError" in text for text in seen["attemptErrors"])
    assert seen["dialogs"] and "Replay run" in seen["dialogs"][0]
    assert seen["finalStatus"] == "Completed"
    assert ["analyze_image", "succeeded"] in seen["steps"]
    assert any(tag.startswith("cat") for tag in seen["tags"]), seen["tags"]
    assert seen["canvas"][0] > 10 and seen["chartBars"] >= 1
    assert (ARTIFACTS / "dashboard-replayed.png").stat().st_size > 10_000

    def completed() -> bool:
        try:
            return bool(stack.client.status(image_id)["status"] == "completed")
        except ApiError:
            return False

    assert eventually(completed, timeout=30, interval=0.5), stack.client.status(image_id)
