"""Start, wait for and stop Azurite's blob service; build its connection string.

Reusable by tests and tools::

    proc = azurite.start(port, Path(".state/azurite"))   # waits until it listens
    conn = azurite.connection_string(port)
    proc.stop()

The binary is looked up as ``<app dir>/node_modules/.bin/azurite-blob``, then in the repository's
``node_modules``, then on ``PATH``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REPO_ROOT = Path(__file__).resolve().parent.parent


def connection_string(port: int = 10000, host: str = "127.0.0.1") -> str:
    """Connection string of the Azurite development account on ``host:port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{port}/{DEV_ACCOUNT};"
    )


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_binary(app_dir: Path | None = None) -> Path:
    """Locate ``azurite-blob``."""
    candidates = []
    if app_dir is not None:
        candidates.append(Path(app_dir) / "node_modules" / ".bin" / "azurite-blob")
    candidates.append(REPO_ROOT / "node_modules" / ".bin" / "azurite-blob")
    for c in candidates:
        if c.exists():
            return c
    found = shutil.which("azurite-blob")
    if found:
        return Path(found)
    raise FileNotFoundError("azurite-blob not found (run npm ci in the repository)")


def wait(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until Azurite listens on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {proc.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"Azurite did not listen on {port} within {timeout} s")


class AzuriteProcess:
    """A running Azurite blob service started by us."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port

    @property
    def connection_string(self) -> str:
        """Its connection string."""
        return connection_string(self.port)

    def stop(self, wait: bool = True) -> None:
        """Ask it to shut down (SIGTERM); with ``wait``, wait for it (kill after 10 s).

        Azurite shuts down gracefully (it flushes its metadata) once its clients' keep-alive connections
        close. A host that holds such connections itself passes ``wait=False`` and exits: its sockets close
        with it and Azurite finishes on its own.
        """
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        if not wait:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(port: int, location: Path, app_dir: Path | None = None, timeout: float = 30.0) -> AzuriteProcess:
    """Start Azurite blob on ``127.0.0.1:port`` with data under ``location`` and wait for it."""
    location.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(find_binary(app_dir)),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(port, timeout, proc)
    except BaseException:
        proc.kill()
        raise
    return AzuriteProcess(proc, port)


def ensure(port: int, location: Path, app_dir: Path | None = None) -> AzuriteProcess | None:
    """Start Azurite unless something already listens on ``port`` (then return None)."""
    if is_listening(port):
        return None
    return start(port, location, app_dir)
