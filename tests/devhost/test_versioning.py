"""Orchestration versioning (host.json defaultVersion / versionMatchStrategy / versionFailureStrategy, the
client's and sub-orchestrations' ``version``, ``context.version``), played as the official sample's scenario:
an instance started under 1.0 stays on its legacy path after the app moves to 2.0; new instances take the new
path; instances this host must not run wait (Reject) or fail (Fail)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.versioning import Versioning, compare_versions
from tests.devhost.harness import APPS, Devhost, Loop, wait_status
from tests.support.waiting import eventually

pytestmark = [pytest.mark.devhost]


def _set_host_json(app: Path, **durable: str) -> None:
    data = json.loads((app / "host.json").read_text())
    data["extensions"]["durableTask"] = {"hubName": "versioningtest", **durable}
    (app / "host.json").write_text(json.dumps(data))


def _status(host: Devhost, iid: str) -> dict[str, Any]:
    r = requests.get(f"{host.base}/runtime/webhooks/durabletask/instances/{iid}", timeout=10)
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "app"
    shutil.copytree(APPS / "versioning_app", copy)
    yield copy


@pytest.mark.unit
def test_version_comparison_follows_the_extensions_rules() -> None:
    assert compare_versions("", None) == 0 and compare_versions("", "1.0") == -1 and compare_versions("1", "") == 1
    assert compare_versions("1.10", "1.9") == 1 and compare_versions("2.0", "2.0.0") == -1
    assert compare_versions("V1-beta", "v1-BETA") == 0 and compare_versions("2025-01-01", "2024-12-31") == 1
    assert Versioning("2.0").mismatch("1.0") is None and Versioning("2.0").mismatch("3.0") is not None
    assert Versioning("2.0", "Strict").mismatch("1.0") is not None
    assert Versioning("2.0", "None").mismatch("9.0") is None and Versioning("").mismatch("9.0") is None


def test_in_flight_instance_keeps_its_version_across_an_upgrade(app: Path, tmp_path: Path, loop: Loop) -> None:
    import azure.durable_functions as df

    state = tmp_path / "state"
    host = Devhost(app, state).start()
    try:
        client = df.DurableOrchestrationClient(host.binding())
        old = loop.run(client.start_new("versioned", None, "wait"))
        pinned = loop.run(client.start_new("versioned", None, None, version="0.9"))
        assert eventually(lambda: _status(host, old)["runtimeStatus"] == "Running", 30)
        assert _status(host, old)["version"] == "1.0"
        done = wait_status(loop, client, pinned)
        assert done.output == {"version": "0.9", "steps": ["new", "extra"]}
        family = wait_status(loop, client, loop.run(client.start_new("parent")))
        assert family.output == {"own": "1.0", "pinned": "0.5", "default": "1.0"}
    finally:
        host.stop()
    _set_host_json(app, defaultVersion="2.0")
    host = Devhost(app, state).start()
    try:
        client = df.DurableOrchestrationClient(host.binding())
        loop.run(client.raise_event(old, "Go", None))
        assert wait_status(loop, client, old).output == {"version": "1.0", "steps": ["legacy"]}
        new = wait_status(loop, client, loop.run(client.start_new("versioned")))
        assert new.output == {"version": "2.0", "steps": ["new", "extra"]}
        assert _status(host, new.instance_id)["version"] == "2.0"
        # CurrentOrOlder + Reject: an instance newer than this host waits, untouched
        newer = loop.run(client.start_new("versioned", None, None, version="3.0"))
        assert eventually(lambda: f"instance '{newer}' waits" in host.log.read_text(), 30)
        assert _status(host, newer)["runtimeStatus"] == "Pending"
    finally:
        host.stop()
    _set_host_json(app, defaultVersion="2.0", versionMatchStrategy="Strict", versionFailureStrategy="Fail")
    host = Devhost(app, state).start()
    try:
        client = df.DurableOrchestrationClient(host.binding())
        failed = wait_status(loop, client, newer)
        assert failed.runtime_status.value == "Failed"
        assert "does not match this host's version '2.0' (versionMatchStrategy Strict)" in failed.output
        older = wait_status(loop, client, loop.run(client.start_new("versioned", None, None, version="1.0")))
        assert older.runtime_status.value == "Failed"
    finally:
        host.stop()


def test_invalid_strategy_is_one_line(app: Path, tmp_path: Path) -> None:
    _set_host_json(app, versionMatchStrategy="Newest")
    host = Devhost(app, tmp_path / "state")
    with pytest.raises(RuntimeError, match="devhost exited with code 2"):
        host.start(timeout=60)
    log = host.log.read_text()
    assert "Traceback" not in log and "versionMatchStrategy 'Newest' is not one of None, Strict, CurrentOrOlder" in log
