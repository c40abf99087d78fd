"""The Azurite the devhost starts sends no telemetry: by default Azurite reports every request to Application
Insights (an instance id kept in its data folder, a batch sender retrying an endpoint outside this machine),
which costs the emulator CPU on every call and sends data off a developer's machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost import azurite
from tests.support.devhost import ROOT, free_port

pytestmark = [pytest.mark.devhost, pytest.mark.integration]

#: The file Azurite writes into its data folder when its telemetry client starts (its instance id).
TELEMETRY_ID_FILE = "AzuriteConfig"


def test_the_launched_azurite_runs_without_telemetry(tmp_path: Path) -> None:
    process = azurite.start(free_port(), tmp_path, ROOT, pid_file=tmp_path / "pid.json")
    try:
        record = json.loads((tmp_path / "pid.json").read_text(encoding="utf-8"))
        assert not (tmp_path / TELEMETRY_ID_FILE).exists()
        assert "--disableTelemetry" in record["cmdline"].split()
    finally:
        process.stop()
