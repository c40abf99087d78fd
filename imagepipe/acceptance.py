"""Accepted uploads are never lost: the durable acceptance record, and how an unfinished one is ended.

An upload is *accepted* when the client gets 202 (``POST /api/images``) or an upload URL
(``POST /api/uploads``). Before that answer, the record store holds a ``pending`` record for the image
(``store_accepted_upload``, ``record_upload_url``), so from then on the image always has a record that ends
``completed`` or ``failed`` with a reason the client can read (docs/reliability.md):

- the pipeline run moves it to ``processing`` and ends it (``imagepipe.pipeline``);
- the reconcile sweep ends what no run will end (``settle``/``settle_unfinished``): a blob that storage
  lost (``lost``), an upload URL that expired unused (``upload_not_received``), a run that ended without
  recording a result (``run_ended``).

Order on ``POST /api/images``: record first, then the blob. A failed record write stores nothing (503);
a failed blob write removes the record again (503); a crash between the two leaves a pending record with
no blob, which the sweep ends ``failed: lost`` — never a blob nobody accepted, never a 202 without a record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from imagepipe.composition import Services
from imagepipe.errors import ImagepipeError, NotFoundError, TransientServiceError
from imagepipe.ids import image_id_from_blob_name, instance_id
from imagepipe.ports import BlobInfo, JsonDict, SearchQuery
from imagepipe.records import record_skeleton
from imagepipe.timeutil import iso, utc_now
from imagepipe.vocabulary import is_active

log = logging.getLogger("imagepipe.acceptance")

UNFINISHED = ("pending", "processing")

#: How a run's state is looked up by the sweep: instance id -> (runtime status name, output) or None.
RunState = Callable[[str], Awaitable[tuple[str, Any] | None]]


# ---------------------------------------------------------------------------------------------------
# Reasons (what the client reads in ``error``)
# ---------------------------------------------------------------------------------------------------


def lost_error(step: str) -> JsonDict:
    return {
        "code": "lost",
        "message": "the image was accepted, but its stored bytes are gone (storage lost them before the "
        "analysis finished); it was not analysed",
        "step": step,
        "guidance": "upload the image again (it gets a new id)",
    }


def upload_not_received_error(expires_at: str) -> JsonDict:
    return {
        "code": "upload_not_received",
        "message": f"no image arrived at the upload URL before it expired at {expires_at}",
        "step": "upload",
        "guidance": "request a new upload URL (POST /api/uploads) and PUT the image before it expires",
    }


def run_ended_error(instance: str, runtime: str, reason: str) -> JsonDict:
    return {
        "code": "run_ended",
        "message": f"the run {instance} ended ({runtime}) without recording a result: {reason[:300]}",
        "step": "run",
        "guidance": "an operator can replay the run (POST /api/runs/{id}/replay); or upload the image again",
    }


# ---------------------------------------------------------------------------------------------------
# Acceptance (called by the upload API before it answers)
# ---------------------------------------------------------------------------------------------------


def pending_record(
    image_id: str,
    container: str,
    name: str,
    *,
    content_type: str,
    profile: str,
    original_name: str | None,
    client: Mapping[str, str],
    source: str,
    upload_expires_at: str | None = None,
    size: int | None = None,
) -> JsonDict:
    """The record of an accepted image whose blob has not been processed yet (docs/contracts.md)."""
    now = utc_now()
    return record_skeleton(
        image_id,
        profile=profile,
        status="pending",
        blob={
            "container": container,
            "name": name,
            "etag": None,
            "size": size,
            "contentType": content_type,
            "lastModified": None,
        },
        image=None,
        client={"originalName": original_name, "metadata": dict(client)},
        run={},
        acceptance={"source": source, "acceptedAt": now, "uploadExpiresAt": upload_expires_at},
        created_at=now,
        now=now,
    )


def _write_acceptance(svc: Services, record: JsonDict) -> None:
    try:
        svc.records.upsert_if_not_older(record)
    except Exception as exc:  # any store failure: nothing was stored, the client must retry
        log.error("could not record the acceptance of %s: %s", record["id"], exc)
        raise TransientServiceError(
            "the upload could not be recorded (the record store is unavailable); nothing was stored; retry later",
            code="records_unavailable",
        ) from exc


def store_accepted_upload(
    svc: Services,
    image_id: str,
    name: str,
    data: bytes,
    *,
    content_type: str,
    metadata: Mapping[str, str],
    profile: str,
    original_name: str | None,
    client: Mapping[str, str],
) -> BlobInfo:
    """Record the acceptance, then store the blob; on any failure nothing stays and a named error is raised."""
    record = pending_record(
        image_id,
        svc.blobs.container,
        name,
        content_type=content_type,
        profile=profile,
        original_name=original_name,
        client=client,
        source="upload",
        size=len(data),
    )
    _write_acceptance(svc, record)
    try:
        return svc.blobs.put(name, data, content_type=content_type, metadata=metadata)
    except Exception as exc:
        try:
            svc.records.delete(image_id)
        except Exception as cleanup:  # noqa: BLE001 - the sweep ends the pending record (no blob): never a silent orphan
            log.error("could not remove the acceptance of %s after a failed blob write: %s", image_id, cleanup)
        if isinstance(exc, ImagepipeError):  # a named failure (outage, refused identity …) keeps its meaning
            raise
        raise TransientServiceError(
            f"the image could not be stored ({type(exc).__name__}); nothing was kept; retry later",
            code="storage_unavailable",
        ) from exc


def record_upload_url(
    svc: Services,
    image_id: str,
    name: str,
    *,
    content_type: str,
    profile: str,
    original_name: str | None,
    client: Mapping[str, str],
    expires_in_s: int,
) -> JsonDict:
    """Record an upload URL's acceptance (awaiting upload until ``expires_in_s``); call it before answering."""
    expires_at = iso(datetime.now(UTC) + timedelta(seconds=expires_in_s))
    record = pending_record(
        image_id,
        svc.blobs.container,
        name,
        content_type=content_type,
        profile=profile,
        original_name=original_name,
        client=client,
        source="sas",
        upload_expires_at=expires_at,
    )
    _write_acceptance(svc, record)
    return record


