"""Shared fixtures: a real Azurite blob service on a free port, and app settings pointing at it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azurite_connection_string(port: int) -> str:
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service for the session; yields its connection string."""
    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed at {AZURITE}; run 'make install' (npm ci)")
    port = free_port()
    location = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"Azurite exited with code {proc.returncode}")
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("Azurite did not listen within 30 s")
    try:
        yield azurite_connection_string(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
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
