"""The ``image_pipeline`` orchestration: one instance per image version.

fetch_image_metadata -> analyze_image (retried) -> read_text when text-heavy (retried) -> persist_record.
Each step is a small generator (``yield from``) that schedules one activity and returns its typed result
(``imagepipe.domain``); the run reads as that sequence. Deterministic: the vision retry policy travels in the
input (the starter reads settings), time comes from ``context.current_utc_datetime``, and the custom status
names the current stage. A permanent failure is persisted on the record and then ends the run as Failed with
the reason, so operators can find and replay it. The run reports what ``persist_record`` actually did:
``completed`` only when it wrote the result; ``superseded`` / ``deleted`` when there was nothing to write;
Failed when the record says failed (``lost`` included) or when the final write itself kept failing (the
reconcile sweep then ends the record). The input is hostile: one that ``PipelineInput`` refuses fails the
run at once, naming the problem, before anything is scheduled.
"""

from collections.abc import Generator
from datetime import datetime
from typing import Any, TypeVar

import azure.durable_functions as df
from pydantic import TypeAdapter, ValidationError

from imagepipe.domain import (
    ANALYZE_RESULT,
    FETCH_RESULT,
    PERSIST_RESULT,
    READ_TEXT_RESULT,
    STORAGE_RETRY,
    Analyzed,
    Deleted,
    Failure,
    Fetched,
    JsonDict,
    Persisted,
    PersistInput,
    PipelineInput,
    RetryPolicy,
    RunError,
    RunFacts,
    Superseded,
    TextRead,
    VisionStepInput,
    Wire,
    decode_result,
    describe,
)
from imagepipe.timeutil import iso
from imagepipe.vocabulary import Step
from orchestrators.vision_gate import vision_call

bp = df.Blueprint()

R = TypeVar("R")
Steps = Generator[Any, Any, R]


class PipelineFailed(Exception):
    """Ends the orchestration as Failed; the message is what operators read."""


class Stages:
    """The run's clock: the custom status names the current stage, and each step's duration is kept."""

    def __init__(self, context: df.DurableOrchestrationContext, image_id: str) -> None:
        self.context = context
        self.image_id = image_id
        self.started: datetime = context.current_utc_datetime
        self.mark = self.started
        self.ms: dict[str, int] = {}

    def enter(self, name: str) -> None:
        self.context.set_custom_status({"stage": name, "imageId": self.image_id})
        self.mark = self.context.current_utc_datetime

    def leave(self, name: str) -> None:
        self.ms[name] = int((self.context.current_utc_datetime - self.mark).total_seconds() * 1000)

    def facts(self) -> RunFacts:
        now = self.context.current_utc_datetime
        return RunFacts(started_at=iso(self.started), completed_at=iso(now), stages_ms=self.ms)

    def end(self, outcome: str, step: str | None = None) -> None:
        status = {"stage": outcome, "imageId": self.image_id}
        self.context.set_custom_status(status if step is None else {**status, "step": step})


def read_input(context: df.DurableOrchestrationContext) -> PipelineInput:
    """The validated input; a hostile or malformed one ends the run with the reason."""
    try:
        given = context.get_input()
    except (TypeError, ValueError) as exc:
        raise PipelineFailed(f"the orchestration input is not readable JSON: {exc}") from exc
    try:
        return PipelineInput.model_validate(given)
    except ValidationError as exc:
        raise PipelineFailed(f"the orchestration input is not acceptable: {describe(exc)}") from exc


def exhausted(name: Step, exc: Exception) -> Failure:
    """The failure of a step whose transient errors outlasted its retries."""
    reason = str(exc).split(" \n ", 1)[0].strip()  # "<reason> \n <details/stack trace>"
    return Failure(error=RunError.of("retries_exhausted", f"{name} kept failing after its retries: {reason}", name))


def call_step(
    context: df.DurableOrchestrationContext,
    stages: Stages,
    name: Step,
    retry: RetryPolicy,
    payload: Wire,
    result: TypeAdapter[R],
    *,
    vision_quota: bool = False,
) -> Steps[R | Failure]:
    """Schedule activity ``name`` with retries and return its typed result (a ``Failure`` when retries ran out).
    With ``vision_quota`` the call goes through the shared vision-quota entity (``orchestrators/vision_gate``)."""
    stages.enter(name)
    try:
        if vision_quota:
            raw = yield from vision_call(context, name, retry.options(), payload.to_json())
        else:
            raw = yield context.call_activity_with_retry(name, retry.options(), payload.to_json())
    except Exception as exc:  # noqa: BLE001 - the activity's transient failure after the last retry
        return exhausted(name, exc)
    stages.leave(name)
    return decode_result(result, raw, name)


