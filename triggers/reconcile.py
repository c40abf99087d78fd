"""Reconciliation sweep (timer): starts runs for blobs that have no finished record and no run.

Covers events lost while the app or Event Grid was down. Idempotent: the run's instance id is derived from
the blob version, so a blob whose event is merely late is not started twice. Bounded per sweep.
"""

import logging
import os

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.ids import image_id_from_blob_name
from triggers.runs import start_if_new

bp = df.Blueprint()
log = logging.getLogger("imagepipe.reconcile")

MAX_STARTS_PER_SWEEP = 500
SCHEDULE = os.environ.get("RECONCILE_SCHEDULE", "0 */10 * * * *")


async def reconcile(client: df.DurableOrchestrationClient, max_starts: int = MAX_STARTS_PER_SWEEP) -> list[str]:
    """Start missing runs; returns the instance ids it started."""
    svc = services()
    started: list[str] = []
    for blob in svc.blobs.list():
        image_id = image_id_from_blob_name(blob.name)
        if image_id is None:
            continue
        record = svc.records.get(image_id)
        if record and record.get("status") in ("completed", "failed") and record["blob"]["etag"] == blob.etag:
            continue
        instance, is_new = await start_if_new(client, svc.settings, image_id, blob.name, blob.etag, "reconcile")
        if is_new:
            started.append(instance)
            if len(started) >= max_starts:
                log.warning("reconcile: stopped after %d starts; the next sweep continues", max_starts)
                break
    log.info("reconcile: started %d runs", len(started))
    return started


@bp.function_name("reconcile_images")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def reconcile_images(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    if timer.past_due:
        log.info("reconcile: timer is past due; sweeping now")
    await reconcile(client)
