"""The local stack the operator tests run on: the e2e stack (the real app on a devhost) tuned for outages."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from tests.support.stack import Stack, start_stack

# The devhost's Event Grid emulator watches the container named by config/eventgrid-subscriptions.json.
CONTAINER = "images"


def start_ops_stack(state: Path) -> Stack:
    """The app on a devhost with its own Azurite, fast vision retries, a fault plan and no timer sweep."""
    stack = start_stack(state, {"VISION_FIRST_RETRY_MS": "100", "RECONCILE_SCHEDULE": "0 0 0 1 1 *"})
    stack.fault_plan.write_text(json.dumps({"rules": []}))
    return stack


def small_png(seed: int) -> bytes:
    image = Image.new("RGB", (96, 72), (30 + seed * 40, 120, 200 - seed * 30))
    ImageDraw.Draw(image).rectangle((10 + seed, 10, 60, 50), fill=(250, 250, 20 * seed))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
