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
from tests.integration.samples import SAMPLES, store_sample

pytestmark = pytest.mark.integration


def store(sample: str, profile: str) -> dict[str, Any]:
    return store_sample(services().blobs, sample, profile)


def run_steps(step: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    meta = pipeline.fetch_image_metadata(svc, step)  # type: ignore[arg-type]
    assert meta["ok"], meta
    analysis = pipeline.analyze_image(svc, step, meta["profile"])  # type: ignore[arg-type]
    assert analysis["ok"], analysis
    if analysis["textHeavy"]:
        assert pipeline.read_text(svc, step, meta["profile"])["ok"]  # type: ignore[arg-type]
    final = pipeline.persist_record(svc, {**step, "status": "completed", "run": {"source": "test"}})  # type: ignore[typeddict-item]
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
    assert pipeline.fetch_image_metadata(svc, old)["superseded"] is True  # type: ignore[arg-type]
    assert pipeline.persist_record(svc, {**old, "status": "completed"})["superseded"] is True  # type: ignore[typeddict-item]
    record = svc.records.get(old["imageId"])
    assert record is not None and record["blob"]["etag"] == newer.etag
    assert record["client"]["originalName"] == "coffee.jpg"


def test_deleted_blob_is_not_revived(app_env: dict[str, str]) -> None:
    svc = services()
    step = store("coffee.jpg", "general")
    assert pipeline.fetch_image_metadata(svc, step)["ok"]  # type: ignore[arg-type]
    assert svc.records.get(step["imageId"])["status"] == "processing"  # type: ignore[index]
    svc.blobs.delete(step["blobName"])  # deleted behind the API's back, mid-run
    result = pipeline.persist_record(svc, {**step, "status": "completed"})  # type: ignore[typeddict-item]
    assert result["superseded"] is True
    assert svc.records.get(step["imageId"]) is None


def test_oversized_direct_upload_is_refused_before_download(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagepipe.composition import reset_services

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "20000")
    reset_services()
    step = store("cat.jpg", "general")  # as a SAS PUT would store it: nothing checked its size
    result = pipeline.fetch_image_metadata(services(), step)  # type: ignore[arg-type]
    assert result["ok"] is False and result["error"]["code"] == "payload_too_large"
    assert "above the 20000-byte limit" in result["error"]["message"]
    record = services().records.get(step["imageId"])
    assert record is not None and record["image"] is None
