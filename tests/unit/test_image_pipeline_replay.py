"""image_pipeline driven through the real SDK replay with hand-built histories; asserts the emitted actions."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import pytest

from imagepipe.domain import Analyzed, Fetched, Persisted, TextRead
from imagepipe.ids import instance_id
from orchestrators import image_pipeline as module
from tests.unit.durable_history import History, flatten, run

pytestmark = pytest.mark.unit

INPUT = {
    "imageId": "01jabcdefghjkmnpqrstvwxyz0",
    "blobName": "01jabcdefghjkmnpqrstvwxyz0.jpg",
    "etag": "0x8DC",
    "instanceId": instance_id("01jabcdefghjkmnpqrstvwxyz0", "0x8DC"),
    "source": "eventgrid",
    "retry": {
        "firstRetryIntervalInMilliseconds": 500,
        "maxNumberOfAttempts": 3,
        "backoffCoefficient": 2.0,
        "maxRetryIntervalInMilliseconds": 60000,
    },
}
META_OK = {"ok": True, "profile": "insurance", "format": "JPEG", "width": 640, "height": 480, "phash": "0" * 16}


@pytest.fixture(scope="module")
def handle() -> Any:
    app = df.DFApp()
    app.register_functions(module.bp)
    (function,) = [f for f in app.get_functions() if f.get_function_name() == "image_pipeline"]
    return function.get_user_function()


def actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    return flatten(state["actions"])


def names(state: dict[str, Any]) -> list[str]:
    return [a["functionName"] for a in actions(state)]


def test_first_episode_schedules_fetch_with_retry(handle: Any) -> None:
    state = run(handle, History(INPUT))
    assert state["isDone"] is False
    (action,) = actions(state)
    assert action["actionType"] == 1 and action["functionName"] == "fetch_image_metadata"
    assert action["retryOptions"]["maxNumberOfAttempts"] == 3
    assert state["customStatus"]["stage"] == "fetch_image_metadata"


def test_success_without_ocr(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    state = run(handle, h)
    assert names(state) == ["fetch_image_metadata", "analyze_image"]
    analyze = actions(state)[1]
    assert analyze["retryOptions"] == INPUT["retry"]
    assert '"profile": "insurance"' in analyze["input"]
    assert state["customStatus"]["stage"] == "analyze_image"

    h.scheduled(1, "analyze_image").completed(1, {"ok": True, "textHeavy": False, "topTags": ["car"]})
    state = run(handle, h)
    assert names(state)[-1] == "persist_record"
    assert '"status": "completed"' in actions(state)[-1]["input"]

    h.scheduled(2, "persist_record").completed(2, {"ok": True, "status": "completed"})
    state = run(handle, h)
    assert state["isDone"] is True
    assert state["output"]["status"] == "completed"
    assert state["customStatus"]["stage"] == "completed"


def test_text_heavy_chains_ocr(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").completed(1, {"ok": True, "textHeavy": True})
    state = run(handle, h)
    assert names(state)[-1] == "read_text"
    assert actions(state)[-1]["retryOptions"]["backoffCoefficient"] == 2.0
    h.scheduled(2, "read_text").completed(2, {"ok": True, "lines": 12, "characters": 300})
    state = run(handle, h)
    assert names(state)[-1] == "persist_record"
    h.scheduled(3, "persist_record").completed(3, {"ok": True, "status": "completed"})
    state = run(handle, h)
    assert state["isDone"] and state["output"]["ocr"]["lines"] == 12


def test_transient_failure_then_success(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").failed(1, "TransientServiceError: vision answered 429")
    state = run(handle, h)
    assert state["isDone"] is False and "error" not in state
    h.timer(2, 500)  # the host's retry timer consumes id 2; attempt 2 is id 3
    h.scheduled(3, "analyze_image").completed(3, {"ok": True, "textHeavy": False})
    state = run(handle, h)
    assert names(state)[-1] == "persist_record"
    h.scheduled(4, "persist_record").completed(4, {"ok": True, "status": "completed"})
    assert run(handle, h)["output"]["status"] == "completed"


def test_permanent_failure_is_persisted_then_fails_run(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    bad = {
        "ok": False,
        "error": {"code": "InvalidImageFormat", "message": "vision rejected it", "step": "analyze_image"},
    }
    h.scheduled(1, "analyze_image").completed(1, bad)
    state = run(handle, h)
    persist = actions(state)[-1]
    assert persist["functionName"] == "persist_record"
    assert '"status": "failed"' in persist["input"] and "InvalidImageFormat" in persist["input"]
    h.scheduled(2, "persist_record").completed(2, {"ok": True, "status": "failed"})
    state = run(handle, h)
    assert "analyze_image failed (InvalidImageFormat): vision rejected it" in state["error"]
    assert state["customStatus"]["stage"] == "failed"


def test_undecodable_image_fails_without_analysis(handle: Any) -> None:
    bad = {"ok": False, "error": {"code": "undecodable_image", "message": "truncated", "step": "fetch_image_metadata"}}
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, bad)
    state = run(handle, h)
    assert names(state) == ["fetch_image_metadata", "persist_record"]


def test_retries_exhausted_fails_with_the_activity_message(handle: Any) -> None:
    given = {**INPUT, "retry": {**INPUT["retry"], "maxNumberOfAttempts": 2}}
    h = History(given).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").failed(1, "vision answered 503").timer(2, 500)
    h.scheduled(3, "analyze_image").failed(3, "vision answered 503").timer(4, 1000)
    state = run(handle, h)
    persist = actions(state)[-1]
    assert persist["functionName"] == "persist_record" and "retries_exhausted" in persist["input"]
    assert "vision answered 503" in persist["input"]
    h.scheduled(5, "persist_record").completed(5, {"ok": True, "status": "failed"})
    state = run(handle, h)
    assert "analyze_image failed (retries_exhausted)" in state["error"]


def test_superseded_version_ends_quietly(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, {"ok": False, "superseded": True})
    state = run(handle, h)
    assert state["isDone"] is True and state["output"]["status"] == "superseded"
    assert names(state) == ["fetch_image_metadata"]


def test_replay_is_deterministic(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    assert run(handle, h) == run(handle, h)


# --- the run reports what persist_record actually did (issue 10.7) ------------------------------------


def test_superseded_persist_does_not_end_completed(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").completed(1, {"ok": True, "textHeavy": False})
    h.scheduled(2, "persist_record").completed(2, {"ok": False, "superseded": True})
    state = run(handle, h)
    assert state["isDone"] is True
    assert state["output"]["status"] == "superseded"
    assert state["customStatus"]["stage"] == "superseded"


def test_lost_blob_at_persist_fails_the_run_with_the_record_reason(handle: Any) -> None:
    lost = {"code": "lost", "message": "the stored bytes are gone", "step": "persist_record", "guidance": "re-upload"}
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").completed(1, {"ok": True, "textHeavy": False})
    h.scheduled(2, "persist_record").completed(2, {"ok": False, "error": lost})
    state = run(handle, h)
    assert "persist_record failed (lost): the stored bytes are gone" in state["error"]
    assert state["customStatus"] == {"stage": "failed", "step": "persist_record", "imageId": INPUT["imageId"]}


def test_lost_blob_mid_run_is_persisted_as_the_failure(handle: Any) -> None:
    lost = {"code": "lost", "message": "gone", "step": "analyze_image", "guidance": "re-upload"}
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").completed(1, {"ok": False, "error": lost})
    state = run(handle, h)
    persist = actions(state)[-1]
    assert persist["functionName"] == "persist_record" and '"code": "lost"' in persist["input"]
    h.scheduled(2, "persist_record").completed(2, {"ok": False, "error": lost})
    assert "analyze_image failed (lost)" in run(handle, h)["error"]


def test_deleted_through_the_api_ends_deleted(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").completed(1, {"ok": False, "deleted": True})
    state = run(handle, h)
    assert state["isDone"] is True and state["output"]["status"] == "deleted"
    assert names(state) == ["fetch_image_metadata", "analyze_image"]


def test_persist_that_keeps_failing_fails_the_run_with_its_reason(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, META_OK)
    h.scheduled(1, "analyze_image").completed(1, {"ok": True, "textHeavy": False})
    h.scheduled(2, "persist_record").failed(2, "storage unreachable \n Traceback ...").timer(3, 1000)
    h.scheduled(4, "persist_record").failed(4, "storage unreachable \n Traceback ...").timer(5, 2000)
    h.scheduled(6, "persist_record").failed(6, "storage unreachable \n Traceback ...").timer(7, 4000)
    state = run(handle, h)
    assert "persist_record failed (retries_exhausted)" in state["error"]
    assert "storage unreachable" in state["error"] and "Traceback" not in state["error"]


@pytest.mark.parametrize(
    "given",
    [
        {"imageId": 5},
        {**INPUT, "blobName": None},
        {key: value for key, value in INPUT.items() if key != "etag"},
        {**INPUT, "retry": {"maxNumberOfAttempts": "x"}},
        {**INPUT, "instanceId": "01jabcdefghjkmnpqrstvwxyz0-forged000000"},
        {**INPUT, "blobName": "../01jabcdefghjkmnpqrstvwxyz0.jpg"},
        ["not", "an", "object"],
    ],
)
def test_malformed_input_fails_with_a_reason_and_schedules_nothing(handle: Any, given: Any) -> None:
    state = run(handle, History(given))
    assert state["actions"] == [] or not flatten(state["actions"])
    assert "orchestration input" in state["error"]


# --- results in today's typed shape (imagepipe.domain); the tests above use the shapes of older histories --


FETCHED = Fetched(profile="insurance", format="PNG", width=640, height=480, phash="0" * 16).to_json()


def test_typed_results_drive_the_run(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, FETCHED)
    h.scheduled(1, "analyze_image").completed(1, Analyzed(text_heavy=True, top_tags=["text"]).to_json())
    h.scheduled(2, "read_text").completed(2, TextRead(lines=3, characters=40).to_json())
    state = run(handle, h)
    persist = actions(state)[-1]
    assert persist["functionName"] == "persist_record" and '"status": "completed"' in persist["input"]
    assert '"stagesMs"' in persist["input"] and '"startedAt"' in persist["input"]
    h.scheduled(3, "persist_record").completed(3, Persisted(status="completed", near_duplicates=1).to_json())
    state = run(handle, h)
    assert state["isDone"] and state["output"]["status"] == "completed"
    assert state["output"]["ocr"]["lines"] == 3 and state["output"]["analysis"]["topTags"] == ["text"]


def test_a_result_this_version_cannot_read_fails_the_run_clearly(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, {"ok": True, "profile": 7})
    state = run(handle, h)
    persist = actions(state)[-1]
    assert persist["functionName"] == "persist_record" and "invalid_step_result" in persist["input"]
    h.scheduled(1, "persist_record").completed(1, Persisted(status="failed").to_json())
    state = run(handle, h)
    assert "fetch_image_metadata failed (invalid_step_result)" in state["error"]


def test_vision_steps_get_the_profile_and_the_input_retry_policy(handle: Any) -> None:
    h = History(INPUT).scheduled(0, "fetch_image_metadata").completed(0, FETCHED)
    analyze = actions(run(handle, h))[-1]
    assert analyze["retryOptions"] == INPUT["retry"]
    assert json.loads(analyze["input"]) == {
        key: INPUT[key] for key in ("imageId", "blobName", "etag", "instanceId")
    } | {"profile": "insurance"}
