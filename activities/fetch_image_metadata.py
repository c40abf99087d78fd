"""Activity: read the blob version, validate and decode it, write the processing record."""

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.domain import JsonDict
from imagepipe.vocabulary import Step

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def fetch_image_metadata(step: JsonDict) -> JsonDict:
    return pipeline.run_activity(Step.FETCH_IMAGE_METADATA, services(), step)
