"""The vision quota: its token bucket and circuit breaker with injected time, the entity through the SDK's
entity handle, and the orchestrator's gate replayed through the SDK with hand-built histories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from imagepipe import vision_quota as quota
from imagepipe.errors import TransientServiceError
from imagepipe.ids import instance_id
from imagepipe.vision_quota import Decision, QuotaPolicy, QuotaState
from orchestrators import image_pipeline as module
from tests.unit.durable_history import History, flatten, run

pytestmark = pytest.mark.unit

POLICY = QuotaPolicy(rate_per_s=2.0, burst=2, default_pause_s=2.0, max_pause_s=60.0, probe_timeout_s=10.0)


def take(state: QuotaState, now: float, policy: QuotaPolicy = POLICY) -> tuple[QuotaState, Decision]:
    return quota.acquire(state, now, policy)


# ---------------------------------------------------------------------------------------------------
# the pure logic
# ---------------------------------------------------------------------------------------------------


def test_the_bucket_lets_a_burst_through_then_paces_at_the_rate() -> None:
    state = QuotaState()
    state, first = take(state, 100.0)
    state, second = take(state, 100.0)
    state, third = take(state, 100.0)
    assert first.go and second.go and not third.go
    assert third.reason == "rate" and third.wait_s == pytest.approx(0.5)
    state, later = take(state, 100.5)
    assert later.go
    unlimited = QuotaPolicy(rate_per_s=0.0)
    state = QuotaState()
    for _ in range(100):
        state, decision = take(state, 5.0, unlimited)
        assert decision.go


def test_a_throttled_report_pauses_everyone_for_the_retry_after() -> None:
    state, _ = take(QuotaState(), 0.0)
    state = quota.throttled(state, 10.0, 7, POLICY)
    state, decision = take(state, 12.0)
    assert not decision.go and decision.reason == "paused" and decision.wait_s == pytest.approx(5.0)
    # Every run in flight reports the same storm: the pause follows the latest Retry-After, no doubling.
    state = quota.throttled(state, 12.0, 3, POLICY)
    assert state.open_until == pytest.approx(17.0) and state.storms == 1
    state = quota.throttled(state, 13.0, 8, POLICY)
    assert state.open_until == pytest.approx(21.0) and state.storms == 1 and state.throttled_total == 3
    assert quota.status(state, 13.0)["circuit"] == "open"


def test_half_open_lets_one_probe_through_and_its_report_decides() -> None:
    state = quota.throttled(QuotaState(), 0.0, 5, POLICY)
    state, probe = take(state, 5.0)
    state, other = take(state, 5.1)
    assert probe.go and probe.probe
    assert not other.go and other.reason == "probing" and other.wait_s == pytest.approx(9.9)
    assert quota.status(state, 5.1)["circuit"] == "half-open"
    # The probe is throttled again: a longer pause (back-off doubles past the service's short Retry-After).
    again = quota.throttled(state, 6.0, 1, POLICY)
    assert again.storms == 2 and again.open_until == pytest.approx(6.0 + 4.0)
    # The probe got through: closed, everyone goes.
    closed = quota.succeeded(state, 6.0)
    closed, decision = take(closed, 6.0)
    assert decision.go and not decision.probe and quota.status(closed, 6.0)["circuit"] == "closed"
    # A lost probe does not block for ever: after its time the next caller probes.
    state, late = take(state, 15.1)
    assert late.go and late.probe


def test_pauses_are_capped_and_odd_retry_after_values_use_the_default() -> None:
    assert quota.throttled(QuotaState(), 0.0, 10_000, POLICY).open_until == pytest.approx(60.0)
    for odd in (None, "soon", -3, float("nan"), True):
        assert quota.throttled(QuotaState(), 0.0, odd, POLICY).open_until == pytest.approx(2.0)


def test_state_and_decisions_survive_json_and_refuse_garbage() -> None:
    state = quota.throttled(QuotaState(), 1.0, 4, POLICY)
    assert QuotaState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert QuotaState.from_json("nonsense") == QuotaState()
    assert QuotaState.from_json({"open_until": "x", "storms": True}) == QuotaState()
    assert Decision.from_json({"go": False, "waitS": 3}) == Decision(False, 3.0, "")
    assert Decision.from_json(None).go and Decision.from_json({"go": "no"}).go
    assert Decision.from_json({"go": False, "waitS": 1e9}).wait_s == quota.MAX_PAUSE_S
    assert Decision.from_json({"go": False, "waitS": "x"}).wait_s == quota.DEFAULT_PAUSE_S


def test_only_service_throttling_becomes_a_throttled_result() -> None:
    limited = TransientServiceError("Azure AI Vision answered 429", code=quota.THROTTLED_CODE, retry_after_s=4)
    result = quota.throttled_result("analyze_image", limited, {"visionQuota": True})
    assert quota.is_throttled(result) and result["retryAfterS"] == 4
    assert result["error"] == {"code": "vision_rate_limited", "message": limited.message, "step": "analyze_image"}
    unavailable = TransientServiceError("503", code="vision_unavailable")
    for exc, given in ((unavailable, {"visionQuota": True}), (limited, {}), (limited, None)):
        with pytest.raises(TransientServiceError):  # retried by the activity's policy, as without the quota
            quota.throttled_result("analyze_image", exc, given)
    assert not quota.is_throttled({"ok": True}) and not quota.is_throttled(None)


# ---------------------------------------------------------------------------------------------------
# the entity, through the SDK's entity handle
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def entity() -> Any:
    from triggers import vision_quota as trigger

    app = df.DFApp()
    app.register_functions(trigger.bp)
    (function,) = app.get_functions()
    return function.get_user_function()


def batch(handle: Any, state: Any, *ops: tuple[str, Any]) -> dict[str, Any]:
    request = {
        "self": {"name": "vision_quota", "key": quota.ENTITY_KEY},
        "exists": state is not None,
        "state": None if state is None else json.dumps(state),
        "batch": [
            {
                "name": op,
                "input": None if value is None else json.dumps(json.dumps(value)),
                "isSignal": False,
                "id": str(i),
            }
            for i, (op, value) in enumerate(ops)
        ],
    }
    return dict(json.loads(handle(func.EntityContext(json.dumps(request)))))


@pytest.fixture()
def quota_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    from imagepipe.composition import reset_services

    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("RECORDS_SQLITE_PATH", str(tmp_path / "records.sqlite3"))
    monkeypatch.setenv("VISION_RATE_LIMIT_PER_SECOND", "0")
    reset_services()  # the entity reads the composition's settings
    yield
    reset_services()


@pytest.mark.usefixtures("quota_settings")
def test_the_entity_pauses_on_a_report_and_answers_status(entity: Any) -> None:
    out = batch(
        entity, None, ("acquire", None), ("throttled", {"retryAfterS": 30}), ("acquire", None), ("status", None)
    )
    results = [json.loads(r["result"]) for r in out["results"]]
    assert [r["isError"] for r in out["results"]] == [False] * 4
    assert results[0]["go"] is True
    assert results[2]["go"] is False and results[2]["reason"] == "paused" and 29 < results[2]["waitS"] <= 30
    assert results[3]["circuit"] == "open" and results[3]["throttledTotal"] == 1
    state = json.loads(out["entityState"])
    after = batch(entity, state, ("reset", None), ("acquire", None), ("nonsense", None))
    assert json.loads(after["results"][1]["result"])["go"] is True
    assert after["results"][2]["isError"] and "no operation" in json.loads(after["results"][2]["result"])


# ---------------------------------------------------------------------------------------------------
# the gate in image_pipeline, replayed through the SDK
# ---------------------------------------------------------------------------------------------------

INPUT = {
    "imageId": "01jabcdefghjkmnpqrstvwxyz0",
    "blobName": "01jabcdefghjkmnpqrstvwxyz0.jpg",
    "etag": "0x8DC",
    "instanceId": instance_id("01jabcdefghjkmnpqrstvwxyz0", "0x8DC"),
    "source": "eventgrid",
    "visionQuota": True,
}
META_OK = {"ok": True, "profile": "general", "format": "JPEG", "width": 640, "height": 480, "phash": "0" * 16}
ANALYSIS_OK = {"ok": True, "textHeavy": False, "topTags": ["cat"], "labels": [], "provider": "azure"}


class EntityHistory(History):
    """``History`` with the events the host writes for entity calls and their answers."""

    def entity_called(self, event_id: int, request_id: str) -> EntityHistory:
        self._event(
            14, event_id, InstanceId="@vision_quota@azure-vision", Name="op", Input=json.dumps({"id": request_id})
        )
        self._event(13)
        self._episode()
        return self

    def entity_answered(self, request_id: str, value: Any) -> EntityHistory:
        self._event(15, Name=request_id, Input=json.dumps({"result": json.dumps(value)}))
        return self

    def signalled(self, event_id: int) -> EntityHistory:
        self._event(14, event_id, InstanceId="@vision_quota@azure-vision", Name="op", Input=json.dumps({"id": "s"}))
        return self


@pytest.fixture(scope="module")
def pipeline() -> Any:
    app = df.DFApp()
    app.register_functions(module.bp)
    (function,) = [f for f in app.get_functions() if f.get_function_name() == "image_pipeline"]
    return function.get_user_function()


def kinds(state: dict[str, Any]) -> list[tuple[int, str]]:
    return [(a["actionType"], a.get("functionName") or a.get("operation") or "") for a in flatten(state["actions"])]


def test_the_pipeline_waits_for_the_quota_and_reports_a_throttled_call(pipeline: Any) -> None:
    h = EntityHistory(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    assert kinds(run(pipeline, h))[-1] == (7, "acquire")
    # The entity says wait: a durable timer, then the question again.
    h.entity_called(1, "q1").entity_answered("q1", {"go": False, "waitS": 5, "reason": "paused"})
    state = run(pipeline, h)
    assert kinds(state)[-1] == (5, "")
    h.timer(2, 5000)
    assert kinds(run(pipeline, h))[-1] == (7, "acquire")
    h.entity_called(3, "q2").entity_answered("q2", {"go": True, "probe": True})
    state = run(pipeline, h)
    assert kinds(state)[-1] == (1, "analyze_image")
    assert json.loads(flatten(state["actions"])[-1]["input"])["visionQuota"] is True  # 429 comes back as a value
    # The call was throttled: report it to the entity (a signal), and ask again.
    throttled = {"ok": False, "throttled": True, "retryAfterS": 9, "error": {"code": "vision_rate_limited"}}
    h.scheduled(4, "analyze_image").completed(4, throttled)
    state = run(pipeline, h)
    assert kinds(state)[-2:] == [(9, "throttled"), (7, "acquire")]
    assert json.loads(flatten(state["actions"])[-2]["input"]) == {"retryAfterS": 9}
    # Go again; this time the probe succeeds and says so.
    h.signalled(5).entity_called(6, "q3").entity_answered("q3", {"go": True, "probe": True})
    h.scheduled(7, "analyze_image").completed(7, ANALYSIS_OK)
    state = run(pipeline, h)
    assert kinds(state)[-2:] == [(9, "succeeded"), (1, "persist_record")]
    assert not state.get("error")


def test_a_failing_entity_never_stops_the_pipeline(pipeline: Any) -> None:
    h = EntityHistory(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.entity_called(1, "q1")
    h._event(15, Name="q1", Input=json.dumps({"result": json.dumps("boom"), "exceptionType": "Error"}))
    assert kinds(run(pipeline, h))[-2:] == [(7, "acquire"), (1, "analyze_image")]


def test_without_the_quota_flag_the_pipeline_calls_vision_directly(pipeline: Any) -> None:
    h = History({k: v for k, v in INPUT.items() if k != "visionQuota"}).scheduled(0, "fetch_image_metadata")
    h.completed(0, META_OK)
    state = run(pipeline, h)
    assert kinds(state)[-1] == (1, "analyze_image")
    assert "visionQuota" not in json.loads(flatten(state["actions"])[-1]["input"])  # a 429 raises and is retried


@pytest.mark.parametrize(("provider", "expected"), [("azure", True), ("local", False)])
def test_runs_use_the_quota_when_the_provider_is_ai_vision(
    monkeypatch: pytest.MonkeyPatch, provider: str, expected: bool
) -> None:
    from imagepipe.settings import load_settings
    from triggers.runs import pipeline_input

    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("VISION_PROVIDER", provider)
    monkeypatch.setenv("VISION__endpoint", "https://example.cognitiveservices.azure.com/")
    given = pipeline_input(
        load_settings(), "01jabcdefghjkmnpqrstvwxyz0", "01jabcdefghjkmnpqrstvwxyz0.jpg", "0x1", "test"
    )
    assert given["visionQuota"] is expected


def test_a_step_throttled_again_and_again_ends_with_the_throttled_failure(pipeline: Any) -> None:
    from orchestrators.vision_gate import MAX_THROTTLED_CALLS

    error = {"code": "vision_rate_limited", "message": "AI Vision answered 429", "step": "analyze_image"}
    throttled = {"ok": False, "outcome": "failed", "throttled": True, "retryAfterS": 1, "error": error}
    h = EntityHistory(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    for round_ in range(MAX_THROTTLED_CALLS):
        base = 1 + 3 * round_
        if round_:
            h.signalled(base - 1)  # the previous round reported its throttled call
        h.entity_called(base, f"q{round_}").entity_answered(f"q{round_}", {"go": True})
        h.scheduled(base + 1, "analyze_image").completed(base + 1, throttled)
    state = run(pipeline, h)
    assert kinds(state)[-2:] == [(9, "throttled"), (1, "persist_record")]
    persisted = json.loads(flatten(state["actions"])[-1]["input"])
    assert persisted["status"] == "failed" and persisted["error"]["code"] == "vision_rate_limited"
