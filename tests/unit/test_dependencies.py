"""The app's dependencies: requirements.txt (what Azure installs) is the complete, hashed lock of
requirements.in, and the local extras of pyproject.toml agree with it on every package they share."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def logical_lines(path: Path) -> list[str]:
    """Requirement lines with their '\\' continuations joined, comments and blank lines dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        line.split(" #")[0].strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def locked() -> dict[str, tuple[str, list[str]]]:
    """requirements.txt as name -> (version, hashes)."""
    out = {}
    for line in logical_lines(ROOT / "requirements.txt"):
        spec, *options = line.split(" --")
        req = Requirement(spec.strip())
        pins = [s for s in req.specifier if s.operator == "=="]
        assert len(pins) == 1 and len(req.specifier) == 1, f"requirements.txt: {spec} is not pinned with =="
        hashes = [o.removeprefix("hash=") for o in options if o.startswith("hash=sha256:")]
        out[canonicalize_name(req.name)] = (pins[0].version, hashes)
    return out


def test_every_locked_requirement_is_pinned_with_hashes() -> None:
    lock = locked()
    assert len(lock) > 20  # the closure, not only the direct dependencies
    assert [name for name, (_, hashes) in lock.items() if not hashes] == []


def test_the_lock_satisfies_every_direct_dependency() -> None:
    lock = locked()
    for line in logical_lines(ROOT / "requirements.in"):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} (requirements.in) is not in requirements.txt: re-lock (docs/deploy.md)"
        assert req.specifier.contains(lock[name][0], prereleases=True), (
            f"requirements.txt pins {name}=={lock[name][0]}, outside {req} of requirements.in: re-lock"
        )


def test_local_extras_agree_with_the_lock() -> None:
    lock = locked()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) >= {"local", "devhost", "dev"}
    for extra, requirements in extras.items():
        for line in requirements:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name in lock:
                assert req.specifier.contains(lock[name][0]), (
                    f"[{extra}] {req} disagrees with requirements.txt's {name}=={lock[name][0]}"
                )


def test_local_only_packages_are_not_deployed() -> None:
    lock = locked()
    for local_only in (
        "pytest",
        "mypy",
        "ruff",
        "opencv-python-headless",
        "torch",
        "mediapipe",
        "rapidocr-onnxruntime",
    ):
        assert local_only not in lock, f"{local_only} is local-only and must not be in requirements.txt"


def test_custom_labels_embedding_runtime_is_deployed() -> None:
    # custom labels embed images inside the Function App in Azure too (imagepipe/vision/embedding.py)
    lock = locked()
    for needed in ("numpy", "onnxruntime"):
        assert needed in lock, f"{needed} runs the custom labels' embedding model in Azure: lock it"
