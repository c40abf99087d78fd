"""Durable conformance: the SDK's own client against a devhost subprocess (no storage, no auth)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.devhost.harness import Devhost, Loop, wait_status

pytestmark = [pytest.mark.devhost]


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def executions(db: Path, key: str) -> int:
    with sqlite3.connect(str(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs WHERE key=?", (key,)).fetchone()[0])


def test_http_starter_and_chaining(durable_host: Devhost, loop: Loop, client: Any) -> None:
    r = requests.post(durable_host.base + "/api/orchestrators/chain", timeout=30)
    assert r.status_code == 202
    payload = r.json()
    assert payload["statusQueryGetUri"].startswith(durable_host.base + "/runtime/webhooks/durabletask/instances/")
    assert r.headers["Location"] == payload["statusQueryGetUri"]
    status = wait_status(loop, client, payload["id"])
    assert status.runtime_status.value == "Completed"
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    polled = requests.get(payload["statusQueryGetUri"], timeout=10)
    assert polled.status_code == 200 and polled.json()["output"][0] == "Hello Tokyo!"


def test_fan_out_fan_in_100(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("fan_out", None, {"n": 100}))
    status = wait_status(loop, client, iid, timeout=120)
    assert status.runtime_status.value == "Completed"
    assert status.output == sum(i * i for i in range(100))


def test_retry_succeeds_on_third_attempt(loop: Loop, client: Any, counter_db: Path) -> None:
    key = _uid("r3")
    iid = loop.run(client.start_new("with_retry", None, {"key": key, "succeed_on": 3, "max": 5}))
    status = wait_status(loop, client, iid, show_history=True)
    assert status.runtime_status.value == "Completed", status.output
    assert status.output == "ok after 3"
    assert executions(counter_db, f"flaky:{key}") == 3
    kinds = [e["EventType"] for e in status.historyEvents]
    assert kinds.count("TaskFailed") == 2 and kinds.count("TimerFired") == 2


def test_retry_exhausted_fails_with_activity_message(loop: Loop, client: Any, counter_db: Path) -> None:
    key = _uid("rx")
    iid = loop.run(client.start_new("with_retry", None, {"key": key, "succeed_on": 99, "max": 2}))
    status = wait_status(loop, client, iid)
    assert status.runtime_status.value == "Failed"
    assert "Orchestrator function 'with_retry' failed" in status.output
    assert "flaky attempt 2 failed" in status.output
    assert executions(counter_db, f"flaky:{key}") == 2


def test_retry_backoff_coefficient_grows_the_delay(loop: Loop, client: Any, counter_db: Path) -> None:
    key = _uid("rb")
    iid = loop.run(client.start_new("with_backoff", None, {"key": key, "succeed_on": 3, "max": 3}))
    status = wait_status(loop, client, iid, show_history=True)
    assert status.runtime_status.value == "Completed", status.output
    timers = [e for e in status.historyEvents if e["EventType"] == "TimerCreated"]
    delays = [(parse_iso(t["FireAt"]) - parse_iso(t["Timestamp"])).total_seconds() for t in timers]
    assert delays == pytest.approx([0.2, 0.6], abs=0.05)


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_timer(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("with_timer"))
    status = wait_status(loop, client, iid)
    assert status.runtime_status.value == "Completed" and status.output is True


def test_external_event_and_timeout(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("approval", None, {"timeout": 60}))
    wait_status(loop, client, iid, statuses=("Running",))
    loop.run(client.raise_event(iid, "Approval", {"ok": True}))
    status = wait_status(loop, client, iid)
    # The Python client double-encodes the event data; the orchestrator receives a JSON string (SDK #295).
    assert status.output == {"approved": '{"ok": true}'}
    iid2 = loop.run(client.start_new("approval", None, {"timeout": 1}))
    status2 = wait_status(loop, client, iid2)
    assert status2.output == {"approved": None, "timedOut": True}


def test_raw_json_event_over_public_api(durable_host: Devhost, loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("waiter"))
    wait_status(loop, client, iid, statuses=("Running",))
    url = f"{durable_host.base}/runtime/webhooks/durabletask/instances/{iid}/raiseEvent/Go"
    assert requests.post(url, json={"raw": 1}, timeout=10).status_code == 202
    assert wait_status(loop, client, iid).output == {"raw": 1}
    assert requests.post(url, json={"raw": 2}, timeout=10).status_code == 410


def test_sub_orchestrations(loop: Loop, client: Any) -> None:
    iid = _uid("parent")
    loop.run(client.start_new("parent", iid))
    status = wait_status(loop, client, iid)
    assert status.output == {"chain": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"], "fan": 5}
    child = loop.run(client.get_status(iid + "-child"))
    assert child.runtime_status.value == "Completed"


def test_continue_as_new_and_custom_status(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("counter", None, 0))
    status = wait_status(loop, client, iid)
    assert status.runtime_status.value == "Completed"
    assert status.output == 3
    assert status.custom_status == {"n": 3}


def test_orchestrator_failure(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("failing"))
    status = wait_status(loop, client, iid)
    assert status.runtime_status.value == "Failed"
    assert status.output == "Orchestrator function 'failing' failed: orchestrator blew up"
    assert status.custom_status == "about to fail"


def test_unknown_orchestrator_is_rejected(loop: Loop, client: Any) -> None:
    with pytest.raises(Exception, match="doesn't exist"):
        loop.run(client.start_new("no_such_orchestrator"))


def test_terminate_and_purge(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("waiter"))
    wait_status(loop, client, iid, statuses=("Running",))
    loop.run(client.terminate(iid, "enough"))
    status = wait_status(loop, client, iid)
    assert status.runtime_status.value == "Terminated" and status.output == "enough"
    result = loop.run(client.purge_instance_history(iid))
    assert result.instances_deleted == 1
    assert not loop.run(client.get_status(iid))


def test_rewind_failed_run(loop: Loop, client: Any, counter_db: Path, tmp_path: Path) -> None:
    key = _uid("rw")
    flag = tmp_path / "flag"
    iid = loop.run(client.start_new("rewindable", None, {"key": key, "file": str(flag)}))
    assert wait_status(loop, client, iid).runtime_status.value == "Failed"
    flag.write_text("x")
    loop.run(client.rewind(iid, "fixed"))
    status = wait_status(loop, client, iid)
    assert status.runtime_status.value == "Completed", status.output
    assert status.output == [f"done {key}", "file found"]
    assert executions(counter_db, f"counted:{key}") == 1  # the successful activity was not re-run


def test_suspend_resume_restart(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("waiter"))
    wait_status(loop, client, iid, statuses=("Running",))
    loop.run(client.suspend(iid, "pause"))
    assert loop.run(client.get_status(iid)).runtime_status.value == "Suspended"
    loop.run(client.raise_event(iid, "Go", 1))  # kept, not delivered, while suspended (test_taskhub proves it)
    assert loop.run(client.get_status(iid)).runtime_status.value == "Suspended"
    loop.run(client.resume(iid, "go on"))
    assert wait_status(loop, client, iid).output == "1"
    restarted = loop.run(client.restart(iid))
    new_id = restarted["id"] if isinstance(restarted, dict) else restarted
    assert new_id != iid
    assert loop.run(client.get_status(new_id)).runtime_status.value in ("Pending", "Running")
    loop.run(client.terminate(new_id, "done"))


def test_list_filters_and_paging(durable_host: Devhost, loop: Loop, client: Any) -> None:
    prefix = _uid("lst")
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [loop.run(client.start_new("chain", f"{prefix}-{i}")) for i in range(5)]
    for iid in ids:
        wait_status(loop, client, iid)
    waiting = loop.run(client.start_new("waiter", f"{prefix}-w"))
    wait_status(loop, client, waiting, statuses=("Running",))
    from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus as S

    got = loop.run(client.get_status_by(created_time_from=before, runtime_status=[S.Running]))
    assert waiting in {s.instance_id for s in got}
    assert not set(ids) & {s.instance_id for s in got}
    base = f"{durable_host.base}/runtime/webhooks/durabletask/instances"
    r = requests.get(base, params={"instanceIdPrefix": prefix, "runtimeStatus": "Completed"}, timeout=10)
    assert sorted(s["instanceId"] for s in r.json()) == sorted(ids)
    seen: list[str] = []
    token = None
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        page = requests.get(base, params={"instanceIdPrefix": prefix, "top": 2}, headers=headers, timeout=10)
        assert len(page.json()) <= 2
        seen += [s["instanceId"] for s in page.json()]
        token = page.headers.get("x-ms-continuation-token")
        if not token:
            break
    assert sorted(seen) == sorted(ids + [waiting])
    future = datetime.now(UTC) + timedelta(days=1)
    assert loop.run(client.get_status_by(created_time_from=future)) == []
    loop.run(client.terminate(waiting, "cleanup"))
    purged = loop.run(client.purge_instance_history_by(created_time_from=before, runtime_status=[S.Completed]))
    assert purged.instances_deleted >= 5
    assert not loop.run(client.get_status(ids[0]))


def test_history_rendering(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("chain"))
    wait_status(loop, client, iid)
    status = loop.run(client.get_status(iid, show_history=True, show_history_output=True))
    events = status.historyEvents
    assert events[0]["EventType"] == "ExecutionStarted" and events[0]["FunctionName"] == "chain"
    done = [e for e in events if e["EventType"] == "TaskCompleted"]
    assert [e["FunctionName"] for e in done] == ["say_hello"] * 3
    assert done[0]["Result"] == "Hello Tokyo!"
    assert events[-1]["EventType"] == "ExecutionCompleted" and events[-1]["OrchestrationStatus"] == "Completed"


def test_activity_timeout(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("timeout_orch"))
    status = wait_status(loop, client, iid, timeout=60)
    assert status.runtime_status.value == "Failed"
    assert "Timeout value of" in status.output


def test_sub_orchestration_retry_failure_and_unknown_activity(loop: Loop, client: Any) -> None:
    iid = loop.run(client.start_new("parent_catches"))
    status = wait_status(loop, client, iid, show_history=True)
    assert status.runtime_status.value == "Completed", status.output
    assert "Orchestrator function 'failing' failed: orchestrator blew up" in status.output["sub"]
    assert "doesn't exist" in status.output["activity"]
    kinds = [e["EventType"] for e in status.historyEvents]
    assert kinds.count("SubOrchestrationInstanceFailed") == 2  # two attempts


def test_start_and_wait_over_public_api(durable_host: Devhost) -> None:
    r = requests.post(
        durable_host.base + "/runtime/webhooks/durabletask/orchestrators/chain",
        params={"timeout": 30, "pollingInterval": 0.1},
        timeout=60,
    )
    assert r.status_code == 200
    assert r.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_entity_endpoints_of_an_app_without_entities(durable_host: Devhost) -> None:
    url = durable_host.base + "/runtime/webhooks/durabletask/entities/counter/a"
    r = requests.get(url, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = requests.post(url, params={"op": "add"}, timeout=10)
    assert r.status_code == 400 and "is not an entity function" in r.json()["Message"]


def test_client_binding_shape(durable_host: Devhost) -> None:
    import json

    binding = json.loads(durable_host.binding())
    assert set(binding) == {
        "taskHubName",
        "connectionName",
        "creationUrls",
        "managementUrls",
        "baseUrl",
        "requiredQueryStringParameters",
        "rpcBaseUrl",
    }
    assert binding["taskHubName"] == "devhosttest"
    assert binding["rpcBaseUrl"].startswith(durable_host.base + "/durabletask/")
    assert binding["rpcBaseUrl"].endswith("/")
    assert binding["baseUrl"] == durable_host.base + "/runtime/webhooks/durabletask"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert set(binding["managementUrls"]) == {
        "id",
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "rewindPostUri",
        "purgeHistoryDeleteUri",
        "restartPostUri",
        "suspendPostUri",
        "resumePostUri",
    }
    assert binding["creationUrls"]["createNewInstancePostUri"].endswith("/orchestrators/{functionName}[/{instanceId}]")


def test_activities_run_on_a_bounded_reused_pool(durable_host: Devhost, loop: Loop, client: Any) -> None:
    # a few activities exceed functionTimeout (3 s) and keep their worker busy meanwhile
    stuck = [loop.run(client.start_new("timeout_orch")) for _ in range(3)]
    iid = loop.run(client.start_new("probe_fan", None, {"n": 300}))
    status = wait_status(loop, client, iid, timeout=180)
    assert status.runtime_status.value == "Completed", status.output
    probes = status.output
    assert sorted(p["n"] for p in probes) == list(range(300))
    tids = {p["tid"] for p in probes}
    peak = max(p["threads"] for p in probes)
    print(f"300 activities ran on {len(tids)} threads; peak thread count of the host process {peak}")
    # host.json: maxConcurrentActivityFunctions = 8 -> at most 2 x 8 function threads, ever
    assert len(tids) <= 16
    assert peak <= 64
    for s in stuck:
        assert "Timeout value of" in wait_status(loop, client, s, timeout=60).output
