"""The browser the dashboard tests drive: ``$CHROMIUM`` if set, else Debian's ``/usr/bin/chromium``.

Nothing is downloaded or installed by the tests (``make test`` never runs apt-get): without a browser, or
without Node.js and ``node_modules/playwright-core``, the dashboard tests skip with a reason that says how
to install what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_HINT = (
    "Chromium not found at {path}: install Debian's Chromium with 'sudo apt-get install chromium' "
    "(or set CHROMIUM=/path/to/chromium)"
)
NODE_HINT = "node and node_modules/playwright-core are needed: install Node.js 20+ and run 'npm ci'"


def chromium() -> Path:
    """Where the browser is expected (``$CHROMIUM`` or ``/usr/bin/chromium``); it may be missing."""
    return Path(os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM)


def missing() -> str | None:
    """Why the dashboard tests cannot run here (with how to fix it), or None when they can."""
    path = chromium()
    if not (path.is_file() and os.access(path, os.X_OK)):
        return CHROMIUM_HINT.format(path=path)
    if shutil.which("node") is None or not (ROOT / "node_modules" / "playwright-core").exists():
        return NODE_HINT
    return None


def run_driver(driver: Path, *args: str, timeout: float = 180) -> dict[str, Any]:
    """Run a Node.js browser driver script with ``args``; it must exit 0 (its stderr's tail is the failure
    message otherwise) and print one JSON object: what it saw, returned."""
    done = subprocess.run(
        [shutil.which("node") or "node", str(driver), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen
