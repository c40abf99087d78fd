"""The decision core, one action type at a time: typed inputs in, a Decision out (no process, no clock, no I/O).

The actions are the SDK's own: each test builds them with the SDK's action classes and ``to_json``, as the
orchestrator's answer carries them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.durable_functions import RetryOptions
from azure.durable_functions.models.actions.CallActivityAction import CallActivityAction
from azure.durable_functions.models.actions.CallActivityWithRetryAction import CallActivityWithRetryAction
from azure.durable_functions.models.actions.CallEntityAction import CallEntityAction
from azure.durable_functions.models.actions.CallSubOrchestratorAction import CallSubOrchestratorAction
from azure.durable_functions.models.actions.CallSubOrchestratorWithRetryAction import (
    CallSubOrchestratorWithRetryAction,
)
from azure.durable_functions.models.actions.ContinueAsNewAction import ContinueAsNewAction
from azure.durable_functions.models.actions.CreateTimerAction import CreateTimerAction
from azure.durable_functions.models.actions.SignalEntityAction import SignalEntityAction
from azure.durable_functions.models.actions.WaitForExternalEventAction import WaitForExternalEventAction
from azure.durable_functions.models.actions.WhenAllAction import WhenAllAction
from azure.durable_functions.models.actions.WhenAnyAction import WhenAnyAction
from azure.durable_functions.models.utils.entity_utils import EntityId as SdkEntityId

from devhost import decisions
from devhost.decisions import InstanceState, OpenTask, OrchestratorResult, RetryPolicy
from devhost.entities import EntityId
from devhost.protocol import ActionType, EventType, event, iso

pytestmark = [pytest.mark.unit]

NOW = 1_800_000_000.0


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def instance(**kw: Any) -> InstanceState:
    base: dict[str, Any] = {"instance_id": "i1", "name": "orch", "execution_id": "e1", "status": "Running"}
    return InstanceState(**(base | kw))


def run(
    actions: list[Any],
    inst: InstanceState | None = None,
    tasks: dict[int, OpenTask] | None = None,
    events: list[dict[str, Any]] | None = None,
    done: bool = False,
    output: Any = None,
    error: str | None = None,
) -> decisions.Decision:
    inst = inst or instance()
    _, opening = decisions.begin(inst, events or [], NOW)
    result = OrchestratorResult(actions=[a.to_json() if hasattr(a, "to_json") else a for a in actions])
    result.done, result.output, result.error = done, output, error
    return decisions.decide(inst, tasks or {}, opening, result, NOW, ids())


def kinds(d: decisions.Decision) -> list[int]:
    return [e["EventType"] for e in d.history]


def test_call_activity_schedules_a_work_item_with_the_next_id() -> None:
    d = run([CallActivityAction("hello", "Tokyo")], instance(next_id=3))
    assert kinds(d) == [EventType.ORCHESTRATOR_STARTED, EventType.TASK_SCHEDULED, EventType.ORCHESTRATOR_COMPLETED]
    assert d.history[1]["EventId"] == 3 and d.history[1]["Name"] == "hello"
    assert [(w.task_id, w.name, w.input) for w in d.work] == [(3, "hello", '"Tokyo"')]
    assert [(t.task_id, t.kind) for t in d.opened] == [(3, "activity")]
    assert (d.next_id, d.known, d.status) == (4, 1, "Running")


def test_known_actions_are_not_scheduled_again() -> None:
    d = run([CallActivityAction("hello", "1")], instance(next_id=1, known=1))
    assert d.work == [] and d.next_id == 1


def test_activity_with_retry_fails_then_retries_after_its_timer() -> None:
    opts = RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)
    first = run([CallActivityWithRetryAction("flaky", opts, "1")])
    (task,) = first.opened
    assert task.retry is not None and task.retry.max_attempts == 3 and first.work[0].task_id == 0
    # the attempt fails: a hidden retry timer (id 1) fires after the interval; the SDK sees no action yet
    failed = event(EventType.TASK_FAILED, NOW, TaskScheduledId=0, Reason="boom", Details="")
    second = run([], instance(next_id=1, known=1), {0: task}, [failed])
    assert second.closed == [0]
    created = second.history[2]
    assert created["EventType"] == EventType.TIMER_CREATED and created["EventId"] == 1
    (timer,) = second.messages
    assert timer.visible_at == NOW + 2.0 and timer.event["TimerId"] == 1 and timer.timer_id == 1
    # the timer fires: attempt 2 is scheduled as task 2
    retry_timer = second.opened[0]
    fired = event(EventType.TIMER_FIRED, NOW, TimerId=1, FireAt=iso(NOW))
    third = run([], instance(next_id=2, known=1), {1: retry_timer}, [fired])
    assert [(w.task_id, w.name) for w in third.work] == [(2, "flaky")]
    assert third.opened[0].retry is not None and third.opened[0].retry.attempts == 2


def test_retry_back_off_is_capped() -> None:
    policy = RetryPolicy("activity", "f", None, 5, 1000, backoff=3.0, max_interval_ms=5000, attempts=3)
    assert policy.delay_s() == 5.0
    assert RetryPolicy("activity", "f", None, 5, 1000, backoff=3.0, attempts=2).delay_s() == 3.0


def test_last_failed_attempt_gives_no_new_attempt() -> None:
    policy = RetryPolicy("activity", "flaky", None, 2, 100, attempts=2)
    fired = event(EventType.TIMER_FIRED, NOW, TimerId=5, FireAt=iso(NOW))
    d = run([], instance(next_id=6, known=1), {5: OpenTask(5, "retry_timer", retry=policy)}, [fired])
    assert d.work == [] and d.next_id == 6


def test_sub_orchestration_creates_the_child_with_a_derived_id() -> None:
    d = run([CallSubOrchestratorAction("child", {"n": 1})])
    (child,) = d.children
    assert child.instance_id == "e1:0" and child.parent == ("i1", "e1", 0) and child.name == "child"
    assert json.loads(json.loads(child.input or "null")) == {"n": 1}
    assert d.history[1]["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_CREATED
    assert d.history[1]["InstanceId"] == "e1:0" and d.opened[0].child == "e1:0"


def test_sub_orchestration_with_retry_keeps_the_given_instance_id() -> None:
    opts = RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=2)
    d = run([CallSubOrchestratorWithRetryAction("child", opts, None, "kid")])
    assert d.children[0].instance_id == "kid"
    assert d.opened[0].retry is not None and d.opened[0].retry.kind == "sub"


def test_timer_is_a_future_inbox_message_and_a_cancelled_one_is_dropped() -> None:
    timer = CreateTimerAction(datetime.fromtimestamp(NOW + 60, UTC))
    d = run([timer])
    (msg,) = d.messages
    assert msg.visible_at == NOW + 60 and msg.event["EventType"] == EventType.TIMER_FIRED and msg.timer_id == 0
    timer.is_cancelled = True
    later = run([timer], instance(next_id=1, known=1), {0: d.opened[0]})
    assert later.cancel_timers == [0] and later.closed == [0]


def test_wait_for_external_event_takes_no_id() -> None:
    d = run([WaitForExternalEventAction("Approval"), CallActivityAction("a", None)])
    assert d.work[0].task_id == 0 and d.known == 2


def test_when_all_and_when_any_are_flattened_in_order() -> None:
    acts = [CallActivityAction("a", "1"), CallActivityAction("b", "2")]
    timer = CreateTimerAction(datetime.fromtimestamp(NOW + 5, UTC))
    d = run([WhenAllAction(acts), WhenAnyAction([WaitForExternalEventAction("E"), timer])])
    assert [(w.task_id, w.name) for w in d.work] == [(0, "a"), (1, "b")]
    assert d.messages[0].timer_id == 2 and d.known == 4


def test_continue_as_new_starts_a_new_execution_with_the_new_input() -> None:
    d = run([ContinueAsNewAction(3)], done=True)
    assert d.status == "ContinuedAsNew" and d.new_execution == ("id1", json.dumps(json.dumps(3)))
    (start,) = d.messages
    assert start.execution_id == "id1" and start.event["EventType"] == EventType.EXECUTION_STARTED
    assert d.history[-2]["OrchestrationStatus"] == 2


def test_completion_records_the_output_and_answers_the_parent() -> None:
    d = run([], instance(parent=("p", "pe", 7)), done=True, output={"ok": 1})
    assert d.finished and d.status == "Completed" and d.output == '{"ok": 1}'
    (msg,) = d.messages
    assert (msg.instance_id, msg.execution_id) == ("p", "pe")
    assert msg.event["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED
    assert msg.event["TaskScheduledId"] == 7 and msg.event["Result"] == '{"ok": 1}'


def test_failure_records_the_message_and_fails_the_parent() -> None:
    d = run([], instance(parent=("p", "pe", 7)), error="boom")
    assert d.finished and d.status == "Failed"
    assert json.loads(d.output or "") == "Orchestrator function 'orch' failed: boom"
    assert d.history[-2]["FailureDetails"] == {"ErrorType": "OrchestrationFailure", "ErrorMessage": "boom"}
    assert d.messages[0].event["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_FAILED


def test_entity_call_and_signal_send_requests_with_the_next_ids() -> None:
    counter = SdkEntityId("Counter", "k")
    inst = instance(next_id=2)
    _, opening = decisions.begin(inst, [], NOW)
    actions = [SignalEntityAction(counter, "add", 5).to_json(), CallEntityAction(counter, "get").to_json()]
    d = decisions.decide(
        inst, {}, opening, OrchestratorResult(actions=actions), NOW, ids(), entity_names=frozenset({"counter"})
    )
    sent = [e for e in d.history if e["EventType"] == EventType.EVENT_SENT]
    assert [e["EventId"] for e in sent] == [2, 3] and all(e["InstanceId"] == "@counter@k" for e in sent)
    (signal_target, signal), (call_target, call) = d.entity_requests
    assert signal_target == call_target == EntityId("counter", "k")
    assert signal.is_signal and signal.operation == "add" and signal.input == json.dumps("5")
    assert not call.is_signal and (call.parent_instance, call.parent_execution) == ("i1", "e1")
    assert [json.loads(e["Input"])["id"] for e in sent] == [signal.id, call.id]  # what the SDK re-keys by
    assert d.opened == [] and d.status == "Running" and d.next_id == 4


def test_entity_actions_to_unknown_entities_or_malformed_fail_the_orchestration() -> None:
    inst = instance()
    _, opening = decisions.begin(inst, [], NOW)
    call = CallEntityAction(SdkEntityId("Nope", "k"), "get").to_json()
    d = decisions.decide(
        inst, {}, opening, OrchestratorResult(actions=[call]), NOW, ids(), entity_names=frozenset({"counter"})
    )
    assert d.status == "Failed" and "The function 'nope' doesn't exist" in (d.output or "") and not d.entity_requests
    bad = run([{"actionType": int(ActionType.CALL_ENTITY), "instanceId": "counter", "operation": "add"}])
    assert bad.status == "Failed" and "invalid entity action" in (bad.output or "")
    scheduled = run([{"actionType": 10, "instanceId": "@counter@k", "operation": "add"}])
    assert scheduled.status == "Failed" and "action type 10" in (scheduled.output or "")


def test_rewind_cache_answers_a_scheduled_activity() -> None:
    inst = instance(rewind_cache={'activity\x00a\x00"x"': ['"cached"']})
    d = run([CallActivityAction("a", "x")], inst)
    assert (
        d.work == [] and d.messages[0].event["Result"] == '"cached"' and d.rewind_cache == {'activity\x00a\x00"x"': []}
    )
    assert inst.rewind_cache['activity\x00a\x00"x"'] == ['"cached"']  # the input is not modified


def test_plain_completions_batch_and_retry_events_stand_alone() -> None:
    tasks = {
        0: OpenTask(0, "activity"),
        1: OpenTask(1, "activity"),
        2: OpenTask(2, "activity", retry=RetryPolicy("activity", "f", None, 2, 1)),
    }
    done = [("e1", event(EventType.TASK_COMPLETED, NOW, TaskScheduledId=i, Result="1")) for i in range(2)]
    failed = ("e1", event(EventType.TASK_FAILED, NOW, TaskScheduledId=2, Reason="x", Details=""))
    assert decisions.select_batch(tasks, [*done, failed], "e1") == 2
    assert decisions.select_batch(tasks, [failed, *done], "e1") == 1
    stale = ("e1", event(EventType.TASK_COMPLETED, NOW, TaskScheduledId=9, Result="1"))
    assert decisions.select_batch(tasks, [stale, *done], "e1") == 0


def test_episode_time_never_goes_back_and_waits_for_the_timer() -> None:
    t, opening = decisions.begin(instance(last_ts=NOW + 1), [], NOW)
    assert t > NOW + 1 and opening[0]["EventType"] == EventType.ORCHESTRATOR_STARTED
    fired = event(EventType.TIMER_FIRED, NOW, TimerId=0, FireAt=iso(NOW + 3))
    t, opening = decisions.begin(instance(), [fired], NOW)
    assert t == NOW + 3 and opening[1]["IsPlayed"] is False and opening[1]["Timestamp"] == iso(NOW + 3)


def test_every_sdk_action_type_has_a_handler() -> None:
    compound = (ActionType.WHEN_ANY, ActionType.WHEN_ALL)
    assert {int(t) for t in ActionType if t not in compound} <= set(decisions.HANDLERS)
