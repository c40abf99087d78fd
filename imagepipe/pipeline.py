"""What each pipeline activity does, independent of the Functions runtime (the activities/ modules wrap it).

Each step reads the blob version it was started for, calls one port, writes large results (analysis JSON,
OCR) into the record store and returns a small typed result (``imagepipe.domain``), so orchestration history
stays small. Transient failures raise (the orchestration retries them); permanent ones return a ``Failure`` and
are not retried. Outcomes other than success:

- ``Superseded``: a newer blob version exists; its own run does the work.
- ``Deleted``: the client deleted the image through the API (which removes the record before the blob); nothing
  is written.
- ``Failure`` with code ``lost``: the blob vanished otherwise (storage lost it); the record is ended
  ``failed: lost`` with guidance, never deleted (docs/reliability.md).

The orchestration input is untrusted (anyone who can start an instance chooses it): ``activity`` validates each
step's input with its model and refuses a malformed one with a permanent ``invalid_step_input`` failure that
writes nothing. The bytes ``fetch_image_metadata`` validated are kept for the run's vision steps in this
process (``imagepipe.blobcache``), so a run downloads its image once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from imagepipe import policy
from imagepipe.acceptance import lost_error
from imagepipe.blobcache import ValidatedBytes
from imagepipe.domain import (
    Analyzed,
    Deleted,
    DocumentFields,
    Failure,
    Fetched,
    JsonDict,
    Persisted,
    PersistInput,
    RunError,
    StepInput,
    Superseded,
    TextRead,
    VisionStepInput,
    describe,
)
from imagepipe.errors import ImagepipeError, NotFoundError, PermanentImageError
from imagepipe.imagefacts import inspect_image
from imagepipe.labelsets import LabelServices, custom_labels_patch
from imagepipe.ports import (
    AnalysisRequest,
    BlobInfo,
    DocumentFieldExtractor,
    FieldRequest,
    VisionAnalyzer,
)
from imagepipe.profiles import Profile
from imagepipe.records import merge_into_record, new_record, read_text_of, record_origin, tag_names
from imagepipe.timeutil import utc_now
from imagepipe.vocabulary import Step

log = logging.getLogger("imagepipe.pipeline")

NOT_ARRIVED = Superseded(reason="no image has arrived at the upload URL yet")
#: The bytes validated by ``fetch_image_metadata``, for the same run's vision steps in this process.
VALIDATED = ValidatedBytes()


class StepServices(LabelServices, Protocol):
    """What the steps use (``imagepipe.composition.Services`` provides it): label sets' services and these."""

    @property
    def vision(self) -> VisionAnalyzer: ...
    @property
    def fields(self) -> DocumentFieldExtractor: ...


def failure(step: Step, code: str, message: str) -> Failure:
    return Failure(error=RunError.of(code, message, step))


# ---------------------------------------------------------------------------------------------------
# The activity boundary: JSON in, typed step, JSON out
# ---------------------------------------------------------------------------------------------------

In = TypeVar("In", bound=StepInput)


def activity(
    step: Step, svc: StepServices, given: Any, model: type[In], run: Callable[[StepServices, In], Any]
) -> JsonDict:
    """Validate ``given`` with ``model``, run the step, and return its result as JSON (a refusal when invalid)."""
    try:
        checked = model.model_validate(given)
    except ValidationError as exc:
        return failure(step, "invalid_step_input", f"refused: {describe(exc)}").to_json()
    result: Fetched | Analyzed | TextRead | Persisted | Failure | Superseded | Deleted = run(svc, checked)
    return result.to_json()


# ---------------------------------------------------------------------------------------------------
# A blob that is gone
# ---------------------------------------------------------------------------------------------------


