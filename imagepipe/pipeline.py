"""What each pipeline activity does, independent of the Functions runtime (the activities/ modules wrap it).

Each step reads the blob version it was started for, calls one port, writes large results (analysis JSON,
OCR) into the record store and returns a small JSON summary, so orchestration history stays small.
Transient failures raise (the orchestration retries them); permanent ones return
``{"ok": False, "error": {...}}`` and are not retried. A step that finds a newer blob version or a deleted
blob returns ``{"ok": False, "superseded": True}``: the newer version's own run does the work.
"""

from __future__ import annotations

from typing import Any, TypedDict

from imagepipe.composition import Services
from imagepipe.errors import ImagepipeError, NotFoundError, PermanentImageError, TransientServiceError
from imagepipe.imagefacts import Limits, inspect_image
from imagepipe.ports import AnalysisRequest, BlobInfo, JsonDict
from imagepipe.records import (
    blob_json,
    decode_blob_metadata,
    merge_into_record,
    new_record,
    read_text_of,
    tag_names,
    utc_now,
)


class StepInput(TypedDict):
    imageId: str
    blobName: str
    etag: str
    instanceId: str


def failure(step: str, code: str, message: str) -> JsonDict:
    return {"ok": False, "error": {"code": code, "message": message, "step": step}}


SUPERSEDED: JsonDict = {"ok": False, "superseded": True}


def _limits(svc: Services) -> Limits:
    s = svc.settings
    return Limits(s.max_upload_bytes, s.min_dimension_px, s.max_dimension_px, s.max_pixels)


def _forget_deleted(svc: Services, step: StepInput) -> JsonDict:
    """The blob is gone: drop this version's record (a newer version's record is left alone)."""
    record = svc.records.get(step["imageId"])
    if record is not None and (record.get("blob") or {}).get("etag") == step["etag"].strip('"'):
        svc.records.delete(step["imageId"])
    return {"ok": False, "superseded": True, "reason": "the image was deleted during analysis"}


def _download_current(svc: Services, step: StepInput) -> bytes | None:
    """The bytes of the blob version this run is for, or None if it was deleted or overwritten."""
    try:
        data, info = svc.blobs.download(step["blobName"])
    except NotFoundError:
        _forget_deleted(svc, step)
        return None
    return data if info.etag == step["etag"].strip('"') else None


# ---------------------------------------------------------------------------------------------------
# fetch_image_metadata
# ---------------------------------------------------------------------------------------------------


def fetch_image_metadata(svc: Services, step: StepInput) -> JsonDict:
    try:
        head = svc.blobs.get_properties(step["blobName"])
        if head.etag == step["etag"].strip('"') and head.size > svc.settings.max_upload_bytes:
            # A direct (SAS) upload is not size-checked by the API: refuse before reading it into memory.
            return _refuse_oversized(svc, step, head)
        data, info = svc.blobs.download(step["blobName"])
    except NotFoundError:
        return _forget_deleted(svc, step)
    if info.etag != step["etag"].strip('"'):
        return SUPERSEDED
    profile, original_name, client = decode_blob_metadata(dict(info.metadata))
    existing = svc.records.get(step["imageId"])
    try:
        facts = inspect_image(data, _limits(svc), info.content_type)
    except ImagepipeError as exc:
        record = new_record(step["imageId"], info, None, profile, original_name, client, step["instanceId"], existing)
        svc.records.upsert_if_not_older(record)
        return failure("fetch_image_metadata", exc.code, f"the stored image is not acceptable: {exc.message}")
    record = new_record(step["imageId"], info, facts, profile, original_name, client, step["instanceId"], existing)
    if profile not in svc.profiles:
        svc.records.upsert_if_not_older(record)
        return failure(
            "fetch_image_metadata",
            "unknown_profile",
            f"blob metadata names profile '{profile}', which is not configured; "
            f"valid: {', '.join(sorted(svc.profiles))}",
        )
    if not svc.records.upsert_if_not_older(record):
        return SUPERSEDED
    return {
        "ok": True,
        "profile": profile,
        "format": facts.format,
        "width": facts.width,
        "height": facts.height,
        "phash": facts.phash,
        "blob": blob_json(info),
    }


def _refuse_oversized(svc: Services, step: StepInput, info: BlobInfo) -> JsonDict:
    profile, original_name, client = decode_blob_metadata(dict(info.metadata))
    existing = svc.records.get(step["imageId"])
    record = new_record(step["imageId"], info, None, profile, original_name, client, step["instanceId"], existing)
    svc.records.upsert_if_not_older(record)
    limit = svc.settings.max_upload_bytes
    return failure(
        "fetch_image_metadata",
        "payload_too_large",
        f"the stored image is {info.size} bytes, above the {limit}-byte limit; upload a smaller image",
    )


