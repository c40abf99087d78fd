"""Activity: read the blob version, validate and decode it, write the processing record."""

from typing import Any

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def fetch_image_metadata(step: dict[str, Any]) -> dict[str, Any]:
    return pipeline.fetch_image_metadata(services(), step)
