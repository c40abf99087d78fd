"""The pipeline's steps in-process on real Azurite, SQLite and the local models: upload -> blob -> record ->
query, version guards and near-duplicates, without a host."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.ids import instance_id
from imagepipe.ports import SearchQuery
from imagepipe.records import encode_blob_metadata
from imagepipe.vocabulary import Step
from tests.integration.samples import SAMPLES, store_sample
from tests.support.inprocess import body_json, call_http

pytestmark = pytest.mark.integration


def store(sample: str, profile: str) -> dict[str, Any]:
    return store_sample(services().blobs, sample, profile)


def run_steps(step: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    meta = pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)
    assert meta["ok"], meta
    analysis = pipeline.run_activity(Step.ANALYZE_IMAGE, svc, {**step, "profile": meta["profile"]})
    assert analysis["ok"], analysis
    if analysis["textHeavy"]:
        assert pipeline.run_activity(Step.READ_TEXT, svc, {**step, "profile": meta["profile"]})["ok"]
    final = pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed", "run": {"source": "test"}})
    assert final["ok"], final
    return analysis


def test_steps_build_a_searchable_record(app_env: dict[str, str]) -> None:
    step = store("insurance-claim.png", "insurance")
    analysis = run_steps(step)
    assert analysis["textHeavy"] is True
    record = services().records.get(step["imageId"])
    assert record is not None and record["status"] == "completed"
    assert record["client"]["originalName"] == "insurance-claim.png"
    assert "claim" in record["text"].lower() and "document" in record["labelNames"]
    assert record["blob"]["etag"] == step["etag"] and record["run"]["instanceId"] == step["instanceId"]
    assert [r["id"] for r in services().records.search(SearchQuery(text="policy")).items] == [step["imageId"]]
    assert [r["id"] for r in services().records.search(SearchQuery(label="document")).items] == [step["imageId"]]


def test_near_duplicate_is_found_on_the_record(app_env: dict[str, str]) -> None:
    original = store("cat.jpg", "general")
    run_steps(original)
    copy = store("cat-copy-small.jpg", "general")
    run_steps(copy)
    record = services().records.get(copy["imageId"])
    assert record is not None
    assert [d["id"] for d in record["nearDuplicates"]] == [original["imageId"]]
    other = store("coffee.jpg", "general")
    run_steps(other)
    assert services().records.get(other["imageId"])["nearDuplicates"] == []  # type: ignore[index]
    # The API's one meaning of "near duplicate": the pHash lookup, both ways, with the distance.
    for image, twin in ((copy, original), (original, copy)):
        answer = call_http("search_images", "GET", "/api/images", params={"nearDuplicateOf": image["imageId"]})
        assert answer.status_code == 200
        items = body_json(answer)["items"]
        assert [d["id"] for d in items] == [twin["imageId"]] and isinstance(items[0]["distance"], int)
    answer = call_http("search_images", "GET", "/api/images", params={"nearDuplicateOf": "not-an-id"})
    assert answer.status_code == 400


def test_stale_step_never_overwrites_a_newer_version(app_env: dict[str, str]) -> None:
    svc = services()
    old = store("cat.jpg", "general")
    run_steps(old)
    newer = svc.blobs.put(
        old["blobName"],
        (SAMPLES / "coffee.jpg").read_bytes(),
        content_type="image/jpeg",
        metadata=encode_blob_metadata("general", "coffee.jpg", {}),
    )
    new_step = {**old, "etag": newer.etag, "instanceId": instance_id(old["imageId"], newer.etag)}
    run_steps(new_step)
    # the old version's run arrives late: every step sees it is superseded and writes nothing
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, old)["superseded"] is True
    assert pipeline.run_activity(Step.PERSIST_RECORD, svc, {**old, "status": "completed"})["superseded"] is True
    record = svc.records.get(old["imageId"])
    assert record is not None and record["blob"]["etag"] == newer.etag
    assert record["client"]["originalName"] == "coffee.jpg"


@pytest.mark.parametrize("same_worker", [True, False])
def test_blob_lost_mid_run_ends_the_record_failed_lost(app_env: dict[str, str], same_worker: bool) -> None:
    """A vision step on the worker that validated the bytes analyses them (no second download), so the loss is
    found by persist_record; on another worker the step's download finds it. Either way the record ends lost."""
    svc = services()
    step = store("coffee.jpg", "general")
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    assert svc.records.get(step["imageId"])["status"] == "processing"  # type: ignore[index]
    if not same_worker:
        pipeline.VALIDATED.clear()
    svc.blobs.delete(step["blobName"])  # gone behind the API's back (storage lost it), mid-run
    analysis = pipeline.run_activity(Step.ANALYZE_IMAGE, svc, {**step, "profile": "general"})
    if same_worker:
        assert analysis["ok"] is True, analysis
        result = pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})
        assert result["outcome"] == "failed" and result["error"]["code"] == "lost"
    else:
        assert analysis["ok"] is False and analysis["error"]["code"] == "lost"
        result = pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})
        assert result == {"outcome": "failed", "ok": False, "error": analysis["error"]}  # not superseded/completed
    record = svc.records.get(step["imageId"])
    assert record is not None and record["status"] == "failed"
    assert record["error"]["code"] == "lost" and "upload the image again" in record["error"]["guidance"]


