"""What each pipeline activity does, independent of the Functions runtime (the activities/ modules wrap it).

Each step reads the blob version it was started for, calls one port, writes large results (analysis JSON,
OCR) into the record store and returns a small JSON summary, so orchestration history stays small.
Transient failures raise (the orchestration retries them); permanent ones return
``{"ok": False, "error": {...}}`` and are not retried. Outcomes other than success:

- ``{"ok": False, "superseded": True}``: a newer blob version exists; its own run does the work.
- ``{"ok": False, "deleted": True}``: the client deleted the image through the API (which removes the
  record before the blob); nothing is written.
- ``{"ok": False, "error": {"code": "lost", ...}}``: the blob vanished otherwise (storage lost it); the
  record is ended ``failed: lost`` with guidance, never deleted (docs/reliability.md).

The orchestration input is untrusted (anyone who can start an instance chooses it): every step first checks
that its input is well-formed and that ``blobName`` is the blob of ``imageId``, and refuses otherwise with a
permanent ``invalid_step_input`` failure that writes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypedDict

from imagepipe.acceptance import lost_error
from imagepipe.composition import Services
from imagepipe.errors import ImagepipeError, NotFoundError, PermanentImageError, TransientServiceError
from imagepipe.ids import image_id_from_blob_name, instance_id, is_image_id
from imagepipe.imagefacts import Limits, inspect_image
from imagepipe.ports import AnalysisRequest, BlobInfo, JsonDict
from imagepipe.profiles import Profile
from imagepipe.records import (
    blob_json,
    merge_into_record,
    new_record,
    read_text_of,
    record_origin,
    tag_names,
    utc_now,
)

log = logging.getLogger("imagepipe.pipeline")


class StepInput(TypedDict):
    imageId: str
    blobName: str
    etag: str
    instanceId: str


def failure(step: str, code: str, message: str) -> JsonDict:
    return {"ok": False, "error": {"code": code, "message": message, "step": step}}


SUPERSEDED: JsonDict = {"ok": False, "superseded": True}
DELETED: JsonDict = {"ok": False, "deleted": True, "reason": "the image was deleted through the API"}
NOT_ARRIVED: JsonDict = {"ok": False, "superseded": True, "reason": "no image has arrived at the upload URL yet"}
FINAL_STATUSES = ("completed", "failed")
MAX_ETAG = 256
MAX_TEXT = 2000


# ---------------------------------------------------------------------------------------------------
# Input checks (the orchestration input is untrusted)
# ---------------------------------------------------------------------------------------------------


class StepRefused(Exception):
    """The step input is malformed or names another image's blob; carries the permanent failure."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.result = failure(step, "invalid_step_input", f"refused: {message}")


def _text(value: Any, limit: int = MAX_TEXT) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def check_step(name: str, given: Any) -> StepInput:
    """``given`` as a ``StepInput`` when its fields have the right types and belong together, else refused."""
    if not isinstance(given, dict):
        raise StepRefused(name, f"the input must be a JSON object, not {type(given).__name__}")
    image_id, blob, etag, instance = (given.get(k) for k in ("imageId", "blobName", "etag", "instanceId"))
    if not isinstance(image_id, str) or not is_image_id(image_id):
        raise StepRefused(name, "imageId must be an image id (26 characters, 0-9 and lowercase letters)")
    if not isinstance(blob, str) or image_id_from_blob_name(blob) != image_id:
        raise StepRefused(name, f"blobName must name the blob of image {image_id} (<imageId>.<ext>)")
    if not isinstance(etag, str) or not _text(etag, MAX_ETAG):
        raise StepRefused(name, "etag must be a non-empty string")
    if instance != instance_id(image_id, etag):
        raise StepRefused(name, "instanceId does not belong to this image and blob version")
    return {"imageId": image_id, "blobName": blob, "etag": etag.strip('"'), "instanceId": instance}


def _check_profile(svc: Services, name: str, given: Any, explicit: str | None) -> str:
    profile = explicit if explicit is not None else given.get("profile") if isinstance(given, dict) else None
    if not isinstance(profile, str) or profile not in svc.profiles:
        raise StepRefused(name, "profile must name a configured profile")
    return profile


def _limits(svc: Services) -> Limits:
    s = svc.settings
    return Limits(s.max_upload_bytes, s.min_dimension_px, s.max_dimension_px, s.max_pixels)


