"""Reconciliation sweep (timer): every accepted upload ends completed or failed, whatever was lost.

Two passes. Blobs: start runs for blob versions that have no finished record and no run (events lost while
the app or Event Grid was down); idempotent, because the instance id is derived from the blob version.
Records: end the unfinished records that no run will end (``imagepipe.acceptance.settle``): a blob that
storage lost (``failed: lost``), an upload URL that expired unused (``failed: upload_not_received``), a run
that ended without recording a result (``failed: run_ended``). Bounded per sweep; the next sweep continues.
"""

import logging
import os
from collections.abc import Iterator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe.acceptance import settle_unfinished
from imagepipe.composition import Services, services
from imagepipe.errors import NotFoundError
from imagepipe.ids import image_id_from_blob_name
from imagepipe.ports import BlobInfo
from triggers.http_common import off_loop
from triggers.runs import run_status, start_if_new

bp = df.Blueprint()
log = logging.getLogger("imagepipe.reconcile")

MAX_STARTS_PER_SWEEP = 500
MAX_RECORDS_PER_SWEEP = 2000
SCHEDULE = os.environ.get("RECONCILE_SCHEDULE", "0 */10 * * * *")


def _blobs(svc: Services) -> Iterator[BlobInfo]:
    """The images container's blobs; none when the container itself is gone (storage lost it)."""
    try:
        yield from svc.blobs.list()
    except NotFoundError:
        log.error("reconcile: the container %s does not exist; only records are checked", svc.blobs.container)


def _unstarted(svc: Services, limit: int) -> list[tuple[str, BlobInfo]]:
    """Image blobs whose current version has no finished record, at most ``limit`` (blocking: lists storage)."""
    out: list[tuple[str, BlobInfo]] = []
    for blob in _blobs(svc):
        image_id = image_id_from_blob_name(blob.name)
        if image_id is None:
            continue
        record = svc.records.get(image_id)
        if record and record.get("status") in ("completed", "failed") and record["blob"]["etag"] == blob.etag:
            continue
        out.append((image_id, blob))
        if len(out) >= limit:
            break
    return out


async def reconcile(client: df.DurableOrchestrationClient, max_starts: int = MAX_STARTS_PER_SWEEP) -> list[str]:
    """Start missing runs and end unfinished records no run will end; returns the instance ids it started."""
    svc = services()
    started: list[str] = []
    # runs already exist for most candidates (in flight): look at a few times as many as may start
    for image_id, blob in await off_loop(_unstarted, svc, 4 * max_starts):
        instance, is_new = await start_if_new(client, svc.settings, image_id, blob.name, blob.etag, "reconcile")
        if is_new:
            started.append(instance)
            if len(started) >= max_starts:
                log.warning("reconcile: stopped after %d starts; the next sweep continues", max_starts)
                break

    async def run_state(instance: str) -> tuple[str, Any] | None:
        status = await run_status(client, instance)
        if status is None or status.runtime_status is None:
            return None
        return status.runtime_status.name, status.output

    ended = await settle_unfinished(svc, run_state, limit=MAX_RECORDS_PER_SWEEP)
    log.info("reconcile: started %d runs, ended %d unfinished records", len(started), len(ended))
    return started


@bp.function_name("reconcile_images")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def reconcile_images(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    if timer.past_due:
        log.info("reconcile: timer is past due; sweeping now")
    await reconcile(client)
