"""The typed pipeline contract: hostile inputs are refused with a reason, results of every age decode, and
docs/contracts.md is generated from the models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from imagepipe import contracts_doc
from imagepipe.domain import (
    ANALYZE_RESULT,
    FETCH_RESULT,
    PERSIST_RESULT,
    Analyzed,
    Deleted,
    Failure,
    Fetched,
    Persisted,
    PersistInput,
    PipelineInput,
    Record,
    RunError,
    Superseded,
    decode_result,
    describe,
)
from imagepipe.ids import instance_id
from imagepipe.vocabulary import Step

pytestmark = pytest.mark.unit

IMAGE = "01jabcdefghjkmnpqrstvwxyz0"
STEP = {"imageId": IMAGE, "blobName": f"{IMAGE}.jpg", "etag": "0x8DC", "instanceId": instance_id(IMAGE, "0x8DC")}


def refusal(model: Any, given: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(given)
    return describe(refused.value)


def test_pipeline_input_round_trips_in_wire_names() -> None:
    given = PipelineInput.model_validate({**STEP, "source": "eventgrid"})
    assert given.retry.max_number_of_attempts == 5  # the default vision policy
    assert PipelineInput.model_validate(given.to_json()) == given
    assert set(given.step().to_json()) == {"imageId", "blobName", "etag", "instanceId"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"imageId": "../../etc"}, "imageId"),
        ({"blobName": "someone-else.jpg"}, "blobName must name the blob"),
        ({"instanceId": "forged"}, "instanceId does not belong"),
        ({"etag": "\x00"}, "etag"),
        ({"retry": {"firstRetryIntervalInMilliseconds": 1, "maxNumberOfAttempts": 3}}, "retry.first"),
        ({"retry": {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 10_000}}, "retry.max"),
        ({"source": "x" * 500}, "source"),
    ],
)
def test_hostile_pipeline_input_is_refused_naming_the_field(change: dict[str, Any], reason: str) -> None:
    assert reason in refusal(PipelineInput, {**STEP, **change})


def test_input_that_is_not_an_object_is_named() -> None:
    assert refusal(PipelineInput, ["x"]) == "the input must be a JSON object, not list"


def test_a_failed_persist_needs_its_reason() -> None:
    assert "a failed status needs an error" in refusal(PersistInput, {**STEP, "status": "failed"})


LEGACY = {
    "fetch": {
        "ok": True,
        "profile": "insurance",
        "format": "JPEG",
        "width": 640,
        "height": 480,
        "phash": "0" * 16,
        "blob": {"name": "x"},
    },
    "analyze": {"ok": True, "textHeavy": True, "topTags": ["car"], "labels": [], "provider": "local"},
    "failed": {"ok": False, "error": {"code": "lost", "message": "gone", "step": "analyze_image", "guidance": "g"}},
    "superseded": {"ok": False, "superseded": True},
    "deleted": {"ok": False, "deleted": True, "reason": "the image was deleted through the API"},
}


def test_results_written_before_the_outcome_field_still_decode() -> None:
    """Runs in flight across the deployment replay histories with these shapes."""
    assert isinstance(decode_result(FETCH_RESULT, LEGACY["fetch"], Step.FETCH_IMAGE_METADATA), Fetched)
    analyzed = decode_result(ANALYZE_RESULT, LEGACY["analyze"], Step.ANALYZE_IMAGE)
    assert isinstance(analyzed, Analyzed) and analyzed.text_heavy
    failed = decode_result(ANALYZE_RESULT, LEGACY["failed"], Step.ANALYZE_IMAGE)
    assert isinstance(failed, Failure) and failed.error.code == "lost" and failed.error.guidance == "g"
    assert isinstance(decode_result(PERSIST_RESULT, LEGACY["superseded"], Step.PERSIST_RECORD), Superseded)
    assert isinstance(decode_result(PERSIST_RESULT, LEGACY["deleted"], Step.PERSIST_RECORD), Deleted)


def test_todays_results_carry_the_legacy_flags_too() -> None:
    assert Superseded().to_json() == {"outcome": "superseded", "reason": None, "ok": False, "superseded": True}
    assert Deleted().to_json()["deleted"] is True
    assert Persisted(status="completed").to_json() == {
        "outcome": "ok",
        "status": "completed",
        "nearDuplicates": 0,
        "ok": True,
    }
    error = RunError.of("c", "m", "s").to_json()
    assert Failure(error=RunError.of("c", "m", "s")).to_json() == {"outcome": "failed", "error": error, "ok": False}
    assert error == {"code": "c", "message": "m", "step": "s"}  # no null guidance


def test_a_result_this_version_cannot_read_is_a_clear_failure() -> None:
    result = decode_result(FETCH_RESULT, {"ok": True, "profile": 7}, Step.FETCH_IMAGE_METADATA)
    assert isinstance(result, Failure) and result.error.code == "invalid_step_result"
    assert "fetch_image_metadata returned a result this version cannot read" in result.error.message
    assert isinstance(decode_result(FETCH_RESULT, "garbage", Step.FETCH_IMAGE_METADATA), Failure)


def test_reasons_built_from_exception_text_never_fail() -> None:
    error = RunError.of("retries_exhausted", "line one\nline two\x00" + "x" * 5000, "analyze_image")
    assert "\n" not in error.message and len(error.message) <= 2000


def test_record_skeleton_has_every_field() -> None:
    record = Record.model_validate(
        {
            "id": IMAGE,
            "profile": "general",
            "status": "pending",
            "blob": {
                "container": "images",
                "name": f"{IMAGE}.jpg",
                "etag": None,
                "size": None,
                "contentType": "image/jpeg",
                "lastModified": None,
            },
            "client": {"originalName": None, "metadata": {}},
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
        }
    ).to_json()
    assert record["run"] == {} and record["error"] is None and record["schemaVersion"] == 1
    assert {"analysis", "readResult", "text", "tags", "labels", "labelNames", "nearDuplicates", "acceptance"} <= set(
        record
    )


def test_contracts_doc_is_generated_from_the_models() -> None:
    current = contracts_doc.DOC.read_text(encoding="utf-8")
    assert contracts_doc.render(current) == current, "docs/contracts.md is stale: run python -m imagepipe.contracts_doc"
    assert "`stagesMs`" in current and "durationsMs" not in current and 'attempts": {' not in current
