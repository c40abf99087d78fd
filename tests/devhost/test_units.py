"""Unit tests of devhost pieces that need no process: routes, Event Grid filters and schedule, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost import eventgrid
from devhost.app_loader import parse_timespan, read_host_config
from devhost.protocol import EventType, event, render_history
from devhost.routes import RouteTable

pytestmark = [pytest.mark.unit]


def test_route_templates() -> None:
    t = RouteTable()
    for tpl in ("images/{id}", "images/{id}/status", "runs/replay", "runs/{id}", "files/{*path}", "opt/{a?}"):
        t.add(tpl, tpl)
    assert t.match("images/abc")[0] == (t.match("images/abc")[0][0], {"id": "abc"})
    assert t.match("images/abc/status")[0][0].target == "images/{id}/status"
    assert t.match("runs/replay")[0][0].target == "runs/replay"  # literal wins over {id}
    assert t.match("RUNS/42")[0][1] == {"id": "42"}
    assert t.match("files/a/b/c.txt")[0][1] == {"path": "a/b/c.txt"}
    assert t.match("opt")[0][1] == {} and t.match("opt/x")[0][1] == {"a": "x"}
    assert t.match("images") == []


def test_eventgrid_filters_and_schedule() -> None:
    sub = json.loads((Path(__file__).parent / "apps/eventgrid_app/config/eventgrid-subscriptions.json").read_text())[
        "subscriptions"
    ][0]
    ev = {
        "eventType": "Microsoft.Storage.BlobCreated",
        "subject": "/blobServices/default/containers/uploads/blobs/a",
        "data": {"api": "PutBlob"},
    }
    assert eventgrid.matches(sub, ev)
    assert not eventgrid.matches(sub, ev | {"data": {"api": "PutBlockListX"}})
    assert not eventgrid.matches(sub, ev | {"subject": "/blobServices/default/containers/other/blobs/a"})
    assert not eventgrid.matches(sub, ev | {"eventType": "Microsoft.Storage.BlobDeleted"})
    assert eventgrid.container_of(sub) == "uploads"
    assert [eventgrid.retry_delay(n, 1) for n in (1, 2, 3, 9, 10, 20)] == [10, 30, 60, 6 * 3600, 12 * 3600, 12 * 3600]
    assert eventgrid.retry_delay(1, 0.01) == pytest.approx(0.1)


def test_host_json(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "functionTimeout": "00:05:00",
                "extensions": {
                    "durableTask": {"maxConcurrentActivityFunctions": 3, "maxConcurrentOrchestratorFunctions": 2},
                    "http": {"routePrefix": ""},
                },
            }
        )
    )
    cfg = read_host_config(tmp_path)
    assert (cfg.max_activities, cfg.max_orchestrators, cfg.function_timeout_s, cfg.route_prefix) == (3, 2, 300, "")
    assert parse_timespan("1.02:00:00.5") == 93600.5


def test_history_rendering_folds_scheduled_events() -> None:
    history = [
        event(EventType.ORCHESTRATOR_STARTED, 1.0),
        event(
            EventType.EXECUTION_STARTED,
            1.0,
            Name="o",
            Input='"x"',
            Version="",
            OrchestrationInstance={},
            ParentInstance=None,
            Tags=None,
        ),
        event(EventType.TASK_SCHEDULED, 2.0, 0, Name="act", Input='"in"'),
        event(EventType.ORCHESTRATOR_COMPLETED, 2.0),
        event(EventType.ORCHESTRATOR_STARTED, 3.0),
        event(EventType.TASK_COMPLETED, 3.0, TaskScheduledId=0, Result='"out"'),
        event(EventType.EXECUTION_COMPLETED, 3.0, OrchestrationStatus=1, Result='"out"'),
        event(EventType.ORCHESTRATOR_COMPLETED, 3.0),
    ]
    rendered = render_history(history, show_output=True, show_input=False)
    assert [r["EventType"] for r in rendered] == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    assert rendered[0]["FunctionName"] == "o" and "Input" not in rendered[0]
    assert rendered[1]["FunctionName"] == "act" and rendered[1]["Result"] == "out"
    assert rendered[2]["OrchestrationStatus"] == "Completed"
    assert "Result" not in render_history(history, show_output=False, show_input=True)[1]


def test_eventgrid_delivery_schema_per_subscription_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventgrid.SCHEMA_OVERRIDE_ENV, raising=False)
    assert eventgrid.delivery_schema({"name": "a"}) == "EventGridSchema"
    assert eventgrid.delivery_schema({"eventDeliverySchema": "CloudEventSchemaV1_0"}) == "CloudEventSchemaV1_0"
    with pytest.raises(ValueError, match="CloudEventSchema"):
        eventgrid.delivery_schema({"name": "a", "eventDeliverySchema": "CloudEvents"})
    monkeypatch.setenv(eventgrid.SCHEMA_OVERRIDE_ENV, "CloudEventSchemaV1_0")
    assert eventgrid.delivery_schema({"eventDeliverySchema": "EventGridSchema"}) == "CloudEventSchemaV1_0"
    monkeypatch.setenv(eventgrid.CONVERTER_ENV, "newest")
    with pytest.raises(ValueError, match="library, legacy"):
        eventgrid.converter_mode()


def test_cloud_event_conversion_keeps_every_fact() -> None:
    ev = {
        "topic": eventgrid.TOPIC,
        "subject": "/blobServices/default/containers/images/blobs/a.jpg",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "e1",
        "data": {"api": "PutBlob", "url": "http://x/a.jpg"},
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-01-01T00:00:00.0000000Z",
    }
    ce = eventgrid.to_cloud_event(ev)
    assert ce == {
        "specversion": "1.0",
        "type": ev["eventType"],
        "source": ev["topic"],
        "id": "e1",
        "time": ev["eventTime"],
        "subject": ev["subject"],
        "datacontenttype": "application/json",
        "data": ev["data"],
    }
    decoded = eventgrid.decode_event(ce, "library")
    assert type(decoded).__name__ == "CloudEvent" and decoded.type == ev["eventType"]
    legacy = eventgrid.decode_event(ce, "legacy")
    assert type(legacy).__name__ == "EventGridEvent" and legacy.event_type is None and legacy.subject == ev["subject"]


def test_execution_log_carries_the_calls_cpu_apart_from_its_wall_time(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from devhost.invoke import log_execution

    started, cpu = time.monotonic(), time.thread_time()
    while time.thread_time() - cpu < 0.05:  # 50 ms of CPU on this thread
        pass
    log_execution("busy", "inv-1", started, None, instance_id="i", cpu_started=cpu)
    started, cpu = time.monotonic(), time.thread_time()
    time.sleep(0.1)
    log_execution("asleep", "inv-2", started, None, instance_id="i", cpu_started=cpu)
    log_execution("unmeasured", "inv-3", time.monotonic(), None)
    busy, asleep, unmeasured = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert busy["cpuMs"] >= 50 and busy["durationMs"] >= 50
    assert asleep["durationMs"] >= 100 and asleep["cpuMs"] < 20
    assert "cpuMs" not in unmeasured
