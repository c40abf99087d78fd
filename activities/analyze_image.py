"""Activity: run the vision provider's analysis (raises on transient failures so Durable retries)."""

from typing import Any

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def analyze_image(step: dict[str, Any]) -> dict[str, Any]:
    return pipeline.analyze_image(services(), step)
