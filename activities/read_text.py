"""Activity: OCR of a text-heavy image (raises on transient failures so Durable retries)."""

from typing import Any

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.errors import TransientServiceError
from imagepipe.vision_quota import throttled_result

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def read_text(step: dict[str, Any]) -> dict[str, Any]:
    try:
        return pipeline.read_text(services(), step)
    except TransientServiceError as exc:  # a 429 is returned as a value for the vision quota, others raise
        return throttled_result("read_text", exc, step)
