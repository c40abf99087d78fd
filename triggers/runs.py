"""Starting pipeline runs: one orchestration per blob version, never two (shared by starter and sweep)."""

import logging
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from imagepipe.ids import instance_id
from imagepipe.settings import Settings

log = logging.getLogger("imagepipe.runs")

ORCHESTRATOR = "image_pipeline"


def pipeline_input(settings: Settings, image_id: str, blob_name: str, etag: str, source: str) -> dict[str, Any]:
    return {
        "imageId": image_id,
        "blobName": blob_name,
        "etag": etag.strip('"'),
        "instanceId": instance_id(image_id, etag),
        "source": source,
        "visionQuota": settings.vision_provider == "azure",  # orchestrators/vision_gate.py
        "retry": {
            "firstRetryIntervalInMilliseconds": settings.vision_first_retry_ms,
            "maxNumberOfAttempts": settings.vision_max_attempts,
            "backoffCoefficient": 2.0,
            "maxRetryIntervalInMilliseconds": 60000,
        },
    }


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
