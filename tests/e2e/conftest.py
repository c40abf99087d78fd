"""The app (function_app.py) running on a devhost subprocess that starts its own Azurite."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.client import ImagepipeClient
from tests.conftest import azurite_connection_string, free_port
from tests.devhost.harness import ROOT, Devhost


@dataclass
class Stack:
    host: Devhost
    client: ImagepipeClient
    blobs: AzureBlobStore
    env: dict[str, str]
    fault_plan: Path

    def stop(self) -> None:
        """Stop the host, and the Azurite it started (also one orphaned by a kill -9 of an earlier host)."""
        self.host.stop()
        subprocess.run(["pkill", "-9", "-f", "--", f"--blobPort {self.env['AZURITE_BLOB_PORT']} "], check=False)


def start_stack(state: Path, extra_env: dict[str, str] | None = None, app_dir: Path = ROOT) -> Stack:
    """A devhost that starts its own Azurite (on a free port, data under ``state``) for this stack alone.

    The container is ``images``: the Event Grid subscription filter (config/eventgrid-subscriptions.json)
    names it, exactly as in Azure.
    """
    port = str(free_port())
    azurite = azurite_connection_string(int(port))
    container = "images"
    fault_plan = state / "faults.json"
    env = {
        "IMAGES_STORAGE": azurite,
        "IMAGES_CONTAINER": container,
        "AZURITE_BLOB_PORT": port,
        "RECORD_STORE": "sqlite",
        "RECORDS_SQLITE_PATH": str(state / "records.sqlite3"),
        "VISION_PROVIDER": "local",
        "VISION_FIRST_RETRY_MS": "100",
        "VISION_MAX_ATTEMPTS": "3",
        "VISION_FAULT_PLAN": str(fault_plan),
        "DEVHOST_EVENTGRID_RETRY_SCALE": "0.01",
        **(extra_env or {}),
    }
    host = Devhost(app_dir, state / "devhost", env=env, storage="azurite").start(timeout=120)
    blobs = AzureBlobStore(container, connection_string=azurite)
    blobs.ensure_container()
    AzureBlobStore("deadletters", connection_string=azurite).ensure_container()
    return Stack(host, ImagepipeClient(host.base, key=""), blobs, env, fault_plan)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack")
    running = start_stack(state)
    try:
        yield running
    finally:
        running.stop()
