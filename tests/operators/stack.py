"""The local stack the operator tests run on: a devhost (the real app) on the session's Azurite."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.client import ImagepipeClient
from tests.devhost.harness import ROOT, Devhost
from tests.e2e.conftest import Stack

# The devhost's Event Grid emulator watches the container named by config/eventgrid-subscriptions.json.
CONTAINER = "images"


def start_ops_stack(azurite: str, state: Path) -> Stack:
    """A devhost running the app on the session's Azurite, with fast vision retries and a fault plan."""
    port = azurite.split("127.0.0.1:")[1].split("/")[0]
    fault_plan = state / "faults.json"
    fault_plan.write_text(json.dumps({"rules": []}))
    env = {
        "IMAGES_STORAGE": azurite,
        "IMAGES_CONTAINER": CONTAINER,
        "AZURITE_BLOB_PORT": port,
        "RECORD_STORE": "sqlite",
        "RECORDS_SQLITE_PATH": str(state / "records.sqlite3"),
        "VISION_PROVIDER": "local",
        "VISION_FIRST_RETRY_MS": "100",
        "VISION_MAX_ATTEMPTS": "3",
        "VISION_FAULT_PLAN": str(fault_plan),
        "RECONCILE_SCHEDULE": "0 0 0 1 1 *",
    }
    blobs = AzureBlobStore(CONTAINER, connection_string=azurite)
    blobs.ensure_container()
    AzureBlobStore("deadletters", connection_string=azurite).ensure_container()
    host = Devhost(ROOT, state / "devhost", env=env, storage="azurite").start(timeout=120)
    return Stack(host, ImagepipeClient(host.base, key=""), blobs, env, fault_plan)


def small_png(seed: int) -> bytes:
    image = Image.new("RGB", (96, 72), (30 + seed * 40, 120, 200 - seed * 30))
    ImageDraw.Draw(image).rectangle((10 + seed, 10, 60, 50), fill=(250, 250, 20 * seed))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
