"""Start, wait for and stop Azurite's blob service; build its connection string.

Reusable by tests and tools::

    proc = azurite.start(port, Path(".state/azurite"))   # waits until it listens
    conn = azurite.connection_string(port)
    proc.stop()

The binary is looked up as ``<app dir>/node_modules/.bin/azurite-blob``, then in the repository's
``node_modules``, then on ``PATH``. Azurite runs in its own process group and is stopped by group.

Lifecycle under a devhost (``ensure``): the Azurite a devhost starts is recorded in ``STATE/azurite.pid.json``
(pid, process group, port, location, the process's start time and command line, and the owning devhost).
A devhost killed with SIGKILL leaves that Azurite running; the next devhost on the same state folder finds
it through the file, checks it is the same process (start time + command line, so a reused pid is never
touched) and that its owner is gone, then adopts it when it serves the same port and location (its data
stays where it is, no restart) or stops it otherwise. Either way exactly one Azurite serves that location,
owned by the running devhost, which stops it when it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


PID_FILE = "azurite.pid.json"


# ---------------------------------------------------------------------- process identity


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def cmdline(pid: int) -> str:
    """The process's command line, arguments joined by spaces ('' if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def same_process(pid: int, started: str | None, *needles: str) -> bool:
    """Whether ``pid`` is still the process recorded (same start time, command line naming ``needles``)."""
    if pid <= 0 or started is None or start_time(pid) != started:
        return False
    line = cmdline(pid)
    return all(n in line for n in needles)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, pid: int, started: str | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, wait for its leader to exit, SIGKILL the group after ``timeout``."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start_time(pid) != started or _is_zombie(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _is_zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2 :].startswith("Z")


# ---------------------------------------------------------------------- pid file


@dataclass
class PidRecord:
    """What ``STATE/azurite.pid.json`` says about the Azurite a devhost started."""

    pid: int
    pgid: int
    port: int
    location: str
    started: str | None
    cmdline: str
    owner_pid: int
    owner_started: str | None
    stopping: bool = False

    def is_alive(self) -> bool:
        """The recorded Azurite process still runs (not a reused pid)."""
        return same_process(self.pid, self.started, self.location, str(self.port)) and not _is_zombie(self.pid)

    def owner_alive(self) -> bool:
        """The devhost that owns it still runs."""
        return self.owner_pid != os.getpid() and same_process(self.owner_pid, self.owner_started)


def read_pid_file(path: Path) -> PidRecord | None:
    """The record, or None when absent or unreadable."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_pid_file(path: Path, rec: PidRecord) -> None:
    """Write the record (owner-only) atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(rec.__dict__, fh)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- running Azurite


class AzuriteProcess:
    """A running Azurite blob service that we own (started by us, or adopted from a killed devhost)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes] | None,
        port: int,
        pid: int | None = None,
        started: str | None = None,
        pid_file: Path | None = None,
    ) -> None:
        self.proc = proc
        self.port = port
        self.pid = pid if pid is not None else (proc.pid if proc is not None else -1)
        self.pgid = self.pid  # started with start_new_session: it leads its own group
        self.started = started if started is not None else start_time(self.pid)
        self.pid_file = pid_file

    @property
    def connection_string(self) -> str:
        """Its connection string."""
        return connection_string(self.port)

    def running(self) -> bool:
        """Whether it still runs."""
        if self.proc is not None:
            return self.proc.poll() is None
        return start_time(self.pid) == self.started and not _is_zombie(self.pid)

    def stop(self, wait: bool = True) -> None:
        """Ask its process group to shut down (SIGTERM); with ``wait``, wait for it (SIGKILL after 10 s).

        Azurite shuts down gracefully (it flushes its metadata) once its clients' keep-alive connections
        close. A host that holds such connections itself passes ``wait=False`` and exits: its sockets close
        with it and Azurite finishes on its own. The pid file then says ``stopping``, so the next devhost
        waits for (or finishes) that shutdown instead of adopting a process on its way out.
        """
        if not self.running():
            self._forget()
            return
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            self._forget()
            return
        if not wait:
            self._mark_stopping()
            return
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.1)
        if self.running():
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.proc is not None:
                self.proc.wait()
        self._forget()

    def _mark_stopping(self) -> None:
        if self.pid_file is None:
            return
        rec = read_pid_file(self.pid_file)
        if rec is not None and rec.pid == self.pid:
            rec.stopping = True
            write_pid_file(self.pid_file, rec)

    def _forget(self) -> None:
        if self.pid_file is None:
            return
        rec = read_pid_file(self.pid_file)
        if rec is not None and rec.pid == self.pid:
            self.pid_file.unlink(missing_ok=True)


def start(
    port: int, location: Path, app_dir: Path | None = None, timeout: float = 30.0, pid_file: Path | None = None
) -> AzuriteProcess:
    """Start Azurite blob on ``127.0.0.1:port`` with data under ``location`` (in its own process group) and
    wait for it; with ``pid_file``, record it there."""
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
        "--disableTelemetry",  # Azurite reports every request to Application Insights by default
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait(port, timeout, proc)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    running = AzuriteProcess(proc, port, pid_file=pid_file)
    if pid_file is not None:
        write_pid_file(
            pid_file,
            PidRecord(
                pid=proc.pid,
                pgid=proc.pid,
                port=port,
                location=str(location),
                started=running.started,
                cmdline=cmdline(proc.pid),  # read after it listens: the env/node exec is done
                owner_pid=os.getpid(),
                owner_started=start_time(os.getpid()),
            ),
        )
    return running


def ensure(
    port: int, location: Path, app_dir: Path | None = None, state_dir: Path | None = None
) -> AzuriteProcess | None:
    """Start Azurite unless something already listens on ``port`` (then return None: not ours to stop).

    With ``state_dir``, first deal with an Azurite that an earlier, killed devhost on that state left
    running (see the module docstring): adopt it (same port and location) or stop it.
    """
    pid_file = None if state_dir is None else state_dir / PID_FILE
    if pid_file is not None:
        adopted = _adopt_or_stop_orphan(pid_file, port, location)
        if adopted is not None:
            return adopted
    if is_listening(port):
        return None
    return start(port, location, app_dir, pid_file=pid_file)


def _adopt_or_stop_orphan(pid_file: Path, port: int, location: Path) -> AzuriteProcess | None:
    rec = read_pid_file(pid_file)
    if rec is None:
        pid_file.unlink(missing_ok=True)
        return None
    if not rec.is_alive():
        pid_file.unlink(missing_ok=True)  # it ended, or the pid now belongs to another process
        return None
    if rec.owner_alive():
        return None  # another running devhost owns it; leave it alone
    if not rec.stopping and rec.port == port and rec.location == str(location) and is_listening(port):
        rec.owner_pid = os.getpid()
        rec.owner_started = start_time(os.getpid())
        write_pid_file(pid_file, rec)
        sys.stderr.write(f"devhost: adopted Azurite (pid {rec.pid}, port {port}) left running by an earlier devhost\n")
        return AzuriteProcess(None, port, pid=rec.pid, started=rec.started, pid_file=pid_file)
    sys.stderr.write(f"devhost: stopping Azurite (pid {rec.pid}, port {rec.port}) left by an earlier devhost\n")
    stop_group(rec.pgid, rec.pid, rec.started)
    pid_file.unlink(missing_ok=True)
    return None