# ---------------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------------


Fetch = Fetched | Failure | Superseded | Deleted
Analysis = Analyzed | Failure | Superseded | Deleted
Text = TextRead | Failure | Superseded | Deleted
Persist = Persisted | Failure | Superseded | Deleted


def fetch(context: df.DurableOrchestrationContext, stages: Stages, given: PipelineInput) -> Steps[Fetch]:
    """Validate and decode the blob version; its record becomes ``processing``."""
    name, payload = Step.FETCH_IMAGE_METADATA, given.step()
    return (yield from call_step(context, stages, name, STORAGE_RETRY, payload, FETCH_RESULT))


def analyze(
    context: df.DurableOrchestrationContext, stages: Stages, given: PipelineInput, profile: str
) -> Steps[Analysis]:
    """The vision analysis, with the input's retry policy."""
    payload = VisionStepInput(**given.step().model_dump(), profile=profile)
    return (
        yield from call_step(
            context, stages, Step.ANALYZE_IMAGE, given.retry, payload, ANALYZE_RESULT, vision_quota=given.vision_quota
        )
    )


def read_text(
    context: df.DurableOrchestrationContext, stages: Stages, given: PipelineInput, profile: str
) -> Steps[Text]:
    """OCR of a text-heavy image, with the input's retry policy."""
    payload = VisionStepInput(**given.step().model_dump(), profile=profile)
    return (
        yield from call_step(
            context, stages, Step.READ_TEXT, given.retry, payload, READ_TEXT_RESULT, vision_quota=given.vision_quota
        )
    )


def persist(
    context: df.DurableOrchestrationContext, stages: Stages, given: PipelineInput, failure: RunError | None
) -> Steps[Persist]:
    """The final write: ``completed``, or ``failed`` with the reason."""
    payload = PersistInput(
        **given.step().model_dump(),
        status="failed" if failure else "completed",
        error=failure,
        run=stages.facts(),
    )
    return (yield from call_step(context, stages, Step.PERSIST_RECORD, STORAGE_RETRY, payload, PERSIST_RESULT))


def failed(stages: Stages, failure: RunError | None) -> PipelineFailed:
    """The exception that ends the run Failed with the recorded reason."""
    reason = failure or RunError.of("unknown", "the run ended without a result", "run")
    stages.end("failed", reason.step)
    return PipelineFailed(f"{reason.step} failed ({reason.code}): {reason.message}")


def ended(stages: Stages, result: Superseded | Deleted) -> JsonDict:
    """The output of a run that had nothing (left) to write."""
    stages.end(result.outcome)
    return {"status": str(result.outcome), "imageId": stages.image_id}


# ---------------------------------------------------------------------------------------------------
# The orchestrator
# ---------------------------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def image_pipeline(context: df.DurableOrchestrationContext) -> Steps[JsonDict]:
    given = read_input(context)
    stages = Stages(context, given.image_id)
    output: JsonDict = {}

    last: Fetch | Analysis | Text = yield from fetch(context, stages, given)
    if isinstance(last, Fetched):
        profile = last.profile
        last = yield from analyze(context, stages, given, profile)
        if isinstance(last, Analyzed):
            output["analysis"] = last.to_json()
            if last.text_heavy:
                last = yield from read_text(context, stages, given, profile)
                if isinstance(last, TextRead):
                    output["ocr"] = last.to_json()
    if isinstance(last, Superseded | Deleted):
        return ended(stages, last)
    failure = last.error if isinstance(last, Failure) else None

    persisted = yield from persist(context, stages, given, failure)
    if isinstance(persisted, Superseded | Deleted):
        return ended(stages, persisted)
    if isinstance(persisted, Failure):
        failure = persisted.error  # what the record says (e.g. lost), or the write kept failing
    if failure is not None or not isinstance(persisted, Persisted):
        raise failed(stages, failure)
    stages.end("completed")
    return {"status": persisted.status, "imageId": given.image_id, **output}
