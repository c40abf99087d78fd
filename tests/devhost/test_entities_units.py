"""Unit tests of the devhost's entity protocol and entity task hub: no processes, no sleeps.

The protocol is checked against the real SDK: batches built here run through ``df.Entity`` handles, and
answers routed here are replayed by the SDK's orchestrator, so the shapes are the ones the SDK reads.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost import entities as ent
from devhost.entities import EntityId, EntityProtocolError, EntityRecord, EntityRequest
from devhost.store import Store
from devhost.taskhub import TaskHub

pytestmark = [pytest.mark.unit]


def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    op = context.operation_name
    if op == "add":
        value += context.get_input()
    elif op == "get":
        context.set_result(value)
    elif op == "fail":
        raise ValueError("counter refuses")
    elif op == "delete":
        context.destruct_on_exit()
        return
    context.set_state(value)


HANDLE = df.Entity.create(counter)


def run_batch(entity: EntityId, record: EntityRecord, requests: list[EntityRequest]) -> ent.BatchResult:
    returned = HANDLE(func.EntityContext(ent.batch_request(entity, record, requests)))
    return ent.parse_batch_response(returned, len(requests))


def call(op: str, value: Any = None, rid: str = "r1") -> EntityRequest:
    """A call as an orchestration's action makes it (the input is JSON text of the SDK's JSON text)."""
    return EntityRequest(rid, op, json.dumps(json.dumps(value)), False, "orch", "exec")


# ---------------------------------------------------------------------------------------------------
# ids
# ---------------------------------------------------------------------------------------------------


def test_entity_ids_follow_the_extension() -> None:
    assert EntityId.parse("@Counter@my@key") == EntityId("counter", "my@key")
    assert EntityId.of("Counter", "k").scheduler_id == "@counter@k"
    assert df.EntityId.get_scheduler_id(df.EntityId("Counter", "k")) == EntityId.of("Counter", "k").scheduler_id
    for bad in ("counter@k", "@counter", "@@k", "@counter@", None, 7):
        with pytest.raises(EntityProtocolError):
            EntityId.parse(bad)
    for name, key in (("a@b", "k"), ("n", "x" * (ent.MAX_KEY + 1)), ("n", "a\x00b"), (" ", "k")):
        with pytest.raises(EntityProtocolError):
            EntityId.of(name, key)


def test_the_python_sdk_has_no_entity_locks() -> None:
    """Critical sections cannot be asked for from Python (docs/devhost.md): if a future SDK adds them, this
    fails and the devhost must learn them."""
    context = df.DurableOrchestrationContext
    assert not any(hasattr(context, name) for name in ("lock", "is_locked", "lock_entities", "critical_section"))
    assert {a.name for a in df.models.actions.ActionType} == {
        "CALL_ACTIVITY",
        "CALL_ACTIVITY_WITH_RETRY",
        "CALL_SUB_ORCHESTRATOR",
        "CALL_SUB_ORCHESTRATOR_WITH_RETRY",
        "CONTINUE_AS_NEW",
        "CREATE_TIMER",
        "WAIT_FOR_EXTERNAL_EVENT",
        "CALL_ENTITY",
        "CALL_HTTP",
        "SIGNAL_ENTITY",
        "WHEN_ANY",
        "WHEN_ALL",
    }


# ---------------------------------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------------------------------


def test_orchestration_actions_become_requests_with_stable_ids() -> None:
    call_json = {"actionType": 7, "instanceId": "@counter@k", "operation": "add", "input": "3"}
    made = ent.request_from_action(call_json, "orch", "e1", 4)
    again = ent.request_from_action(call_json, "orch", "e1", 4)
    assert made == again and made.request.id != ent.request_from_action(call_json, "orch", "e1", 5).request.id
    assert made.target == EntityId("counter", "k")
    assert made.request == EntityRequest(made.request.id, "add", '"3"', False, "orch", "e1")
    sent = made.event_sent_fields()
    assert sent["InstanceId"] == "@counter@k" and json.loads(sent["Input"])["id"] == made.request.id
    signal = ent.request_from_action({**call_json, "actionType": 9}, "orch", "e1", 6).request
    assert signal.is_signal and signal.parent_instance is None
    for bad in (
        {**call_json, "actionType": 0},
        {**call_json, "instanceId": "counter"},
        {**call_json, "operation": 5},
        {**call_json, "input": {"x": 1}},
        "nope",
    ):
        with pytest.raises(EntityProtocolError):
            ent.request_from_action(bad, "orch", "e1", 1)


def test_client_signals_decode_the_body_as_the_extension_does() -> None:
    # The SDK's client posts json.dumps(value) as a JSON string literal.
    sdk_body = json.dumps(json.dumps({"n": 5})).encode()
    assert ent.client_signal("add", sdk_body, "application/json", "id1").input == json.dumps(json.dumps({"n": 5}))
    assert ent.client_signal("add", b"", None, "id2").input is None
    assert ent.client_signal(None, b"", None, "id3").operation == ""
    assert ent.client_signal("add", b"plain", "text/plain", "id4").input == '"plain"'
    with pytest.raises(EntityProtocolError, match="JSON"):
        ent.client_signal("add", b"{nope", "application/json", "id5")
    with pytest.raises(EntityProtocolError, match="UTF-8"):
        ent.client_signal("add", b"\xff\xfe", "text/plain", "id6")


def test_requests_survive_their_queue_form_and_refuse_tampering() -> None:
    req = EntityRequest("r", "add", '"1"', False, "orch", "e")
    assert EntityRequest.from_message(json.loads(json.dumps(req.to_message()))) == req
    bad: Any
    for bad in (
        [],
        {**req.to_message(), "id": ""},
        {**req.to_message(), "signal": "no"},
        {**req.to_message(), "input": 1},
        {**req.to_message(), "parent": None},
    ):
        with pytest.raises(EntityProtocolError):
            EntityRequest.from_message(bad)


# ---------------------------------------------------------------------------------------------------
# batches through the SDK's entity handle
# ---------------------------------------------------------------------------------------------------


def test_a_batch_runs_in_order_through_the_sdk_and_reports_each_operation() -> None:
    entity = EntityId("counter", "k")
    requests = [call("add", 2, "a"), call("add", 3, "b"), call("get", None, "c"), call("fail", None, "d")]
    result = run_batch(entity, EntityRecord(), requests)
    assert result.record == EntityRecord(True, "5")
    assert [o.is_error for o in result.outcomes] == [False, False, False, True]
    assert json.loads(result.outcomes[2].result) == 5
    assert json.loads(result.outcomes[3].result) == "counter refuses"
    # The state is passed back as stored when a batch does not touch it, and a delete removes it.
    assert run_batch(entity, result.record, [call("delete", None, "e")]).record == EntityRecord(False, None)


def test_signals_from_the_sdk_client_reach_the_entity_input() -> None:
    entity = EntityId("counter", "k")
    signal = ent.client_signal("add", json.dumps(json.dumps(7)).encode(), "application/json", "s1")
    assert run_batch(entity, EntityRecord(True, "1"), [signal]).record.state == "8"


def test_batch_responses_are_checked() -> None:
    good = {"entityExists": True, "entityState": "1", "results": [{"isError": False, "result": "null", "duration": 0}]}
    assert ent.parse_batch_response(json.dumps(good), 1).record == EntityRecord(True, "1")
    bad_cases = [
        "not json",
        json.dumps([1]),
        json.dumps({**good, "entityExists": "yes"}),
        json.dumps({**good, "entityState": "{broken"}),
        json.dumps({**good, "entityState": 1}),
        json.dumps({**good, "results": []}),
        json.dumps({**good, "results": [{"isError": 1, "result": "null"}]}),
        json.dumps({**good, "results": [{"isError": False, "result": None}]}),
        json.dumps({**good, "results": [{"isError": False, "result": "null", "duration": "x"}]}),
        json.dumps({**good, "signals": {"x": 1}}),
        json.dumps({**good, "signals": [{"target": {"name": "c"}, "name": "op"}]}),
        json.dumps({**good, "entityState": json.dumps("x" * ent.MAX_PAYLOAD)}),
    ]
    for text in bad_cases:
        with pytest.raises(EntityProtocolError):
            ent.parse_batch_response(text, 1)
    signals = [{"target": {"name": "Other", "key": "k"}, "name": "ping", "input": None}]
    parsed = ent.parse_batch_response(json.dumps({**good, "signals": signals}), 1)
    assert parsed.signals == (ent.OutgoingSignal(EntityId("other", "k"), "ping", None),)


def test_a_failed_batch_keeps_the_state_and_fails_every_call() -> None:
    record = EntityRecord(True, "4")
    failed = ent.failed_batch(record, 2, "entity function 'counter' returned nonsense")
    assert failed.record == record and not failed.signals
    assert [json.loads(o.result) for o in failed.outcomes] == ["entity function 'counter' returned nonsense"] * 2
    timeout = ent.failed_batch(record, 1, "Timeout value of 5s was exceeded by function: Functions.counter", raw=True)
    assert timeout.outcomes[0].result.startswith("Timeout value of")


# ---------------------------------------------------------------------------------------------------
# answers to calls, replayed by the SDK's orchestrator
# ---------------------------------------------------------------------------------------------------


def orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    first = yield context.call_entity(df.EntityId("Counter", "k"), "get")
    context.signal_entity(df.EntityId("Counter", "k"), "add", 1)
    try:
        yield context.call_entity(df.EntityId("Counter", "k"), "fail")
    except Exception as exc:  # noqa: BLE001 - the entity's error arrives as an exception
        return [first, str(exc)]
    return [first, None]


def ts(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}.000000Z"


def replay(history: list[dict[str, Any]]) -> dict[str, Any]:
    handle = df.Orchestrator.create(orchestrator)
    context = {
        "history": history,
        "instanceId": "orch",
        "isReplaying": False,
        "parentInstanceId": None,
        "upperSchemaVersion": 1,
    }
    return dict(json.loads(handle(json.dumps(context))))


def episode_events(etype: int, second: int, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {"EventType": etype, "EventId": event_id, "IsPlayed": False, "Timestamp": ts(second), **fields}


def test_answers_reach_the_calling_orchestration_as_the_sdk_expects() -> None:
    started = [
        episode_events(12, 0),
        episode_events(0, 0, Name="orchestrator", Version=None, Input=None),
    ]
    first = replay(started)
    actions = [a for group in first["actions"] for a in group]
    assert [a["actionType"] for a in actions] == [7]
    made = ent.request_from_action(actions[0], "orch", "e", 0)
    # The host records the call, the entity answers, the answer comes back.
    entity = EntityId("counter", "k")
    result = run_batch(entity, EntityRecord(True, "41"), [made.request])
    effects = ent.batch_effects(entity, [made.request], result, [])
    (answer,) = effects.responses
    assert (answer.instance_id, answer.execution_id, answer.event_name) == ("orch", "e", made.request.id)
    history = [
        *started,
        episode_events(14, 0, 0, **made.event_sent_fields()),
        episode_events(13, 0),
        episode_events(12, 1),
        episode_events(15, 1, Name=answer.event_name, Input=answer.event_input),
    ]
    second = replay(history)
    actions = [a for group in second["actions"] for a in group]
    assert [a["actionType"] for a in actions] == [7, 9, 7]
    signal = ent.request_from_action(actions[1], "orch", "e", 1)
    failing = ent.request_from_action(actions[2], "orch", "e", 2)
    result = run_batch(entity, EntityRecord(True, "41"), [signal.request, failing.request])
    effects = ent.batch_effects(entity, [signal.request, failing.request], result, [])
    assert result.record.state == "42" and len(effects.responses) == 1  # the signal gets no answer
    (answer,) = effects.responses
    history += [
        episode_events(14, 1, 1, **signal.event_sent_fields()),
        episode_events(14, 1, 2, **failing.event_sent_fields()),
        episode_events(13, 1),
        episode_events(12, 2),
        episode_events(15, 2, Name=answer.event_name, Input=answer.event_input),
    ]
    third = replay(history)
    assert third["isDone"] and third["output"] == [41, "counter refuses"]


def test_a_timeout_answer_is_an_error_in_the_orchestration() -> None:
    started = [episode_events(12, 0), episode_events(0, 0, Name="orchestrator", Version=None, Input=None)]
    made = ent.request_from_action(replay(started)["actions"][0][0], "orch", "e", 0)
    failed = ent.failed_batch(
        EntityRecord(), 1, "Timeout value of 1s was exceeded by function: Functions.counter", raw=True
    )
    (answer,) = ent.batch_effects(EntityId("counter", "k"), [made.request], failed, []).responses
    history = [
        *started,
        episode_events(14, 0, 0, **made.event_sent_fields()),
        episode_events(13, 0),
        episode_events(12, 1),
        episode_events(15, 1, Name=answer.event_name, Input=answer.event_input),
    ]
    with pytest.raises(Exception, match="Timeout value of 1s was exceeded"):  # raised in the orchestrator
        replay(history)


# ---------------------------------------------------------------------------------------------------
# the task hub: queue order, one transaction per batch
# ---------------------------------------------------------------------------------------------------


@pytest.fixture()
def hub(tmp_path: Path) -> Generator[TaskHub, None, None]:
    store = Store(tmp_path / "taskhub.sqlite3")
    yield TaskHub(store)
    store.close()


def signal(rid: str, op: str = "add", value: Any = 1) -> EntityRequest:
    return EntityRequest(rid, op, json.dumps(json.dumps(value)), True)


def test_operations_are_taken_per_entity_in_arrival_order(hub: TaskHub) -> None:
    a, b = EntityId("counter", "a"), EntityId("counter", "b")
    for i, target in enumerate([a, b, a, a, b]):
        hub.signal_entity(target, signal(f"r{i}"), now=float(i))
    assert hub.ready_entities(busy=(), limit=10) == [a, b]
    assert hub.ready_entities(busy={a.scheduler_id}, limit=10) == [b]
    batch = hub.entity_batch(a, limit=2)
    assert [r.id for r in batch.requests] == ["r0", "r2"] and batch.record == EntityRecord()
    hub.store.execute(
        "INSERT INTO entity_queue(scheduler_id, request, enqueued_ts) VALUES(?, 'garbage', 0)", (b.scheduler_id,)
    )
    assert [r.id for r in hub.entity_batch(b).requests] == ["r1", "r4"]  # the unreadable row is dropped


def running(hub: TaskHub, instance_id: str, execution_id: str) -> None:
    hub.start(instance_id, "orch", None, 0.0, execution_id, "")
    hub.store.execute("UPDATE instances SET status='Running' WHERE instance_id=?", (instance_id,))


def inbox_names(hub: TaskHub, instance_id: str) -> list[str]:
    rows = hub.store.query("SELECT event FROM inbox WHERE instance_id=? ORDER BY msg_id", (instance_id,))
    return [json.loads(r["event"]).get("Name") for r in rows if json.loads(r["event"])["EventType"] == 15]


def test_a_committed_batch_stores_state_enqueues_signals_and_answers_calls(hub: TaskHub) -> None:
    entity, other = EntityId("counter", "a"), EntityId("other", "x")
    running(hub, "orch", "e")
    hub.signal_entity(entity, signal("s1"), 0)
    hub.signal_entity(entity, EntityRequest("c1", "get", None, False, "orch", "e"), 1)
    hub.signal_entity(entity, EntityRequest("c-old", "get", None, False, "orch", "an-older-execution"), 1)
    hub.signal_entity(entity, signal("s2"), 2)
    batch = hub.entity_batch(entity, limit=3)
    result = ent.BatchResult(
        EntityRecord(True, "1"),
        (ent.OperationOutcome(False, "null"), ent.OperationOutcome(False, "1"), ent.OperationOutcome(False, "1")),
        (ent.OutgoingSignal(other, "ping", None),),
    )
    hub.commit_entity_batch(batch, ent.batch_effects(entity, batch.requests, result, ["n1"]), 3.0)
    assert hub.entity(entity) == EntityRecord(True, "1")
    assert inbox_names(hub, "orch") == ["c1"]  # the answer to another execution is dropped
    (raised,) = [json.loads(r["event"]) for r in hub.store.query("SELECT event FROM inbox") if "c1" in r["event"]]
    assert json.loads(raised["Input"]) == {"result": "1"}
    assert [r.id for r in hub.entity_batch(entity).requests] == ["s2"]
    (queued,) = hub.entity_batch(other).requests
    assert queued.is_signal and queued.parent_instance == "@counter@a"
    page, token = hub.list_entities("Counter", None, 10)
    assert [p.entity for p in page] == [entity] and token is None
    last = hub.entity_batch(entity)
    deleted = ent.BatchResult(EntityRecord(False, None), (ent.OperationOutcome(False, "null"),))
    hub.commit_entity_batch(last, ent.batch_effects(entity, last.requests, deleted, []), 4.0)
    assert hub.entity(entity) == EntityRecord(False, None) and hub.ready_entities((), 10) == [other]


def test_entity_listing_pages(hub: TaskHub) -> None:
    for key in "abcde":
        hub.store.execute(
            "INSERT INTO entities(scheduler_id, name, key, state, last_operation_ts) VALUES(?, 'counter', ?, '0', 0)",
            (f"@counter@{key}", key),
        )
    seen: list[str] = []
    token: str | None = None
    while True:
        page, token = hub.list_entities("counter", token, 2)
        seen += [p.entity.key for p in page]
        if token is None:
            break
    assert seen == list("abcde")
