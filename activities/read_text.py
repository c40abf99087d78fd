"""Activity: OCR of a text-heavy image (raises on transient failures so Durable retries)."""

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.domain import JsonDict
from imagepipe.vocabulary import Step

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def read_text(step: JsonDict) -> JsonDict:
    return pipeline.run_activity(Step.READ_TEXT, services(), step)