def test_a_run_downloads_its_image_once(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    svc = services()
    step = store("insurance-claim.png", "insurance")  # text-heavy: fetch, analyze and read_text all need bytes
    reads: list[str] = []

    def counted(method: str) -> Any:
        real = getattr(svc.blobs, method)

        def call(name: str, *args: Any) -> Any:
            reads.append(f"{method} {name}")
            return real(name, *args)

        return call

    for method in ("download", "download_within", "get_properties"):
        monkeypatch.setattr(svc.blobs, method, counted(method))
    analysis = run_steps(step)
    assert analysis["textHeavy"] is True
    # fetch reads the bytes and properties in one request; persist checks that the version is still current
    assert reads == [f"download_within {step['blobName']}", f"get_properties {step['blobName']}"]
    assert len(pipeline.VALIDATED) == 0  # dropped once the run's vision steps are done


def test_image_deleted_through_the_api_is_not_revived(app_env: dict[str, str]) -> None:
    svc = services()
    step = store("coffee.jpg", "general")
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    svc.records.delete(step["imageId"])  # the API's DELETE: record first, then the blob
    assert pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})["deleted"] is True
    svc.blobs.delete(step["blobName"])
    assert pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})["deleted"] is True
    assert svc.records.get(step["imageId"]) is None


# --- forged orchestration input (issue 10.2) ------------------------------------------------------------


def test_forged_step_for_another_images_blob_writes_nothing(app_env: dict[str, str]) -> None:
    svc = services()
    victim = store("coffee.jpg", "general")
    run_steps(victim)
    before = svc.records.get(victim["imageId"])
    attacker = store("cat.jpg", "general")
    forged = {**attacker, "imageId": victim["imageId"]}  # victim's id, attacker's blob, etag and instance
    for result in (
        pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, forged),
        pipeline.run_activity(Step.ANALYZE_IMAGE, svc, {**forged, "profile": "general"}),
        pipeline.run_activity(Step.READ_TEXT, svc, {**forged, "profile": "general"}),
        pipeline.run_activity(Step.PERSIST_RECORD, svc, {**forged, "status": "completed"}),
        pipeline.run_activity(
            Step.PERSIST_RECORD,
            svc,
            {**forged, "status": "failed", "error": {"code": "x", "message": "pwned", "step": "x"}},
        ),
    ):
        assert result["ok"] is False and result["error"]["code"] == "invalid_step_input", result
        assert "blobName must name the blob of image" in result["error"]["message"]
    assert svc.records.get(victim["imageId"]) == before
    assert svc.records.get(attacker["imageId"]) is None


ALL_STEPS = ("fetch_image_metadata", "analyze_image", "read_text", "persist_record")
VISION_STEPS = ("analyze_image", "read_text")