def blob_gone(svc: StepServices, step: StepInput, name: Step) -> Failure | Superseded | Deleted:
    """The blob of this run is gone: tell a client's delete from a loss, and never drop an accepted record.

    No record: the client deleted the image through the API (it removes the record first), or the blob was
    never accepted through the API; nothing is written. A record of a newer version, or of an upload URL
    that no image has arrived at yet (a forged start must not end it): superseded. A record already failed
    (e.g. its bytes were refused and removed): that reason stands. Otherwise the record is ended
    ``failed: lost`` with guidance.
    """
    record = svc.records.get(step.image_id)
    if record is None:
        return Deleted()
    stored_etag = (record.get("blob") or {}).get("etag")
    if stored_etag not in (None, step.etag):
        return Superseded()
    if stored_etag is None and (record.get("acceptance") or {}).get("source") == "sas":
        return NOT_ARRIVED  # an upload URL not used yet: only its expiry (the sweep) ends the record
    if record.get("status") == "failed" and isinstance(record.get("error"), dict):
        stored = record["error"]
        reason = RunError.of(
            str(stored.get("code") or "failed"),
            str(stored.get("message") or "the image failed"),
            str(stored.get("step") or name),
            str(stored["guidance"]) if stored.get("guidance") else None,
        )
        return Failure(error=reason)
    error = lost_error(name)
    record.update(
        status="failed",
        error=error,
        run={**(record.get("run") or {}), "instanceId": step.instance_id},
        updatedAt=utc_now(),
    )
    if not svc.records.upsert_if_not_older(record):
        return Superseded()
    log.warning("image %s: blob %s is gone; record ended failed: lost", step.image_id, step.blob_name)
    return Failure(error=RunError.model_validate(error))


def _current_bytes(svc: StepServices, step: StepInput, name: Step) -> bytes | Failure | Superseded | Deleted:
    """The bytes of the run's blob version: validated earlier in this process, else downloaded (when still the
    current version), else the step's outcome when the blob is gone or replaced."""
    cached = VALIDATED.get(step.blob_name, step.etag)
    if cached is not None:
        return cached
    try:
        data, info = svc.blobs.download(step.blob_name)
    except NotFoundError:
        return blob_gone(svc, step, name)
    return data if info.etag == step.etag else Superseded()


def _merged_or_ended(svc: StepServices, step: StepInput, patch: JsonDict) -> Superseded | Deleted | None:
    """Apply ``patch`` to the record of this blob version; the outcome when there is no such record any more."""
    if merge_into_record(svc.records, step.image_id, step.etag, patch) is not None:
        return None
    return Deleted() if svc.records.get(step.image_id) is None else Superseded()


def _remove_refused_blob(svc: StepServices, step: StepInput) -> None:
    """Delete refused bytes from the images container: they must never be stored or served as an image."""
    try:
        current = svc.blobs.get_properties(step.blob_name)
    except NotFoundError:
        return
    if current.etag == step.etag:  # a newer version that arrived meanwhile is judged by its own run
        svc.blobs.delete(step.blob_name)
        log.warning("image %s: refused bytes of %s removed", step.image_id, step.blob_name)


def _refuse(
    svc: StepServices, step: StepInput, info: BlobInfo, existing: JsonDict | None, code: str, message: str
) -> Failure | Superseded:
    """End the record failed with ``message``, remove the refused bytes, and return the permanent failure.

    The record is written first: if the removal fails, the step is retried and removes them then.
    """
    result = failure(Step.FETCH_IMAGE_METADATA, code, f"{message}; the stored bytes were removed")
    origin = record_origin(existing, info.metadata)
    record = new_record(step.image_id, info, None, origin, instance_id=step.instance_id, existing=existing)
    record.update(status="failed", error=result.error.to_json())
    if not svc.records.upsert_if_not_older(record):
        return Superseded()
    _remove_refused_blob(svc, step)
    return result


# ---------------------------------------------------------------------------------------------------
# fetch_image_metadata
# ---------------------------------------------------------------------------------------------------


def fetch_image_metadata(svc: StepServices, step: StepInput) -> Fetched | Failure | Superseded | Deleted:
    """Read the blob version, validate and decode it, and move its record to ``processing``."""
    name = Step.FETCH_IMAGE_METADATA
    limit = svc.settings.max_upload_bytes
    try:
        # A direct (SAS) upload is not size-checked by the API: no more than the limit is read into memory.
        data, info = svc.blobs.download_within(step.blob_name, limit)
    except NotFoundError:
        return blob_gone(svc, step, name)
    if info.etag != step.etag:
        return Superseded()
    if data is None:
        return _refuse(
            svc,
            step,
            info,
            svc.records.get(step.image_id),
            "payload_too_large",
            f"the stored image is {info.size} bytes, above the {limit}-byte limit; upload a smaller image",
        )
    existing = svc.records.get(step.image_id)
    try:
        facts = inspect_image(data, svc.settings.image_limits, info.content_type)
    except ImagepipeError as exc:
        return _refuse(svc, step, info, existing, exc.code, f"the stored image is not acceptable: {exc.message}")
    origin = record_origin(existing, info.metadata)
    record = new_record(step.image_id, info, facts, origin, instance_id=step.instance_id, existing=existing)
    if origin.profile not in svc.profiles:
        svc.records.upsert_if_not_older(record)
        return failure(
            name,
            "unknown_profile",
            f"blob metadata names profile '{origin.profile}', which is not configured; "
            f"valid: {', '.join(sorted(svc.profiles))}",
        )
    if not svc.records.upsert_if_not_older(record):
        return Superseded()
    VALIDATED.put(step.blob_name, step.etag, data)
    return Fetched(
        profile=origin.profile, format=facts.format, width=facts.width, height=facts.height, phash=facts.phash
    )


