"""Operator API (admin keys): list, inspect, replay and purge pipeline runs; dead-letters; statistics.

Built only on the Durable management API (``DurableOrchestrationClient``) and our records/blobs, so it
behaves the same on Azure and on the devhost. The rules (timeline, filters, paging, replay choice, stats)
live in ``imagepipe.operators``; this module does I/O and HTTP.
"""

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError

from imagepipe.composition import services
from imagepipe.errors import ConflictError, ImagepipeError, InvalidInputError, NotFoundError
from imagepipe.operators import deadletters as dl
from imagepipe.operators.history import build_timeline, is_rewindable, scheduled_count
from imagepipe.operators.instances import query_instances
from imagepipe.operators.runs import (
    REPLAY_MODES,
    RunFilter,
    image_id_of,
    input_of,
    page,
    plan_bulk_replay,
    replay_action,
    replay_limit,
    run_filter_from,
    summarize,
)
from imagepipe.operators.stats import compute_stats
from imagepipe.timeutil import iso
from imagepipe.vocabulary import ACTIVITY_STEPS, ORCHESTRATOR, is_active
from triggers.http_common import base_url, handles_errors, json_response, off_loop, query_int
from triggers.runs import start_if_new

bp = df.Blueprint()
log = logging.getLogger("imagepipe.operators")

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
MAX_DEADLETTER_BLOBS = 1000


# ---------------------------------------------------------------------------------------------------
# Durable client -> status JSON (the management API's shape)
# ---------------------------------------------------------------------------------------------------


def status_json(status: Any) -> dict[str, Any]:
    """A ``DurableOrchestrationStatus`` as the status JSON of the management API."""
    runtime = status.runtime_status
    history = getattr(status, "historyEvents", None)
    if history is None:
        history = status.history
    return {
        "name": status.name,
        "instanceId": status.instance_id,
        "runtimeStatus": runtime.value if runtime is not None else None,
        "input": status.input_,
        "customStatus": status.custom_status,
        "output": status.output,
        "createdTime": iso(status.created_time),
        "lastUpdatedTime": iso(status.last_updated_time),
        "historyEvents": history,
    }


def require_instance_id(value: str) -> str:
    if not _INSTANCE_ID.match(value or ""):
        raise InvalidInputError(f"'{value[:64]}' is not a run (instance) id", code="invalid_id")
    return value


async def fetch_status(client: df.DurableOrchestrationClient, instance: str, history: bool = False) -> dict[str, Any]:
    status = await client.get_status(instance, show_history=history, show_history_output=history, show_input=True)
    if not status or status.runtime_status is None:
        raise NotFoundError(f"run {instance} does not exist (purged, or never started)", code="run_not_found")
    return status_json(status)


_STATUS_KEYS = (
    "name",
    "instanceId",
    "runtimeStatus",
    "input",
    "customStatus",
    "output",
    "createdTime",
    "lastUpdatedTime",
)


def _query_json(raw: dict[str, Any]) -> dict[str, Any]:
    """One instance of the instances query as status JSON (``customStatus`` is omitted when falsy)."""
    return {key: raw.get(key) for key in _STATUS_KEYS}


async def fetch_summaries(client: df.DurableOrchestrationClient, run_filter: RunFilter) -> list[dict[str, Any]]:
    """Summaries of every pipeline run the filter's status/time part selects (then filtered in full).

    Pages through the management API (``query_instances``): the SDK's ``get_status_by`` stops at the first
    page, which on Azure is 100 instances.
    """
    statuses = await query_instances(
        client,
        created_from=run_filter.created_from,
        created_to=run_filter.created_to,
        runtime_status=list(run_filter.statuses),
    )
    return await off_loop(_summaries, statuses, run_filter)


def _summaries(statuses: list[dict[str, Any]], run_filter: RunFilter) -> list[dict[str, Any]]:
    """The filtered summaries of pipeline runs, each joined with its record (blocking: one read per run)."""
    records = services().records
    out: list[dict[str, Any]] = []
    for status in statuses:
        data = _query_json(status)
        if data["name"] and data["name"] != ORCHESTRATOR:
            continue
        image_id = image_id_of(data)
        summary = summarize(data, records.get(image_id) if image_id else None)
        if run_filter.matches(summary):
            out.append(summary)
    return out


