"""The operations dashboard in headless Chromium: filter to failed runs, open one, replay it, see it complete.

Chromium is Debian's (``apt-get install chromium``), driven by ``playwright-core`` from npm (no browser
download). Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from imagepipe.client import ApiError
from tests.devhost.harness import ROOT
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.dashboard

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path(__file__).with_name("dashboard_driver.cjs")
ARTIFACTS = ROOT / "test-artifacts"
CAT = ROOT / "samples" / "cat.jpg"


def test_dashboard_filters_opens_and_replays_a_failed_run(ops_stack: Stack) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with 'apt-get install -y chromium'")
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "playwright-core").exists():
        pytest.fail("node and node_modules/playwright-core are needed: install Node.js 20+ and run 'npm ci'")
    stack = ops_stack
    data = CAT.read_bytes()
    rule = {"sha256": hashlib.sha256(data).hexdigest(), "fault": "transient"}
    stack.fault_plan.write_text(json.dumps({"rules": [rule]}))
    image_id = stack.client.upload(CAT, profile="general")["id"]
    final = stack.client.wait([image_id], timeout_s=120)[image_id]
    assert final["status"] == "failed", final
    stack.fault_plan.write_text(json.dumps({"rules": []}))

    ARTIFACTS.mkdir(exist_ok=True)
    done = subprocess.run(
        [node, str(DRIVER), stack.host.base, str(ARTIFACTS), str(CHROMIUM)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout)
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if stack.client.status(image_id)["status"] == "completed":
                break
        except ApiError:
            pass
        time.sleep(0.5)
    assert stack.client.status(image_id)["status"] == "completed"
