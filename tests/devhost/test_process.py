"""The one devhost launcher (``devhost.process.DevhostProcess``): it stops the devhost by process group, so
processes the app started die with it, and it stops an Azurite a killed devhost left running, by the record
in the state folder, never by searching process names."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from devhost import azurite
from devhost.process import DevhostExited, DevhostProcess, free_port
from tests.devhost.harness import APPS
from tests.support.waiting import eventually

pytestmark = [pytest.mark.devhost]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat[stat.rindex(")") + 2 :].startswith("Z")


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    host = DevhostProcess(
        APPS / "child_app", tmp_path / "state", storage="none", env={"DEVHOST_TEST_CHILD_PID": str(pid_file)}
    ).start(timeout=60)
    child = int(pid_file.read_text())
    try:
        assert _alive(child)
        assert os.getpgid(host.pid) == host.pid != os.getpgid(0), "the devhost leads a process group of its own"
    finally:
        host.stop(grace=5)
    assert eventually(lambda: not _alive(child), timeout=10), "a process the app started outlived the devhost"


def test_stop_after_a_kill9_stops_the_orphaned_azurite(tmp_path: Path) -> None:
    state = tmp_path / "state"
    blob_port = free_port()
    env = {"AZURITE_BLOB_PORT": str(blob_port), "DEVHOST_TEST_COUNTER_DB": str(tmp_path / "c.sqlite3")}
    host = DevhostProcess(APPS / "durable_app", state, env=env, storage="azurite").start(timeout=120)
    record = azurite.read_pid_file(state / azurite.PID_FILE)
    assert record is not None
    host.kill9()
    assert record.is_alive() and azurite.is_listening(blob_port), "a kill -9 leaves the devhost's Azurite running"
    host.stop()
    assert eventually(lambda: not record.is_alive(), timeout=10), "stop() leaves the orphaned Azurite running"
    assert not (state / azurite.PID_FILE).exists()


def test_a_devhost_that_exits_at_start_up_raises_with_its_log(tmp_path: Path) -> None:
    host = DevhostProcess(tmp_path / "no-such-app", tmp_path / "state", storage="none")
    with pytest.raises(DevhostExited) as failed:
        host.start(timeout=60)
    assert "exited with code" in str(failed.value) and host.returncode() not in (0, None)


def test_a_picked_port_taken_before_the_devhost_binds_it_is_replaced(tmp_path: Path) -> None:
    env = {"DEVHOST_TEST_CHILD_PID": str(tmp_path / "child.pid")}
    host = DevhostProcess(APPS / "child_app", tmp_path / "state", storage="none", env=env)
    taken = host.port
    with socket.socket() as squatter:  # another process got there first
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        host.start(timeout=60)
        try:
            assert host.port != taken and host.ready()
            assert "address already in use" in host.log.read_text()
        finally:
            host.stop(grace=5)
