""".funcignore leaves every local-only path out of the deployed package and keeps every app path in.

The app package is what the Functions host needs: the composition root, host.json, the locked requirements
and the app's code. Every other top-level path of the checkout (tracked, or made by ``make install``,
``make test``, ``make run``) is local-only and must be excluded, so a new top-level folder fails here until
it is classified. The matcher implements the part of the gitignore syntax that .funcignore may use and
refuses the rest.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

#: the deployed package: top-level files and the folders of the app's code
APP = {"function_app.py", "host.json", "requirements.txt", "imagepipe", "triggers", "activities", "orchestrators"}

#: made by the Makefile, the tests or the tools, so absent from a fresh clone
GENERATED = {
    ".venv",
    ".venv-infra",
    "node_modules",
    ".models",
    ".state",
    ".cache",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "test-artifacts",
    "local.settings.json",
    "imagepipe.egg-info",
    "build",
    "__pycache__",
}

#: local-only by the issue that asked for the exclusions, whether or not they exist yet
NAMED = {".ci", ".pre-commit-config.yaml", "tests", "bench", "devhost", "docs", "samples", "infra"}


def patterns() -> list[str]:
    out = []
    for raw in (ROOT / ".funcignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), f".funcignore: negation ({line}) is not supported by this check"
        assert "**" not in line and "/" not in line.strip("/"), f".funcignore: use plain names or globs ({line})"
        out.append(line)
    return out


def ignored(path: str) -> bool:
    """Whether a path (relative, '/'-separated) is excluded: a pattern without a slash matches any component."""
    parts = path.split("/")
    for pattern in patterns():
        anchored = pattern.startswith("/")
        name = pattern.strip("/")
        candidates = parts[:1] if anchored else parts
        if any(fnmatch.fnmatchcase(part, name) for part in candidates):
            return True
    return False


def top_level() -> set[str]:
    return {p.name for p in ROOT.iterdir()} | GENERATED | NAMED


@pytest.mark.parametrize("name", sorted(top_level() - APP))
def test_local_only_paths_are_excluded(name: str) -> None:
    assert ignored(name), f"{name} is not in .funcignore: exclude it, or add it to APP if Azure needs it"


@pytest.mark.parametrize("name", sorted(APP))
def test_app_paths_are_deployed(name: str) -> None:
    assert (ROOT / name).exists(), f"{name} is missing from the checkout"
    assert not ignored(name)


def test_no_file_of_the_app_is_excluded() -> None:
    files = [
        p.relative_to(ROOT).as_posix()
        for top in sorted(APP)
        for p in ([ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert len(files) > 50  # imagepipe's modules, static dashboard files, the function modules
    assert [f for f in files if ignored(f)] == []


def test_caches_inside_the_app_are_excluded() -> None:
    assert ignored("imagepipe/__pycache__/settings.cpython-311.pyc")
    assert ignored("triggers/__pycache__")