def _body(req: func.HttpRequest) -> dict[str, Any]:
    if not req.get_body():
        return {}
    try:
        value = req.get_json()
    except ValueError as exc:
        raise InvalidInputError("the body must be a JSON object") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("the body must be a JSON object")
    return value


def _links(req: func.HttpRequest, instance: str, image_id: str | None) -> dict[str, str]:
    root = base_url(req)
    links = {"self": f"{root}/api/runs/{instance}", "replay": f"{root}/api/runs/{instance}/replay"}
    if image_id:
        links.update(record=f"{root}/api/images/{image_id}", status=f"{root}/api/images/{image_id}/status")
        links["image"] = f"{root}/api/dashboard/images/{image_id}/content"
    return links


async def replay_one(client: df.DurableOrchestrationClient, instance: str, action: str) -> dict[str, Any]:
    """Rewind (Failed: completed steps are not run again) or restart (purge, then the same input, same id)."""
    if action == "rewind":
        await client.rewind(instance, "replayed by an operator")
        return {"instanceId": instance, "action": "rewind", "accepted": True}
    status = await fetch_status(client, instance)
    given = input_of(status)
    if not given:
        raise ConflictError(f"run {instance} has no input to restart with", code="no_input")
    await client.purge_instance_history(instance)
    await client.start_new(status["name"] or ORCHESTRATOR, instance, given)
    return {"instanceId": instance, "action": "restart", "accepted": True}


# ---------------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------------


