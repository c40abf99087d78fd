"""Test harness: run devhost as a subprocess on a free port and talk to it with the SDK's client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Devhost:
    """One devhost subprocess."""

    def __init__(
        self,
        app: Path,
        state: Path,
        env: dict[str, str] | None = None,
        no_auth: bool = True,
        storage: str = "none",
        port: int | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.env = dict(os.environ) | (env or {})
        self.no_auth = no_auth
        self.storage = storage
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state.parent / f"{state.name}-devhost.log"

    def start(self, timeout: float = 60) -> Devhost:
        """Start and wait for ``/admin/host/status`` to say Running."""
        cmd = [
            sys.executable,
            "-m",
            "devhost",
            "start",
            "--app",
            str(self.app),
            "--port",
            str(self.port),
            "--state",
            str(self.state),
            "--storage",
            self.storage,
        ]
        if self.no_auth:
            cmd.append("--no-auth")
        logf = open(self.log, "ab")  # closed with the process
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=self.env, stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devhost exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                r = requests.get(self.base + "/admin/host/status", timeout=1)
                if r.ok and r.json().get("state") == "Running":
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("devhost did not start in time:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self) -> None:
        """SIGKILL the host."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def keys(self) -> dict[str, Any]:
        """The persisted keys file."""
        data: dict[str, Any] = json.loads((self.state / "keys.json").read_text())
        return data

    def binding(self) -> str:
        """The durable client binding JSON for this host."""
        headers = {} if self.no_auth else {"x-functions-key": self.keys()["masterKey"]}
        r = requests.get(self.base + "/admin/durabletask/binding", headers=headers, timeout=10)
        r.raise_for_status()
        return r.text


class Loop:
    """One background event loop for the SDK client (its aiohttp session is loop-bound)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run a coroutine on the loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Close the SDK's shared HTTP session, then stop the loop."""
        from azure.durable_functions.models.utils import http_utils

        self.run(http_utils._close_session())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def wait_status(
    loop: Loop,
    client: Any,
    instance_id: str,
    statuses: tuple[str, ...] = ("Completed", "Failed", "Terminated"),
    timeout: float = 60,
    **kw: Any,
) -> Any:
    """Poll ``client.get_status`` until the runtime status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = loop.run(client.get_status(instance_id, **kw))
        if status and status.runtime_status is not None and status.runtime_status.value in statuses:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{instance_id} did not reach {statuses}: last {status and status.to_json()}")
