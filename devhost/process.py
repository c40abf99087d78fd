"""One launcher for a devhost subprocess, shared by ``make run`` (``imagepipe.localstack``), the benchmarks and
the tests.

``DevhostProcess(app, state, ...)`` runs ``python -m devhost start`` in a process group of its own (its output
appended to an owner-only log file beside the state folder), waits until ``/admin/host/status`` says Running,
and stops it by process group: SIGTERM, then SIGKILL after a grace period. On SIGTERM the devhost stops the
Azurite it started; Azurite runs in a process group of its own, recorded in ``STATE/azurite.pid.json`` (see
``devhost.azurite``), so ``stop()`` then finishes off an Azurite whose devhost is gone (one left running by
``kill9()``, the crash a test simulates, or one still shutting down), after checking it is the recorded
process. Nothing is found by name: no ``pkill``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from devhost import azurite
from devhost.waiting import eventually

REPO_ROOT = Path(__file__).resolve().parent.parent


class DevhostExited(RuntimeError):
    """The devhost process ended while we waited for it to start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) owner-only (0700): state folders hold keys, task hub inputs and blobs."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def open_private_log(path: Path) -> BinaryIO:
    """Open a log for appending, readable by its owner only (0600, also when it already existed).

    The devhost never prints keys into a redirected log; this keeps whatever it does log private too.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


class DevhostProcess:
    """One ``python -m devhost start`` subprocess in its own process group."""

    def __init__(
        self,
        app: Path,
        state: Path,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        storage: str = "azurite",
        no_auth: bool = True,
        log: Path | None = None,
        bind: str | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.port = port or free_port()
        self._port_is_ours = port is None  # picked here, so another one may be picked if it is taken meanwhile
        self.env = dict(os.environ) | dict(env or {})
        self.storage = storage
        self.no_auth = no_auth
        self.bind = bind
        self.log = log or state.with_name(f"{state.name}.log")
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The command line it runs."""
        cmd = [sys.executable, "-m", "devhost", "start", "--app", str(self.app), "--port", str(self.port)]
        cmd += ["--state", str(self.state), "--storage", self.storage]
        if self.bind is not None:
            cmd += ["--host", self.bind]
        if self.no_auth:
            cmd.append("--no-auth")
        return cmd

    @property
    def pid(self) -> int:
        """The devhost's pid (also its process group id)."""
        if self.proc is None:
            raise RuntimeError("the devhost was not started")
        return self.proc.pid

    # ------------------------------------------------------------------ start

    def start(self, timeout: float = 120) -> Self:
        """Start it and wait until it reports Running; on failure stop it and raise with the log's tail.

        A port picked here can be taken by another process before the devhost binds it: then, on the first
        start only (a restart keeps the address its clients know), it starts again on another free port.
        """
        attempts = 3 if self._port_is_ours and self.proc is None else 1
        for attempt in range(1, attempts + 1):
            log_offset = self.log.stat().st_size if self.log.exists() else 0
            try:
                return self._start_once(timeout)
            except DevhostExited:
                if attempt == attempts or "address already in use" not in self._log_since(log_offset):
                    raise
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> Self:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open_private_log(self.log) as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=str(REPO_ROOT),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            ready = eventually(self.ready, timeout, interval=0.1)
        except BaseException:
            self.stop()
            raise
        if not ready:
            self.stop()
            raise TimeoutError(f"the devhost did not report Running within {timeout:.0f} s:\n{self.log_tail()}")
        return self

    def _log_since(self, offset: int) -> str:
        try:
            with self.log.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def ready(self) -> bool:
        """Whether ``/admin/host/status`` says Running; raises ``DevhostExited`` once the process has ended."""
        if self.exited():
            raise DevhostExited(f"the devhost exited with code {self.returncode()}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(self.base + "/admin/host/status", timeout=2) as response:
                return bool(json.loads(response.read()).get("state") == "Running")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    # ------------------------------------------------------------------ state

    def exited(self) -> bool:
        """Whether the devhost process has ended (it is not reaped here, so its group id stays ours)."""
        return self.returncode() is not None

    def returncode(self) -> int | None:
        """Its exit status once it has ended (negative: the signal that ended it), without reaping it."""
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.proc.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def wait(self) -> int:
        """Wait until it exits by itself (``make run`` in the foreground); its exit status."""
        if self.proc is None:
            raise RuntimeError("the devhost was not started")
        return self.proc.wait()

    # ------------------------------------------------------------------ stop

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM its process group, SIGKILL it after ``grace`` seconds; then stop an Azurite whose devhost is gone."""
        if self.proc is not None:
            if not self.exited():
                self._signal_group(signal.SIGTERM)
                eventually(self.exited, grace, interval=0.05)
            self._signal_group(signal.SIGKILL)  # whatever is left in the group, before the leader is reaped
            self.proc.wait()
        self._stop_orphaned_azurite(grace)

    def kill9(self) -> None:
        """SIGKILL its process group, as a crash would: the Azurite it started keeps running (see ``stop``)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            return  # reaped: the group id may belong to someone else now
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _stop_orphaned_azurite(self, timeout: float) -> None:
        pid_file = self.state / azurite.PID_FILE
        record = azurite.read_pid_file(pid_file)
        if record is None or not record.is_alive() or record.owner_alive():
            return
        azurite.stop_group(record.pgid, record.pid, record.started, timeout)
        pid_file.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