@bp.function_name("list_runs")
@bp.route(route="runs", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def list_runs(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    run_filter = run_filter_from(dict(req.params))
    top = query_int(req, "top", 50, 1, 1000)
    summaries = await fetch_summaries(client, run_filter)
    items, continuation = page(summaries, top, req.params.get("continuation") or None)
    root = base_url(req)
    for item in items:
        item["links"] = {"self": f"{root}/api/runs/{item['instanceId']}"}
    return json_response({"items": items, "continuation": continuation, "total": len(summaries)})


@bp.function_name("get_run")
@bp.route(route="runs/{id}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def get_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance = require_instance_id(req.route_params.get("id", ""))
    status = await fetch_status(client, instance, history=True)
    image_id = image_id_of(status)
    record = await off_loop(services().records.get, image_id) if image_id else None
    events = status.get("historyEvents") or []
    body = summarize(status, record)
    timeline = build_timeline(events, status.get("runtimeStatus"), status.get("customStatus"))
    body.update(
        input=input_of(status) or status.get("input"),
        customStatus=status.get("customStatus"),
        output=status.get("output") if status.get("runtimeStatus") != "Completed" else None,
        timeline=timeline,
        rewindable=status.get("runtimeStatus") == "Failed" and is_rewindable(timeline),
        scheduled={name: scheduled_count(events, name) for name in ACTIVITY_STEPS},
        record=(
            None
            if record is None
            else {k: record.get(k) for k in ("id", "status", "profile", "error", "run", "updatedAt", "blob")}
        ),
        links=_links(req, instance, image_id),
    )
    if req.params.get("history") in ("1", "true", "True"):
        body["history"] = events
    return json_response(body)


async def _rewindable(status: dict[str, Any]) -> bool:
    if status.get("runtimeStatus") != "Failed":
        return False
    return is_rewindable(build_timeline(status.get("historyEvents") or [], "Failed", status.get("customStatus")))


@bp.function_name("replay_run")
@bp.route(route="runs/{id}/replay", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def replay_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance = require_instance_id(req.route_params.get("id", ""))
    mode = (req.params.get("mode") or _body(req).get("mode") or "auto").lower()
    status = await fetch_status(client, instance, history=True)
    action = replay_action(status.get("runtimeStatus"), mode, await _rewindable(status))
    result = await replay_one(client, instance, action)
    result["previousStatus"] = status.get("runtimeStatus")
    result["links"] = _links(req, instance, image_id_of(status))
    return json_response(result, 202, {"Location": result["links"]["self"]})


@bp.function_name("replay_runs")
@bp.route(route="runs/replay", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def replay_runs(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    spec = {**dict(req.params), **_body(req)}
    mode = str(spec.get("mode") or "auto").lower()
    if mode not in REPLAY_MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(REPLAY_MODES)}", code="invalid_mode")
    dry_run = spec.get("dryRun", True)
    dry_run = dry_run if isinstance(dry_run, bool) else str(dry_run).lower() not in ("0", "false", "no")
    limit = replay_limit(spec.get("limit"))
    run_filter = run_filter_from(spec)
    summaries = await fetch_summaries(client, RunFilter(run_filter.statuses or ("Failed",)))
    for summary in summaries:
        if summary.get("runtimeStatus") == "Failed" and run_filter.matches(summary):
            summary["rewindable"] = await _rewindable(await fetch_status(client, str(summary["instanceId"]), True))
    planned, skipped, matched = plan_bulk_replay(summaries, run_filter, mode, limit)
    body: dict[str, Any] = {"dryRun": dry_run, "mode": mode, "limit": limit, "matched": matched, "skipped": skipped}
    if dry_run:
        body["wouldReplay"] = planned
        return json_response(body)
    results = []
    for row in planned:
        try:
            results.append({**row, **await replay_one(client, str(row["instanceId"]), str(row["action"]))})
        except ImagepipeError as exc:
            results.append({**row, "accepted": False, "error": {"code": exc.code, "message": exc.message}})
        except Exception as exc:  # the management API refused this one; report it and go on with the rest
            log.warning("bulk replay of %s failed: %s", row["instanceId"], exc)
            results.append({**row, "accepted": False, "error": {"code": "replay_failed", "message": str(exc)}})
    body["replayed"] = results
    body["accepted"] = sum(1 for r in results if r.get("accepted"))
    return json_response(body, 202)


@bp.function_name("purge_run")
@bp.route(route="runs/{id}", methods=["DELETE"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def purge_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance = require_instance_id(req.route_params.get("id", ""))
    status = await fetch_status(client, instance)
    if is_active(status.get("runtimeStatus")):
        raise ConflictError(f"run {instance} is {status['runtimeStatus']}; terminate it first", code="run_active")
    result = await client.purge_instance_history(instance)
    deleted = getattr(result, "instances_deleted", None)
    return json_response({"instanceId": instance, "instancesDeleted": deleted if deleted is not None else 1})


# ---------------------------------------------------------------------------------------------------
# dead-letters
# ---------------------------------------------------------------------------------------------------


def _deadletter_rows(limit_blobs: int = MAX_DEADLETTER_BLOBS) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(event rows, unreadable blobs) of the dead-letter container, oldest blob first."""
    store = services().deadletters
    rows: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    try:
        infos = sorted(store.list(), key=lambda b: (b.last_modified, b.name))[:limit_blobs]
    except ResourceNotFoundError:  # no dead-letter container yet: nothing was ever dead-lettered
        return [], []
    except ImagepipeError as exc:
        if exc.http_status == 404:
            return [], []
        raise
    for info in infos:
        data, _ = store.download(info.name)
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
    spec = _body(req)
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
    except Exception as exc:  # keep the dead-letter blob; the operator can retry
        log.warning("redrive of %s failed: %s", row["id"], exc)
        return {"outcome": "error", "reason": str(exc)}
    return {"outcome": "started" if is_new else "already_exists", "instanceId": instance}


# ---------------------------------------------------------------------------------------------------
# stats
# ---------------------------------------------------------------------------------------------------


@bp.function_name("get_stats")
@bp.route(route="stats", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def get_stats(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    window = query_int(req, "windowMinutes", 60, 1, 7 * 24 * 60)
    now = datetime.now(UTC)
    # runs created before the window may finish inside it: look back twice the window for those
    summaries = await fetch_summaries(client, RunFilter(created_from=now - timedelta(minutes=2 * window)))
    return json_response(compute_stats(summaries, now, window))