# ---------------------------------------------------------------------------------------------------
# Status of an image whose blob is absent (GET /api/images/{id}/status)
# ---------------------------------------------------------------------------------------------------


def status_without_blob(record: JsonDict) -> JsonDict:
    """The status fields of an accepted image that has no blob now (not yet uploaded, or gone)."""
    status = str(record.get("status") or "pending")
    body: JsonDict = {"status": status, "updatedAt": record.get("updatedAt")}
    if status in ("completed", "failed"):
        return {**body, "stage": status, "error": record.get("error")}
    acceptance = record.get("acceptance") or {}
    if status == "pending" and acceptance.get("source") == "sas" and not (record.get("blob") or {}).get("etag"):
        return {**body, "stage": "awaiting_upload", "uploadExpiresAt": acceptance.get("uploadExpiresAt")}
    return {**body, "stage": "blob_missing"}


# ---------------------------------------------------------------------------------------------------
# Ending unfinished records (the reconcile sweep)
# ---------------------------------------------------------------------------------------------------


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def settle(
    record: JsonDict, blob: BlobInfo | None, run: tuple[str, Any] | None, now: datetime, grace_s: float
) -> JsonDict | None:
    """The error that ends an unfinished record, or None to leave it (a run is or will be on it).

    ``blob`` is the live blob of the record's name (None when absent); ``run`` the state of the run for that
    blob version. Records younger than ``grace_s`` (since their last update) are left alone: an upload or a
    run may be writing them right now.
    """
    if record.get("status") not in UNFINISHED:
        return None
    updated = _ts(record.get("updatedAt"))
    if updated is not None and now - updated < timedelta(seconds=grace_s):
        return None
    stored = record.get("blob") or {}
    if blob is None:
        acceptance = record.get("acceptance") or {}
        if record.get("status") == "pending" and acceptance.get("source") == "sas" and not stored.get("etag"):
            expires = _ts(acceptance.get("uploadExpiresAt"))
            if expires is not None and now < expires + timedelta(seconds=grace_s):
                return None
            return upload_not_received_error(str(acceptance.get("uploadExpiresAt")))
        return lost_error("storage")
    if stored.get("etag") != blob.etag or run is None:
        return None  # the sweep's blob pass starts (or has started) the run of the live version
    runtime, output = run
    if is_active(runtime):
        return None
    return run_ended_error(instance_id(str(record["id"]), blob.etag), runtime, str(output or "no reason recorded"))


def end_record(svc: Services, record: JsonDict, error: JsonDict) -> bool:
    """Write ``record`` as failed with ``error`` unless it was deleted or finished meanwhile."""
    current = svc.records.get(str(record["id"]))
    if current is None or current.get("status") not in UNFINISHED:
        return False
    if (current.get("blob") or {}).get("etag") != (record.get("blob") or {}).get("etag"):
        return False  # a run moved it to another blob version meanwhile
    current.update(status="failed", error=error, updatedAt=utc_now())
    return svc.records.upsert_if_not_older(current)


async def settle_unfinished(
    svc: Services, run_state: RunState, *, now: datetime | None = None, grace_s: float | None = None, limit: int = 500
) -> list[tuple[str, str]]:
    """End every unfinished record that no run will end; returns ``(image id, error code)`` of those ended."""
    moment = now or datetime.now(UTC)
    grace = svc.settings.reconcile_grace_s if grace_s is None else grace_s
    ended: list[tuple[str, str]] = []
    checked = 0
    for status in UNFINISHED:
        token: str | None = None
        while checked < limit:
            query = SearchQuery(status=status, limit=100, continuation=token)
            page = await asyncio.to_thread(svc.records.search, query)
            for record in page.items:
                checked += 1
                code = await _settle_one(svc, record, run_state, moment, grace)
                if code is not None:
                    ended.append((str(record["id"]), code))
            token = page.continuation
            if not token:
                break
    return ended


async def _settle_one(svc: Services, record: JsonDict, run_state: RunState, now: datetime, grace: float) -> str | None:
    name = str((record.get("blob") or {}).get("name") or "")
    if image_id_from_blob_name(name) != record.get("id"):
        log.warning("reconcile: record %s names blob %r, not its own; left alone", record.get("id"), name[:80])
        return None
    try:
        blob: BlobInfo | None = await asyncio.to_thread(svc.blobs.get_properties, name)
    except NotFoundError:
        blob = None
    run = await run_state(instance_id(str(record["id"]), blob.etag)) if blob is not None else None
    error = settle(record, blob, run, now, grace)
    if error is None or not await asyncio.to_thread(end_record, svc, record, error):
        return None
    log.warning("reconcile: image %s ended failed (%s): %s", record["id"], error["code"], error["message"])
    return str(error["code"])
