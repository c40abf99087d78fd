"""Operator API (admin keys) over pipeline runs: list, inspect, replay (one or in bulk) and purge.

The rules (timeline, filters, paging, replay choice) live in ``imagepipe.operators``; this module does I/O
and HTTP. The dead-letter and statistics APIs are ``triggers.api_deadletters`` and ``triggers.api_stats``.
"""

import logging
import re
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.errors import ConflictError, ImagepipeError, InvalidInputError
from imagepipe.operators.history import build_timeline, is_rewindable, scheduled_count
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
from imagepipe.vocabulary import ACTIVITY_STEPS, ORCHESTRATOR, is_active
from triggers.http_common import base_url, handles_errors, json_object_body, json_response, off_loop, query_int
from triggers.run_queries import fetch_status, fetch_summaries

bp = df.Blueprint()
log = logging.getLogger("imagepipe.operators")

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def require_instance_id(value: str) -> str:
    if not _INSTANCE_ID.match(value or ""):
        raise InvalidInputError(f"'{value[:64]}' is not a run (instance) id", code="invalid_id")
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
    mode = (req.params.get("mode") or json_object_body(req).get("mode") or "auto").lower()
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
    spec = {**dict(req.params), **json_object_body(req)}
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
        except Exception as exc:  # noqa: BLE001 - the management API refused this one; report it and go on with the rest
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
