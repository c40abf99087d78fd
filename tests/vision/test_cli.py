"""``python -m imagepipe analyze``: one JSON line per file, pipeline decisions included, errors per file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.devhost import ROOT
from tests.support.images import SAMPLES

pytestmark = pytest.mark.vision


def test_analyze_cli_prints_one_json_per_image(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagepipe",
            "analyze",
            str(SAMPLES / "insurance-claim.png"),
            str(SAMPLES / "motorcycle.jpg"),
            str(bad),
            "--profile",
            "insurance",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    claim, moto, broken = lines
    assert claim["textHeavy"] is True and "receipt" in {lab["name"] for lab in claim["labels"]}
    assert claim["analysis"]["tagsResult"]["values"][0]["name"] == "text"
    assert "Policy" in json.dumps(claim["readResult"])
    assert moto["textHeavy"] is False and moto["labels"][0]["name"] == "vehicle"
    assert broken["error"]["code"] == "invalid_image"


def test_unknown_profile_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagepipe", "analyze", "x.jpg", "--profile", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "valid profiles" in proc.stderr
