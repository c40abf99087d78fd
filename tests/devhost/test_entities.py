"""Durable entities on the devhost: the SDK's orchestrations and client against tests/devhost/apps/entity_app."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.devhost.harness import APPS, Devhost, Loop, wait_status
from tests.support.waiting import eventually

pytestmark = [pytest.mark.devhost]

CRASH_OPS = 120


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    state = tmp_path_factory.mktemp("entities") / "state"
    devhost = Devhost(APPS / "entity_app", state).start()
    yield devhost
    devhost.stop()


@pytest.fixture(scope="module")
def client(host: Devhost, loop: Loop) -> Any:
    import azure.durable_functions as df

    return df.DurableOrchestrationClient(host.binding())


def key() -> str:
    return uuid.uuid4().hex[:10]


def run(loop: Loop, client: Any, name: str, given: Any, timeout: float = 60) -> Any:
    iid = loop.run(client.start_new(name, None, given))
    return wait_status(loop, client, iid, timeout=timeout, show_history=True)


def entity_url(host: Devhost, path: str) -> str:
    return f"{host.base}/runtime/webhooks/durabletask/entities/{path}"


def test_an_orchestration_calls_and_signals_a_function_based_entity(loop: Loop, client: Any) -> None:
    status = run(loop, client, "call_and_signal", {"key": key()})
    assert status.runtime_status.value == "Completed", status.output
    assert status.output["first"] == 5  # the signal sent before the call ran before it
    assert status.output["second"] == 15
    assert "Counter has no operation 'explode'" in status.output["error"]
    kinds = [e["EventType"] for e in status.historyEvents]
    assert kinds.count("EventSent") == 6 and kinds.count("EventRaised") == 5


def test_a_class_based_entity_keeps_its_object_and_reports_its_errors(loop: Loop, client: Any) -> None:
    status = run(loop, client, "bank", {"key": key()})
    assert status.runtime_status.value == "Completed", status.output
    assert status.output["left"] == 70
    assert "insufficient funds: balance 70, asked 1000" in status.output["refused"]
    assert status.output["final"] == {"balance": 70, "history": [100, -30]}


def test_the_client_signals_and_reads_state_through_http(host: Devhost) -> None:
    k = key()
    assert requests.get(f"{host.base}/api/counters/{k}", timeout=10).json() == {"exists": False, "state": None}
    for _ in range(3):
        assert requests.post(f"{host.base}/api/counters/{k}/add", json=3, timeout=10).status_code == 202
    assert eventually(
        lambda: requests.get(f"{host.base}/api/counters/{k}", timeout=10).json()["state"] == 9, timeout=30
    )
    assert requests.get(f"{host.base}/api/counters/{k}", timeout=10).json() == {"exists": True, "state": 9}


def test_operations_on_one_entity_run_one_at_a_time(loop: Loop, client: Any, host: Devhost) -> None:
    k = key()
    ids = [loop.run(client.start_new("increment", None, {"key": k})) for _ in range(20)]
    for iid in ids:
        assert wait_status(loop, client, iid, timeout=90).runtime_status.value == "Completed"
    # Every read-modify-write ran alone on the state: no update was lost.
    assert requests.get(entity_url(host, f"counter/{k}"), timeout=10).json() == 20


def test_sequential_calls_each_see_the_previous_one(loop: Loop, client: Any) -> None:
    status = run(loop, client, "call_many", {"key": key(), "n": 25})
    assert status.runtime_status.value == "Completed" and status.output == 25


def test_calls_to_several_entities_fan_out_and_in(loop: Loop, client: Any) -> None:
    keys = [key() + suffix for suffix in ("a", "bb", "ccc")]
    status = run(loop, client, "parallel_calls", {"keys": keys})
    assert status.runtime_status.value == "Completed", status.output
    assert status.output == [len(k) for k in keys]


def test_a_failing_entity_function_answers_every_call_with_the_error(loop: Loop, client: Any) -> None:
    status = run(loop, client, "call_broken", {})
    assert status.runtime_status.value == "Completed", status.output
    assert "Entity function 'broken' failed: TypeError" in status.output


def test_an_entity_function_past_function_timeout_fails_the_call(loop: Loop, client: Any) -> None:
    status = run(loop, client, "call_hanging", {"key": key()})
    assert status.runtime_status.value == "Completed", status.output
    assert status.output.startswith("Timeout value of 3.0s was exceeded by function: Functions.counter")


def test_calling_an_entity_the_app_does_not_have_fails_the_orchestration(loop: Loop, client: Any) -> None:
    status = run(loop, client, "call_missing", {})
    assert status.runtime_status.value == "Failed"
    assert "The function 'nosuchentity' doesn't exist, is disabled, or is not an entity function." in status.output


def test_the_entities_management_api(host: Devhost) -> None:
    k = key()
    url = entity_url(host, f"Counter/{k}")
    assert requests.get(url, timeout=10).status_code == 404
    # The SDK's client posts the input as a JSON string of JSON text; a plain JSON body would reach the
    # Python entity undecodable, as on Azure.
    posted = requests.post(
        url,
        params={"op": "add"},
        data=json.dumps(json.dumps(4)),
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert posted.status_code == 202
    assert eventually(lambda: requests.get(url, timeout=10).status_code == 200, timeout=30)
    assert requests.get(url, timeout=10).json() == 4
    listed = requests.get(entity_url(host, "counter"), params={"fetchState": "true", "top": "1000"}, timeout=10)
    assert listed.status_code == 200
    (mine,) = [e for e in listed.json() if e["entityId"] == {"name": "counter", "key": k}]
    assert mine["state"] == 4 and mine["lastOperationTime"].endswith("Z")
    assert requests.delete(url, timeout=10).status_code == 202
    assert eventually(lambda: requests.get(url, timeout=10).status_code == 404, timeout=30)
    bad_json = requests.post(
        url, params={"op": "add"}, data=b"{nope", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]["message"]
    missing = requests.post(entity_url(host, "nosuch/x"), params={"op": "x"}, timeout=10)
    assert missing.status_code == 400 and "is not an entity function" in missing.json()["error"]["message"]
    assert requests.put(url, timeout=10).status_code == 405
    assert requests.get(entity_url(host, "counter"), params={"top": "0"}, timeout=10).status_code == 400


def test_kill9_mid_batch_and_restart_applies_every_operation_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    devhost = Devhost(APPS / "entity_app", state).start()
    url = entity_url(devhost, "counter/crash")
    one = json.dumps(json.dumps(1))
    try:
        for _ in range(CRASH_OPS):  # each takes 50 ms: the batches run for seconds
            r = requests.post(
                url, params={"op": "slow_add"}, data=one, headers={"Content-Type": "application/json"}, timeout=10
            )
            assert r.status_code == 202
        assert eventually(lambda: requests.get(url, timeout=10).status_code == 200, timeout=30)
        devhost.kill9()
        with sqlite3.connect(str(state / "taskhub.sqlite3")) as conn:
            queued = conn.execute("SELECT COUNT(*) FROM entity_queue").fetchone()[0]
        assert queued > 0, "the kill should land while operations are queued"
        devhost = Devhost(APPS / "entity_app", state, port=devhost.port).start()
        # A batch cut short by the kill runs again; its operations were not committed, so none counts twice.
        assert eventually(lambda: requests.get(url, timeout=10).json() == CRASH_OPS, timeout=60)
    finally:
        devhost.stop()