# ---------------------------------------------------------------------------------------------------
# analyze_image / read_text
# ---------------------------------------------------------------------------------------------------


def _vision_inputs(
    svc: StepServices, step: VisionStepInput, name: Step
) -> tuple[Profile, bytes] | Failure | Superseded | Deleted:
    """The profile and bytes a vision step works on, or the step's outcome when it cannot start."""
    profile = svc.profiles.get(step.profile)
    if profile is None:
        return failure(name, "invalid_step_input", "refused: profile must name a configured profile")
    data = _current_bytes(svc, step, name)
    return (profile, data) if isinstance(data, bytes) else data


def analyze_image(svc: StepServices, step: VisionStepInput) -> Analyzed | Failure | Superseded | Deleted:
    """Analyze with the step's profile; the result says whether OCR should follow."""
    name = Step.ANALYZE_IMAGE
    inputs = _vision_inputs(svc, step, name)
    if not isinstance(inputs, tuple):
        return inputs
    profile, data = inputs
    request = AnalysisRequest(features=profile.features, extras=profile.extras, profile=profile.name)
    try:
        analysis = svc.vision.analyze(data, request)
    except PermanentImageError as exc:
        VALIDATED.discard(step.blob_name, step.etag)
        return failure(name, exc.code, f"{svc.vision.provider} rejected the image: {exc.message}")
    labels = policy.derive_labels(analysis, None, profile)
    read_result = analysis.get("readResult")
    text_heavy = policy.is_text_heavy(analysis, profile) and not read_result
    patch: JsonDict = {
        "analysis": analysis,
        "tags": tag_names(analysis),
        "labels": labels,
        "labelNames": sorted({label["name"] for label in labels}),
        "run": {"provider": svc.vision.provider, "modelVersion": analysis.get("modelVersion")},
    }
    if read_result:
        patch["readResult"] = read_result
        patch["text"] = read_text_of(read_result)
    # Custom labels (docs/custom-labels.md): the active label sets of the profile, on the same bytes.
    patch |= custom_labels_patch(svc.labelsets, svc.embedder, profile.name, data)
    if not text_heavy:
        VALIDATED.discard(step.blob_name, step.etag)
    ended = _merged_or_ended(svc, step, patch)
    if ended is not None:
        return ended
    tags = (analysis.get("tagsResult") or {}).get("values", [])
    top = sorted(tags, key=lambda t: -float(t.get("confidence", 0)))[:5]
    return Analyzed(
        text_heavy=text_heavy,
        top_tags=[str(t.get("name")) for t in top],
        labels=patch["labelNames"],
        provider=svc.vision.provider,
    )


def read_text(svc: StepServices, step: VisionStepInput) -> TextRead | Failure | Superseded | Deleted:
    """OCR with the step's profile; the labels are derived again with the text."""
    name = Step.READ_TEXT
    inputs = _vision_inputs(svc, step, name)
    if not isinstance(inputs, tuple):
        return inputs
    profile, data = inputs
    request = AnalysisRequest(features=("read",), profile=profile.name)
    try:
        result = svc.vision.read_text(data, request)
    except PermanentImageError as exc:
        VALIDATED.discard(step.blob_name, step.etag)
        return failure(name, exc.code, f"{svc.vision.provider} could not read text: {exc.message}")
    VALIDATED.discard(step.blob_name, step.etag)
    read_result = result.get("readResult") or {"blocks": []}
    record = svc.records.get(step.image_id)
    analysis = (record or {}).get("analysis") or {}
    labels = policy.derive_labels(analysis, read_result, profile)
    text = read_text_of(read_result)
    patch = {
        "readResult": read_result,
        "text": text,
        "labels": labels,
        "labelNames": sorted({label["name"] for label in labels}),
    }
    fields = _document_fields(svc, step, profile, data, read_result)
    if fields is not None:
        patch["documentFields"] = fields
    ended = _merged_or_ended(svc, step, patch)
    if ended is not None:
        return ended
    return TextRead(
        lines=text.count("\n") + 1 if text else 0,
        characters=len(text),
        fields=len(fields["fields"]) if fields else 0,
    )


