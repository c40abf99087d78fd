"""Shared fixtures: a real Azurite blob service on a free port, and app settings pointing at it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.process import free_port

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service for the session (the devhost's launcher); yields its connection string."""
    from devhost import azurite as launcher

    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed at {AZURITE}; run 'make install' (npm ci)")
    location = tmp_path_factory.mktemp("azurite")
    process = launcher.start(free_port(), location, ROOT)
    try:
        yield process.connection_string
    finally:
        process.stop()
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture()
def app_env(azurite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """App settings for one test: a fresh container and SQLite file; services rebuilt from them."""
    from imagepipe.composition import reset_services

    container = f"t{os.getpid()}x{int(time.time() * 1000) % 10**9}"
    env = {
        "IMAGES_STORAGE": azurite,
        "IMAGES_CONTAINER": container,
        "RECORD_STORE": "sqlite",
        "RECORDS_SQLITE_PATH": str(tmp_path / "records.sqlite3"),
        "VISION_PROVIDER": "local",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_services()
    from imagepipe.composition import services

    services().blobs.ensure_container()
    yield env
    reset_services()