# ---------------------------------------------------------------------------------------------------
# A blob that is gone
# ---------------------------------------------------------------------------------------------------


def blob_gone(svc: Services, step: StepInput, name: str) -> JsonDict:
    """The blob of this run is gone: tell a client's delete from a loss, and never drop an accepted record.

    No record: the client deleted the image through the API (it removes the record first), or the blob was
    never accepted through the API; nothing is written. A record of a newer version, or of an upload URL
    that no image has arrived at yet (a forged start must not end it): superseded. A record already failed
    (e.g. its bytes were refused and removed): that reason stands. Otherwise the record is ended
    ``failed: lost`` with guidance.
    """
    record = svc.records.get(step["imageId"])
    if record is None:
        return DELETED
    stored_etag = (record.get("blob") or {}).get("etag")
    if stored_etag not in (None, step["etag"]):
        return SUPERSEDED
    if stored_etag is None and (record.get("acceptance") or {}).get("source") == "sas":
        return NOT_ARRIVED  # an upload URL not used yet: only its expiry (the sweep) ends the record
    if record.get("status") == "failed" and isinstance(record.get("error"), dict):
        return {"ok": False, "error": record["error"]}
    error = lost_error(name)
    record.update(
        status="failed",
        error=error,
        run={**(record.get("run") or {}), "instanceId": step["instanceId"]},
        updatedAt=utc_now(),
    )
    if not svc.records.upsert_if_not_older(record):
        return SUPERSEDED
    log.warning("image %s: blob %s is gone; record ended failed: lost", step["imageId"], step["blobName"])
    return {"ok": False, "error": error}


def _download_current(svc: Services, step: StepInput, name: str) -> bytes | JsonDict:
    """The bytes of the blob version this run is for, or the step's outcome when it is gone or replaced."""
    try:
        data, info = svc.blobs.download(step["blobName"])
    except NotFoundError:
        return blob_gone(svc, step, name)
    return data if info.etag == step["etag"] else SUPERSEDED


def _remove_refused_blob(svc: Services, step: StepInput) -> None:
    """Delete refused bytes from the images container: they must never be stored or served as an image."""
    try:
        current = svc.blobs.get_properties(step["blobName"])
    except NotFoundError:
        return
    if current.etag == step["etag"]:  # a newer version that arrived meanwhile is judged by its own run
        svc.blobs.delete(step["blobName"])
        log.warning("image %s: refused bytes of %s removed", step["imageId"], step["blobName"])


def _refuse(
    svc: Services, step: StepInput, info: BlobInfo, existing: JsonDict | None, code: str, message: str
) -> JsonDict:
    """End the record failed with ``message``, remove the refused bytes, and return the permanent failure.

    The record is written first: if the removal fails, the step is retried and removes them then.
    """
    profile, original_name, client = record_origin(existing, info.metadata)
    result = failure("fetch_image_metadata", code, f"{message}; the stored bytes were removed")
    record = new_record(step["imageId"], info, None, profile, original_name, client, step["instanceId"], existing)
    record.update(status="failed", error=result["error"])
    if not svc.records.upsert_if_not_older(record):
        return SUPERSEDED
    _remove_refused_blob(svc, step)
    return result


# ---------------------------------------------------------------------------------------------------
# fetch_image_metadata
# ---------------------------------------------------------------------------------------------------


