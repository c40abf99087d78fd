"""Custom labels in a package that lacks their runtime (numpy/onnxruntime are locked, but a slimmed or broken
package must not take the app down).

The app must still import (every function registers), analysis must go on without custom labels, and
training must answer a 503 that names the missing part rather than a stack trace. Run in a subprocess where
``numpy``, ``onnxruntime`` and ``onnx`` cannot be imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
for name in ("numpy", "onnxruntime", "onnx"):
    sys.modules[name] = None
import function_app
from imagepipe.composition import services
from imagepipe.labelsets import custom_labels_patch, train_label_set
from imagepipe.errors import ModelUnavailableError
svc = services()
out = {"functions": len(function_app.app.get_functions()), "model": svc.embedder.model}
svc.labelsets.add_version({"profile": "general", "name": "g", "embeddingModel": "x", "labels": []})
out["patch"] = custom_labels_patch(svc.labelsets, svc.embedder, "general", b"bytes")
try:
    train_label_set(svc, {"name": "g", "labels": {"a": [{"data": "aGVsbG8="}]}})
except ModelUnavailableError as exc:
    out["train"] = [exc.http_status, exc.message]
print(json.dumps(out))
"""


def test_app_imports_and_degrades_without_numpy_and_onnxruntime(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "IMAGES_STORAGE": "UseDevelopmentStorage=true",
        "RECORDS_SQLITE_PATH": str(tmp_path / "records.sqlite3"),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["functions"] >= 30
    assert out["model"] == "unavailable"
    assert out["patch"] == {}
    status, message = out["train"]
    assert status == 503 and "numpy" in message and "custom-labels.md" in message
