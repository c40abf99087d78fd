"""The Azurite a devhost starts is tracked in the state folder: a killed devhost's Azurite is adopted (or
stopped) by the next devhost on that state, never left running, and a reused pid is never touched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devhost import azurite
from tests.devhost.harness import APPS, Devhost, free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.devhost, pytest.mark.integration]


def _azurites_for(location: Path) -> list[int]:
    """Pids of live (not zombie) Azurite processes serving ``location``, read from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        zombie = stat[stat.rindex(")") + 2 :].startswith("Z")
        if "azurite" in line and f"--location {location} " in line + " " and not zombie:
            pids.append(int(entry.name))
    return pids


def _eventually_none(location: Path, timeout: float = 20) -> list[int]:
    eventually(lambda: not _azurites_for(location), timeout, interval=0.1)
    return _azurites_for(location)


def _host(state: Path, port: int, blob_port: int) -> Devhost:
    env = {"AZURITE_BLOB_PORT": str(blob_port), "DEVHOST_TEST_COUNTER_DB": str(state.parent / "c.sqlite3")}
    return Devhost(APPS / "durable_app", state, env=env, storage="azurite", port=port)


def test_orphan_of_a_killed_devhost_is_adopted_then_stopped(tmp_path: Path) -> None:
    from azure.storage.blob import BlobServiceClient

    state = tmp_path / "state"
    location = (state / "azurite").resolve()
    blob_port = free_port()
    first = _host(state, free_port(), blob_port).start()
    second: Devhost | None = None
    try:
        (orphan,) = _azurites_for(location)
        svc = BlobServiceClient.from_connection_string(azurite.connection_string(blob_port))
        svc.create_container("keep")
        svc.get_blob_client("keep", "a.txt").upload_blob(b"still here")
        svc.close()
        first.kill9()
        assert _azurites_for(location) == [orphan], "kill -9 of the devhost leaves its Azurite running"
        second = _host(state, first.port, blob_port).start()
        assert _azurites_for(location) == [orphan], "exactly one Azurite for the location: the adopted one"
        svc = BlobServiceClient.from_connection_string(azurite.connection_string(blob_port))
        assert svc.get_blob_client("keep", "a.txt").download_blob().readall() == b"still here"
        svc.close()
    finally:
        if second is not None:
            second.stop()
        first.stop()
    assert _eventually_none(location) == [], "the devhost that adopted Azurite stops it"
    assert not azurite.is_listening(blob_port)


def test_orphan_on_another_port_is_stopped_and_replaced(tmp_path: Path) -> None:
    state = tmp_path / "state"
    location = (state / "azurite").resolve()
    first = _host(state, free_port(), free_port()).start()
    second: Devhost | None = None
    try:
        record = json.loads((state / azurite.PID_FILE).read_text())
        assert record["pid"] == _azurites_for(location)[0] and record["location"] == str(location)
        assert (state / azurite.PID_FILE).stat().st_mode & 0o777 == 0o600
        orphan = record["pid"]
        first.kill9()
        new_port = free_port()
        second = _host(state, first.port, new_port).start()
        running = _azurites_for(location)
        assert len(running) == 1 and running[0] != orphan
        assert json.loads((state / azurite.PID_FILE).read_text())["port"] == new_port
    finally:
        if second is not None:
            second.stop()
        first.stop()
    assert _eventually_none(location) == []


def test_a_reused_pid_is_never_touched(tmp_path: Path) -> None:
    """A pid file whose pid now names another process (here: this test) is discarded, nothing is signalled."""
    pid_file = tmp_path / azurite.PID_FILE
    me = os.getpid()
    rec = azurite.PidRecord(
        pid=me,
        pgid=os.getpgid(me),
        port=free_port(),
        location=str(tmp_path / "azurite"),
        started="1",  # not this process's start time
        cmdline="node azurite-blob",
        owner_pid=999_999,
        owner_started="1",
    )
    azurite.write_pid_file(pid_file, rec)
    assert azurite._adopt_or_stop_orphan(pid_file, rec.port, Path(rec.location)) is None
    assert not pid_file.exists()
    rec.started = azurite.start_time(me)  # right start time, but the command line is not Azurite's location
    azurite.write_pid_file(pid_file, rec)
    assert azurite._adopt_or_stop_orphan(pid_file, rec.port, Path(rec.location)) is None
    assert not pid_file.exists()