def fetch_image_metadata(svc: Services, given: Any) -> JsonDict:
    name = "fetch_image_metadata"
    try:
        step = check_step(name, given)
    except StepRefused as refused:
        return refused.result
    try:
        head = svc.blobs.get_properties(step["blobName"])
        if head.etag == step["etag"] and head.size > svc.settings.max_upload_bytes:
            # A direct (SAS) upload is not size-checked by the API: refuse before reading it into memory.
            limit = svc.settings.max_upload_bytes
            return _refuse(
                svc,
                step,
                head,
                svc.records.get(step["imageId"]),
                "payload_too_large",
                f"the stored image is {head.size} bytes, above the {limit}-byte limit; upload a smaller image",
            )
        data, info = svc.blobs.download(step["blobName"])
    except NotFoundError:
        return blob_gone(svc, step, name)
    if info.etag != step["etag"]:
        return SUPERSEDED
    existing = svc.records.get(step["imageId"])
    try:
        facts = inspect_image(data, _limits(svc), info.content_type)
    except ImagepipeError as exc:
        return _refuse(svc, step, info, existing, exc.code, f"the stored image is not acceptable: {exc.message}")
    profile, original_name, client = record_origin(existing, info.metadata)
    record = new_record(step["imageId"], info, facts, profile, original_name, client, step["instanceId"], existing)
    if profile not in svc.profiles:
        svc.records.upsert_if_not_older(record)
        return failure(
            name,
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


# ---------------------------------------------------------------------------------------------------
# analyze_image / read_text
# ---------------------------------------------------------------------------------------------------


def _begin_vision_step(
    svc: Services, name: str, given: Any, profile_name: str | None
) -> tuple[StepInput, Profile, bytes] | JsonDict:
    """The checked input, the profile and the bytes of the current blob version, or the step's outcome."""
    try:
        step = check_step(name, given)
        profile = svc.profiles[_check_profile(svc, name, given, profile_name)]
    except StepRefused as refused:
        return refused.result
    data = _download_current(svc, step, name)
    if isinstance(data, dict):
        return data
    return step, profile, data


def analyze_image(svc: Services, given: Any, profile_name: str | None = None) -> JsonDict:
    """Analyze with the profile named by ``profile_name`` or, when None, by the input's ``profile``."""
    begun = _begin_vision_step(svc, "analyze_image", given, profile_name)
    if isinstance(begun, dict):
        return begun
    step, profile, data = begun
    from imagepipe import policy

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


def read_text(svc: Services, given: Any, profile_name: str | None = None) -> JsonDict:
    """OCR with the profile named by ``profile_name`` or, when None, by the input's ``profile``."""
    begun = _begin_vision_step(svc, "read_text", given, profile_name)
    if isinstance(begun, dict):
        return begun
    step, profile, data = begun
    from imagepipe import policy

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


MAX_RUN_FACTS = 4096


def check_persist(given: Any) -> PersistInput:
    """The persist input when well-formed (status, a reason for a failure, small run facts), else refused."""
    name = "persist_record"
    step: PersistInput = {**check_step(name, given)}  # type: ignore[typeddict-item]
    status = given.get("status", "completed")
    if status not in FINAL_STATUSES:
        raise StepRefused(name, f"status must be one of {', '.join(FINAL_STATUSES)}")
    error = given.get("error")
    if status == "failed":
        if not isinstance(error, dict) or not all(_text(error.get(k)) for k in ("code", "message", "step")):
            raise StepRefused(name, "a failed status needs an error with string code, message and step")
        step["error"] = {k: str(error[k]) for k in ("code", "message", "step", "guidance") if _text(error.get(k))}
    run = given.get("run") or {}
    if not isinstance(run, dict) or len(json.dumps(run, default=str)) > MAX_RUN_FACTS:
        raise StepRefused(name, f"run must be a JSON object of at most {MAX_RUN_FACTS} characters")
    step["status"], step["run"] = status, run
    return step


def persist_record(svc: Services, given: Any) -> JsonDict:
    """Final write: status, error, run facts and near-duplicates; reports what it actually did.

    ``{"ok": True, "status": ...}`` only when the record was written; superseded, deleted and lost (the
    record ended ``failed: lost``) are reported as such, so a run never claims a result it did not record.
    """
    try:
        step = check_persist(given)
    except StepRefused as refused:
        return refused.result
    try:
        info = svc.blobs.get_properties(step["blobName"])
    except NotFoundError:
        return blob_gone(svc, step, "persist_record")
    if info.etag != step["etag"]:
        return SUPERSEDED
    record = svc.records.get(step["imageId"])
    if record is None:
        return DELETED  # the API removes the record before the blob: never revive a deleted image
    if (record.get("blob") or {}).get("etag") != info.etag:
        profile, original_name, client = record_origin(record, info.metadata)
        record = new_record(step["imageId"], info, None, profile, original_name, client, step["instanceId"], record)
    status = step["status"]
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
        run={**(record.get("run") or {}), **step["run"], "instanceId": step["instanceId"]},
        updatedAt=utc_now(),
    )
    if not svc.records.upsert_if_not_older(record):
        return SUPERSEDED
    return {"ok": True, "status": status, "nearDuplicates": len(duplicates)}


__all__ = [
    "StepInput",
    "PersistInput",
    "StepRefused",
    "check_step",
    "blob_gone",
    "TransientServiceError",
    "fetch_image_metadata",
    "analyze_image",
    "read_text",
    "persist_record",
]
