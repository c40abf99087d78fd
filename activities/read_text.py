"""Activity: OCR of a text-heavy image (raises on transient failures so Durable retries)."""

from typing import Any

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def read_text(step: dict[str, Any]) -> dict[str, Any]:
    return pipeline.read_text(services(), step)
