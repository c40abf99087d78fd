"""Operator API (admin keys) over the dead-letter container: list the undelivered Event Grid events and
redrive them (start the runs they would have started), deleting each blob whose events all went through.

The blob format rules live in ``imagepipe.operators.deadletters``; this module does I/O and HTTP.
"""

import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.errors import InvalidInputError, NotFoundError
from imagepipe.operators import deadletters as dl
from imagepipe.timeutil import iso
from triggers.http_common import handles_errors, json_object_body, json_response, off_loop, query_int
from triggers.runs import start_if_new

bp = df.Blueprint()
log = logging.getLogger("imagepipe.operators")

MAX_DEADLETTER_BLOBS = 1000


def _deadletter_rows(limit_blobs: int = MAX_DEADLETTER_BLOBS) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(event rows, unreadable blobs) of the dead-letter container, oldest blob first."""
    store = services().deadletters
    rows: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    try:
        infos = sorted(store.list(), key=lambda b: (b.last_modified, b.name))[:limit_blobs]
    except NotFoundError:  # no dead-letter container yet: nothing was ever dead-lettered
        return [], []
    for info in infos:
        try:
            data, _ = store.download(info.name)
        except NotFoundError:  # redriven or removed since the listing: nothing left to show
            continue
        try:
            events = dl.parse_blob(data)
        except dl.DeadLetterFormatError as exc:
            bad.append({"blob": info.name, "error": str(exc)})
            continue
        for index, event in enumerate(events):
            row = dl.describe(info.name, index, event)
            row["blobLastModified"] = iso(info.last_modified)
            rows.append(row)
    return rows, bad


@bp.function_name("list_deadletters")
@bp.route(route="deadletters", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def list_deadletters(req: func.HttpRequest) -> func.HttpResponse:
    top = query_int(req, "top", 500, 1, 5000)
    rows, bad = await off_loop(_deadletter_rows)
    return json_response(
        {"container": services().deadletters.container, "items": rows[:top], "total": len(rows), "unreadable": bad}
    )


@bp.function_name("redrive_deadletters")
@bp.route(route="deadletters/redrive", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def redrive_deadletters(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    spec = json_object_body(req)
    ids = spec.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise InvalidInputError("ids must be a list of dead-letter ids, blob names, event ids or image ids")
    dry_run = bool(spec.get("dryRun", False))
    svc = services()
    rows, _ = await off_loop(_deadletter_rows)
    by_blob: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_blob.setdefault(row["blob"], []).append(row)
    results: list[dict[str, Any]] = []
    deleted: list[str] = []
    for blob, blob_rows in by_blob.items():
        if not any(dl.selected(r, ids) for r in blob_rows):
            continue
        blob_ok = True
        for row in blob_rows:
            outcome = await _redrive_event(client, row, dry_run)
            blob_ok = blob_ok and outcome["outcome"] != "error"
            results.append({"id": row["id"], "imageId": row.get("imageId"), **outcome})
        if blob_ok and not dry_run:
            await off_loop(svc.deadletters.delete, blob)
            deleted.append(blob)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return json_response({"dryRun": dry_run, "results": results, "counts": counts, "deletedBlobs": deleted})


async def _redrive_event(client: df.DurableOrchestrationClient, row: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    svc = services()
    settings = svc.settings
    if row.get("eventType") != "Microsoft.Storage.BlobCreated":
        return {"outcome": "ignored", "reason": f"event type {row.get('eventType')} does not start runs"}
    if row.get("container") != settings.images_container or not row.get("imageId") or not row.get("eTag"):
        return {"outcome": "ignored", "reason": "not a blob of the images container with an image id and eTag"}
    try:
        current = await off_loop(svc.blobs.get_properties, str(row["blobName"]))
    except NotFoundError:
        return {"outcome": "ignored", "reason": "the image blob no longer exists"}
    if dry_run:
        return {"outcome": "would_start", "currentETag": current.etag}
    try:
        instance, is_new = await start_if_new(
            client, settings, str(row["imageId"]), str(row["blobName"]), str(row["eTag"]), "deadletter-redrive"
        )
    except Exception as exc:  # noqa: BLE001 - keep the dead-letter blob; the operator can retry
        log.warning("redrive of %s failed: %s", row["id"], exc)
        return {"outcome": "error", "reason": str(exc)}
    return {"outcome": "started" if is_new else "already_exists", "instanceId": instance}
