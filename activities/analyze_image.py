"""Activity: run the vision provider's analysis (raises on transient failures so Durable retries)."""

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.domain import JsonDict
from imagepipe.errors import TransientServiceError
from imagepipe.vision_quota import throttled_result
from imagepipe.vocabulary import Step

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def analyze_image(step: JsonDict) -> JsonDict:
    try:
        return pipeline.run_activity(Step.ANALYZE_IMAGE, services(), step)
    except TransientServiceError as exc:  # a 429 is returned as a value for the vision quota, others raise
        return throttled_result(Step.ANALYZE_IMAGE.value, exc, step)
