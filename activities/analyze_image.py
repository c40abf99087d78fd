"""Activity: run the vision provider's analysis (raises on transient failures so Durable retries)."""

from typing import Any

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.errors import TransientServiceError
from imagepipe.vision_quota import throttled_result

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def analyze_image(step: dict[str, Any]) -> dict[str, Any]:
    try:
        return pipeline.analyze_image(services(), step)
    except TransientServiceError as exc:  # a 429 is returned as a value for the vision quota, others raise
        return throttled_result("analyze_image", exc, step)