def _document_fields(
    svc: StepServices, step: VisionStepInput, profile: Profile, data: bytes, read_result: JsonDict
) -> JsonDict | None:
    """The typed fields of a document when the profile asks for them (docs/document-fields.md).

    Transient failures raise (the step is retried); an image the field service cannot read, or an answer that
    does not fit the schema, leaves the fields out and the OCR result stands."""
    policy = profile.document_fields
    if policy is None:
        return None
    request = FieldRequest(locale=policy.locale, model=policy.model, profile=profile.name)
    try:
        raw = svc.fields.extract(data, read_result, request)
        return DocumentFields.model_validate(raw).to_json()
    except PermanentImageError as exc:
        log.warning("image %s: %s could not read document fields: %s", step.image_id, svc.fields.provider, exc)
    except ValidationError as exc:
        log.warning("image %s: document fields did not fit the schema: %s", step.image_id, describe(exc))
    return None


# ---------------------------------------------------------------------------------------------------
# persist_record
# ---------------------------------------------------------------------------------------------------


def persist_record(svc: StepServices, step: PersistInput) -> Persisted | Failure | Superseded | Deleted:
    """Final write: status, error, run facts and near-duplicates; reports what it actually did.

    ``Persisted`` only when the record was written; superseded, deleted and lost (the record ended
    ``failed: lost``) are reported as such, so a run never claims a result it did not record.
    """
    VALIDATED.discard(step.blob_name, step.etag)
    try:
        info = svc.blobs.get_properties(step.blob_name)
    except NotFoundError:
        return blob_gone(svc, step, Step.PERSIST_RECORD)
    if info.etag != step.etag:
        return Superseded()
    record = svc.records.get(step.image_id)
    if record is None:
        return Deleted()  # the API removes the record before the blob: never revive a deleted image
    if (record.get("blob") or {}).get("etag") != info.etag:
        origin = record_origin(record, info.metadata)
        record = new_record(step.image_id, info, None, origin, instance_id=step.instance_id, existing=record)
    phash = (record.get("image") or {}).get("phash")
    duplicates: list[JsonDict] = []
    if step.status == "completed" and phash:
        duplicates = [
            {"id": d["id"], "distance": d.get("distance")}
            for d in svc.records.near_duplicates(
                phash, max_distance=svc.settings.near_duplicate_max_distance, exclude_id=step.image_id
            )
        ]
    record.update(
        status=step.status,
        error=step.error.to_json() if step.status == "failed" and step.error else None,
        nearDuplicates=duplicates,
        run={**(record.get("run") or {}), **step.run.to_json(), "instanceId": step.instance_id},
        updatedAt=utc_now(),
    )
    if not svc.records.upsert_if_not_older(record):
        return Superseded()
    return Persisted(status=step.status, near_duplicates=len(duplicates))


# ---------------------------------------------------------------------------------------------------
# Dispatch by step name (the activities/ modules and tests call this)
# ---------------------------------------------------------------------------------------------------


def run_activity(step: Step, svc: StepServices, given: Any) -> JsonDict:
    """Run activity ``step`` on its JSON input and return its JSON result."""
    if step is Step.FETCH_IMAGE_METADATA:
        return activity(step, svc, given, StepInput, fetch_image_metadata)
    if step is Step.ANALYZE_IMAGE:
        return activity(step, svc, given, VisionStepInput, analyze_image)
    if step is Step.READ_TEXT:
        return activity(step, svc, given, VisionStepInput, read_text)
    return activity(step, svc, given, PersistInput, persist_record)


__all__ = [
    "VALIDATED",
    "StepServices",
    "activity",
    "run_activity",
    "analyze_image",
    "blob_gone",
    "fetch_image_metadata",
    "persist_record",
    "read_text",
]
