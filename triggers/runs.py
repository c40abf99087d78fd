"""Starting pipeline runs: one orchestration per blob version, never two (shared by starter and sweep)."""

import logging

import azure.durable_functions as df
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from imagepipe.domain import JsonDict, PipelineInput, RetryPolicy
from imagepipe.ids import instance_id
from imagepipe.settings import Settings
from imagepipe.vocabulary import ORCHESTRATOR

log = logging.getLogger("imagepipe.runs")


def pipeline_input(settings: Settings, image_id: str, blob_name: str, etag: str, source: str) -> JsonDict:
    """The orchestration input of one blob version (``imagepipe.domain.PipelineInput``)."""
    retry = RetryPolicy(
        first_retry_interval_in_milliseconds=settings.vision_first_retry_ms,
        max_number_of_attempts=settings.vision_max_attempts,
    )
    return PipelineInput(
        image_id=image_id,
        blob_name=blob_name,
        etag=etag.strip('"'),
        instance_id=instance_id(image_id, etag),
        source=source,
        retry=retry,
        vision_quota=settings.vision_provider == "azure",  # orchestrators/vision_gate.py
    ).to_json()


async def run_status(client: df.DurableOrchestrationClient, instance: str) -> DurableOrchestrationStatus | None:
    status = await client.get_status(instance)
    if status is None or status.runtime_status is None:
        return None
    return status


async def start_if_new(
    client: df.DurableOrchestrationClient, settings: Settings, image_id: str, blob_name: str, etag: str, source: str
) -> tuple[str, bool]:
    """Start the run of this blob version unless one exists (pending, running, done or failed)."""
    instance = instance_id(image_id, etag)
    if await run_status(client, instance) is not None:
        log.info("run %s already exists; %s delivery ignored", instance, source)
        return instance, False
    await client.start_new(ORCHESTRATOR, instance, pipeline_input(settings, image_id, blob_name, etag, source))
    log.info("started run %s for %s (%s)", instance, blob_name, source)
    return instance, True