# ---------------------------------------------------------------------------------------------------
# analyze_image / read_text
# ---------------------------------------------------------------------------------------------------


def analyze_image(svc: Services, step: StepInput, profile_name: str) -> JsonDict:
    data = _download_current(svc, step)
    if data is None:
        return SUPERSEDED
    from imagepipe import policy

    profile = svc.profiles[profile_name]
    request = AnalysisRequest(features=profile.features, extras=profile.extras, profile=profile.name)
    try:
        analysis = svc.vision.analyze(data, request)
    except PermanentImageError as exc:
        return failure("analyze_image", exc.code, f"{svc.vision.provider} rejected the image: {exc.message}")
    labels = policy.derive_labels(analysis, None, profile)
    text_heavy = policy.is_text_heavy(analysis, profile)
    tags = tag_names(analysis)
    patch: dict[str, Any] = {
        "analysis": analysis,
        "tags": tags,
        "labels": labels,
        "labelNames": sorted({label["name"] for label in labels}),
        "run": {"provider": svc.vision.provider, "modelVersion": analysis.get("modelVersion")},
    }
    read_result = analysis.get("readResult")
    if read_result:
        patch["readResult"] = read_result
        patch["text"] = read_text_of(read_result)
    if merge_into_record(svc.records, step["imageId"], step["etag"], patch) is None:
        return SUPERSEDED
    top = sorted((analysis.get("tagsResult") or {}).get("values", []), key=lambda t: -float(t.get("confidence", 0)))[:5]
    return {
        "ok": True,
        "textHeavy": text_heavy and not read_result,
        "topTags": [t.get("name") for t in top],
        "labels": patch["labelNames"],
        "provider": svc.vision.provider,
    }


def read_text(svc: Services, step: StepInput, profile_name: str) -> JsonDict:
    data = _download_current(svc, step)
    if data is None:
        return SUPERSEDED
    from imagepipe import policy

    profile = svc.profiles[profile_name]
    request = AnalysisRequest(features=("read",), profile=profile.name)
    try:
        result = svc.vision.read_text(data, request)
    except PermanentImageError as exc:
        return failure("read_text", exc.code, f"{svc.vision.provider} could not read text: {exc.message}")
    read_result = result.get("readResult") or {"blocks": []}
    record = svc.records.get(step["imageId"])
    analysis = (record or {}).get("analysis") or {}
    labels = policy.derive_labels(analysis, read_result, profile)
    text = read_text_of(read_result)
    patch = {
        "readResult": read_result,
        "text": text,
        "labels": labels,
        "labelNames": sorted({label["name"] for label in labels}),
    }
    if merge_into_record(svc.records, step["imageId"], step["etag"], patch) is None:
        return SUPERSEDED
    return {"ok": True, "lines": text.count("\n") + 1 if text else 0, "characters": len(text)}


# ---------------------------------------------------------------------------------------------------
# persist_record
# ---------------------------------------------------------------------------------------------------


class PersistInput(StepInput, total=False):
    status: str
    error: JsonDict | None
    run: JsonDict


def persist_record(svc: Services, step: PersistInput) -> JsonDict:
    """Final write: status, error, run facts and near-duplicates; nothing for a deleted or replaced blob."""
    try:
        info = svc.blobs.get_properties(step["blobName"])
    except NotFoundError:
        return _forget_deleted(svc, step)
    if info.etag != step["etag"].strip('"'):
        return SUPERSEDED
    record = svc.records.get(step["imageId"])
    if record is None or (record.get("blob") or {}).get("etag") != info.etag:
        profile, original_name, client = decode_blob_metadata(dict(info.metadata))
        record = new_record(step["imageId"], info, None, profile, original_name, client, step["instanceId"], None)
    status = step.get("status", "completed")
    phash = (record.get("image") or {}).get("phash")
    duplicates: list[JsonDict] = []
    if status == "completed" and phash:
        duplicates = [
            {"id": d["id"], "distance": d.get("distance")}
            for d in svc.records.near_duplicates(
                phash, max_distance=svc.settings.near_duplicate_max_distance, exclude_id=step["imageId"]
            )
        ]
    record.update(
        status=status,
        error=step.get("error") if status == "failed" else None,
        nearDuplicates=duplicates,
        run={**(record.get("run") or {}), **(step.get("run") or {}), "instanceId": step["instanceId"]},
        updatedAt=utc_now(),
    )
    if not svc.records.upsert_if_not_older(record):
        return SUPERSEDED
    return {"ok": True, "status": status, "nearDuplicates": len(duplicates)}


__all__ = [
    "StepInput",
    "PersistInput",
    "TransientServiceError",
    "fetch_image_metadata",
    "analyze_image",
    "read_text",
    "persist_record",
]
