"""Activity: the final, idempotent record write (status, error, run facts, near-duplicates)."""

from typing import Any

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def persist_record(step: dict[str, Any]) -> dict[str, Any]:
    return pipeline.persist_record(services(), step)
