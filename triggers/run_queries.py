"""Reading pipeline runs through the Durable client: status JSON, one run's status, and the filtered run
summaries joined with their records (shared by the runs and stats APIs).

Built only on the Durable management API (``DurableOrchestrationClient``) and our records, so it behaves the
same on Azure and on the devhost.
"""

from typing import Any

import azure.durable_functions as df

from imagepipe.composition import services
from imagepipe.errors import NotFoundError
from imagepipe.operators.instances import query_instances
from imagepipe.operators.runs import RunFilter, image_id_of, summarize
from imagepipe.timeutil import iso
from imagepipe.vocabulary import ORCHESTRATOR
from triggers.http_common import off_loop


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
