"""The whole app (function_app.py) on a devhost that starts its own Azurite: the stack the e2e and operator
tests run on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devhost.azurite import connection_string
from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.client import ImagepipeClient
from tests.support.devhost import ROOT, Devhost, free_port


@dataclass
class Stack:
    """A running stack: its devhost, an API client, the images container and the settings it runs with."""

    host: Devhost
    client: ImagepipeClient
    blobs: AzureBlobStore
    env: dict[str, str]
    fault_plan: Path

    def stop(self) -> None:
        """Stop the devhost by process group; it stops its Azurite (and ``stop`` one a killed host left)."""
        self.host.stop()


def start_stack(state: Path, extra_env: dict[str, str] | None = None, app_dir: Path = ROOT) -> Stack:
    """A devhost that starts its own Azurite (on a free port, data under ``state``) for this stack alone.

    The container is ``images``: the Event Grid subscription filter (config/eventgrid-subscriptions.json)
    names it, exactly as in Azure.
    """
    port = str(free_port())
    azurite = connection_string(int(port))
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


def start_keyed_host(state: Path) -> Devhost:
    """The app on a devhost that checks function and admin keys, as in Azure, with its own Azurite, the local
    analyzer and default retries; the ``images`` container exists. Stop it with ``stop()``."""
    port = free_port()
    azurite = connection_string(port)
    env = {
        "IMAGES_STORAGE": azurite,
        "IMAGES_CONTAINER": "images",
        "AZURITE_BLOB_PORT": str(port),
        "RECORD_STORE": "sqlite",
        "RECORDS_SQLITE_PATH": str(state / "records.sqlite3"),
        "VISION_PROVIDER": "local",
        "DEVHOST_EVENTGRID_RETRY_SCALE": "0.01",
    }
    host = Devhost(ROOT, state / "devhost", env=env, no_auth=False, storage="azurite").start(timeout=120)
    try:
        AzureBlobStore("images", connection_string=azurite).ensure_container()
    except BaseException:
        host.stop()
        raise
    return host
