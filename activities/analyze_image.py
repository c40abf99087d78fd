"""Activity: run the vision provider's analysis (raises on transient failures so Durable retries)."""

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.domain import JsonDict
from imagepipe.vocabulary import Step

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def analyze_image(step: JsonDict) -> JsonDict:
    return pipeline.run_activity(Step.ANALYZE_IMAGE, services(), step)
