"""Keys stay out of logs; the state folder, keys file and logs are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import requests

from devhost.process import make_private_dir, open_private_log
from tests.devhost.harness import APPS, Devhost

pytestmark = [pytest.mark.devhost]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_never_reach_logs_and_files_are_owner_only(tmp_path: Path, counter_db: Path) -> None:
    env = {"DEVHOST_TEST_COUNTER_DB": str(counter_db)}
    host = Devhost(APPS / "durable_app", tmp_path / "state", env=env, no_auth=False).start()
    try:
        keys = host.keys()
        secrets = [keys["masterKey"], *keys["functionKeys"].values(), *keys["systemKeys"].values()]
        fkey = keys["functionKeys"]["default"]
        # traffic that carries keys: a keyed call, a keyed failing call, the client binding, a keyed starter
        assert requests.get(host.base + "/api/secret", params={"code": fkey}, timeout=10).status_code == 200
        assert requests.get(host.base + "/api/boom", params={"code": fkey}, timeout=10).status_code == 500
        host.binding()
        r = requests.post(host.base + "/api/orchestrators/chain", params={"code": fkey}, timeout=30)
        assert r.status_code == 202
    finally:
        host.stop()
    log = host.log.read_bytes()
    assert b"devhost: Running" in log  # the banner was written to this file
    for secret in secrets:
        assert secret.encode() not in log, "a key was written to the devhost log"
    for path in host.state.rglob("*"):
        if path.is_file() and path.name != "keys.json":
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), f"a key was written to {path}"
    assert _mode(host.state) == 0o700
    assert _mode(host.state / "keys.json") == 0o600
    assert _mode(host.log) == 0o600


def test_loosened_keys_file_and_state_are_tightened_on_start(tmp_path: Path, counter_db: Path) -> None:
    env = {"DEVHOST_TEST_COUNTER_DB": str(counter_db)}
    state = tmp_path / "state"
    host = Devhost(APPS / "durable_app", state, env=env, no_auth=False).start()
    host.stop()
    (state / "keys.json").chmod(0o644)
    state.chmod(0o755)
    host.start()
    host.stop()
    assert _mode(state) == 0o700 and _mode(state / "keys.json") == 0o600


def test_localstack_state_and_log_are_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    make_private_dir(state)
    assert _mode(state) == 0o700
    log = state / "devhost.log"
    log.write_text("earlier run\n")
    log.chmod(0o644)
    with open_private_log(log) as fh:
        fh.write(b"next run\n")
    assert _mode(log) == 0o600
    assert log.read_text() == "earlier run\nnext run\n"
    fresh = state / "new.log"
    open_private_log(fresh).close()
    assert _mode(fresh) == 0o600