@pytest.mark.parametrize(
    ("steps", "change", "expected"),
    [
        (ALL_STEPS, {"imageId": "../../x"}, "imageId must be an image id"),
        (ALL_STEPS, {"blobName": ["x"]}, "blobName: Input should be a valid string"),
        (ALL_STEPS, {"blobName": "x" * 5000}, "blobName: String should have at most 40 characters"),
        (ALL_STEPS, {"etag": 5}, "etag: Input should be a valid string"),
        (ALL_STEPS, {"etag": ""}, "etag: String should have at least 1 character"),
        (ALL_STEPS, {"instanceId": "someone-else"}, "instanceId does not belong"),
        (VISION_STEPS, {"profile": {"a": 1}}, "profile: Input should be a valid string"),
        (VISION_STEPS, {"profile": "nope"}, "profile must name a configured profile"),
        (("persist_record",), {"status": "hacked"}, "status: Input should be 'completed' or 'failed'"),
        (("persist_record",), {"status": "failed"}, "a failed status needs an error"),
        (("persist_record",), {"status": "failed", "error": "text"}, "error: Input should be a valid dictionary"),
        (
            ("persist_record",),
            {"status": "failed", "error": {"code": 1, "message": "m", "step": "s"}},
            "error.code: Input should be a valid string",
        ),
        (
            ("persist_record",),
            {"run": {"stagesMs": {"x": "y" * 5000}}},
            "run.stagesMs.x: Input should be a valid integer",
        ),
        (("persist_record",), {"run": ["x"]}, "run: Input should be a valid dictionary"),
    ],
)
def test_malformed_step_input_is_refused(
    app_env: dict[str, str], steps: tuple[str, ...], change: dict[str, Any], expected: str
) -> None:
    svc = services()
    step = {**store("coffee.jpg", "general"), "profile": "general", "status": "completed"}
    for name in steps:
        result = pipeline.run_activity(Step(name), svc, {**step, **change})
        assert result["ok"] is False and result["error"]["code"] == "invalid_step_input", (name, result)
        assert expected in result["error"]["message"] and result["error"]["step"] == name
    assert svc.records.get(step["imageId"]) is None


def test_step_input_that_is_not_an_object_is_refused(app_env: dict[str, str]) -> None:
    result = pipeline.run_activity(Step.FETCH_IMAGE_METADATA, services(), ["not", "an", "object"])
    assert result["error"] == {
        "code": "invalid_step_input",
        "message": "refused: the input must be a JSON object, not list",
        "step": "fetch_image_metadata",
    }


# --- bytes that are not an acceptable image (issue 10.1) -------------------------------------------------


def test_html_put_through_an_upload_url_is_removed_and_the_record_says_why(app_env: dict[str, str]) -> None:
    import requests

    from tests.integration.test_acceptance import create_upload

    svc = services()
    spec = create_upload({"contentType": "image/png", "filename": "x.png"})
    html = b"<html><script>fetch('/api/runs?code='+location.search)</script></html>"
    headers = {**spec["requiredHeaders"], "Content-Type": "text/html"}
    assert requests.put(spec["uploadUrl"], data=html, headers=headers, timeout=10).status_code == 201
    info = svc.blobs.get_properties(f"{spec['id']}.png")
    assert info.content_type == "text/html"  # storage keeps what the client sent
    step = {
        "imageId": spec["id"],
        "blobName": info.name,
        "etag": info.etag,
        "instanceId": instance_id(spec["id"], info.etag),
    }
    result = pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)
    assert [b.name for b in svc.blobs.list()] == [], "non-image bytes must not stay in the images container"
    assert result["ok"] is False and "the stored image is not acceptable" in result["error"]["message"]
    assert "the stored bytes were removed" in result["error"]["message"]
    record = svc.records.get(spec["id"])
    assert record is not None and record["status"] == "failed" and record["error"] == result["error"]
    final = pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "failed", "error": result["error"]})
    assert final == {"outcome": "failed", "ok": False, "error": result["error"]}  # the reason stands; not "lost"


def test_oversized_direct_upload_is_refused_without_reading_it_whole(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagepipe.composition import reset_services

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "20000")
    reset_services()
    step = store("cat.jpg", "general")  # as a SAS PUT would store it: nothing checked its size
    result = pipeline.run_activity(Step.FETCH_IMAGE_METADATA, services(), step)
    assert result["ok"] is False and result["error"]["code"] == "payload_too_large"
    assert "above the 20000-byte limit" in result["error"]["message"]
    record = services().records.get(step["imageId"])
    assert record is not None and record["image"] is None and record["status"] == "failed"
    assert [b.name for b in services().blobs.list()] == []
