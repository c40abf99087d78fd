"""Activity: the final, idempotent record write (status, error, run facts, near-duplicates)."""

import azure.durable_functions as df

from imagepipe import pipeline
from imagepipe.composition import services
from imagepipe.domain import JsonDict
from imagepipe.vocabulary import Step

bp = df.Blueprint()


@bp.activity_trigger(input_name="step")
def persist_record(step: JsonDict) -> JsonDict:
    return pipeline.run_activity(Step.PERSIST_RECORD, services(), step)
