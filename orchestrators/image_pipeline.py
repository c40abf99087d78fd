"""The ``image_pipeline`` orchestration: one instance per image version.

fetch_image_metadata -> analyze_image (retried) -> read_text when text-heavy (retried) -> persist_record.
Deterministic: the retry policy travels in the input (the starter reads settings), time comes from
``context.current_utc_datetime``, and the custom status names the current stage. A permanent failure is
persisted on the record and then ends the run as Failed with the reason, so operators can find and replay it.
The run reports what ``persist_record`` actually did: ``completed`` only when it wrote the result;
``superseded`` / ``deleted`` when there was nothing to write; Failed when the record says failed (``lost``
included) or when the final write itself kept failing (the reconcile sweep then ends the record).
"""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from imagepipe.retry import ExponentialRetryOptions
from orchestrators.vision_gate import vision_call

bp = df.Blueprint()

STORAGE_RETRY = {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 3, "backoffCoefficient": 2.0}
DEFAULT_VISION_RETRY = {
    "firstRetryIntervalInMilliseconds": 2000,
    "maxNumberOfAttempts": 5,
    "backoffCoefficient": 2.0,
    "maxRetryIntervalInMilliseconds": 60000,
}


class PipelineFailed(Exception):
    """Ends the orchestration as Failed; the message is what operators read."""


def _retry(spec: Any) -> ExponentialRetryOptions:
    try:
        return ExponentialRetryOptions(
            int(spec["firstRetryIntervalInMilliseconds"]),
            int(spec["maxNumberOfAttempts"]),
            float(spec.get("backoffCoefficient", 2.0)),
            int(spec.get("maxRetryIntervalInMilliseconds", 60000)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PipelineFailed(f"the orchestration input has a malformed retry policy: {exc}") from exc


def _iso(context: df.DurableOrchestrationContext) -> str:
    return str(context.current_utc_datetime.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _step_of(given: Any) -> dict[str, str]:
    """The step fields of the (untrusted) input; a malformed input ends the run with a clear reason."""
    if not isinstance(given, dict):
        raise PipelineFailed("the orchestration input must be a JSON object with imageId, blobName, etag, instanceId")
    step = {k: given.get(k) for k in ("imageId", "blobName", "etag", "instanceId")}
    missing = [k for k, v in step.items() if not isinstance(v, str) or not v]
    if missing:
        raise PipelineFailed(f"the orchestration input lacks string field(s): {', '.join(missing)}")
    return {k: str(v) for k, v in step.items()}


def _ended(result: Any) -> str | None:
    """'superseded' or 'deleted' when a step found the run has nothing left to do, else None."""
    if not isinstance(result, dict):
        return None
    if result.get("superseded"):
        return "superseded"
    if result.get("deleted"):
        return "deleted"
    return None


@bp.orchestration_trigger(context_name="context")
def image_pipeline(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    given: Any = context.get_input()
    step = _step_of(given)
    vision_retry = _retry(given.get("retry") or DEFAULT_VISION_RETRY)
    storage_retry = _retry(STORAGE_RETRY)
    started = context.current_utc_datetime
    stages: dict[str, int] = {}
    mark = started

    def stage(name: str) -> None:
        nonlocal mark
        now = context.current_utc_datetime
        context.set_custom_status({"stage": name, "imageId": step["imageId"]})
        mark = now

    def done(name: str) -> None:
        stages[name] = int((context.current_utc_datetime - mark).total_seconds() * 1000)

    def run_facts() -> dict[str, Any]:
        return {
            "startedAt": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "completedAt": _iso(context),
            "stagesMs": stages,
        }

    def finish(outcome: str) -> dict[str, Any]:
        context.set_custom_status({"stage": outcome, "imageId": step["imageId"]})
        return {"status": outcome, "imageId": step["imageId"]}

    def exhausted(name: str, exc: Exception) -> dict[str, Any]:
        reason = str(exc).split(" \n ", 1)[0].strip()  # "<reason> \n <details/stack trace>"
        return {
            "code": "retries_exhausted",
            "message": f"{name} kept failing after its retries: {reason}",
            "step": name,
        }

    failure: dict[str, Any] | None = None
    current = "fetch_image_metadata"
    result: dict[str, Any] = {}
    try:
        stage(current)
        meta = yield context.call_activity_with_retry(current, storage_retry, step)
        done(current)
        if meta.get("ok"):
            current = "analyze_image"
            stage(current)
            analysis = yield from vision_call(
                context, given, current, vision_retry, {**step, "profile": meta["profile"]}
            )
            done(current)
            if analysis.get("ok") and analysis.get("textHeavy"):
                current = "read_text"
                stage(current)
                text = yield from vision_call(
                    context, given, current, vision_retry, {**step, "profile": meta["profile"]}
                )
                done(current)
                if not text.get("ok"):
                    meta = text
                result["ocr"] = text
            elif not analysis.get("ok"):
                meta = analysis
            result["analysis"] = analysis
        outcome = _ended(meta) or _ended(result.get("analysis"))
        if outcome:
            return finish(outcome)
        if not meta.get("ok"):
            failure = meta["error"]
    except Exception as exc:  # noqa: BLE001 - the activity's transient failure after the last retry
        failure = exhausted(current, exc)

    current = "persist_record"
    stage(current)
    try:
        persisted = yield context.call_activity_with_retry(
            current,
            storage_retry,
            {**step, "status": "failed" if failure else "completed", "error": failure, "run": run_facts()},
        )
    except Exception as exc:  # noqa: BLE001 - the record stays unfinished; the reconcile sweep ends it with this reason
        failure = exhausted(current, exc)
        persisted = {"ok": False, "error": failure}
    outcome = _ended(persisted)
    if outcome:
        return finish(outcome)
    if not persisted.get("ok"):
        failure = persisted.get("error") or failure  # what the record says (e.g. lost), not what was asked
    if failure:
        context.set_custom_status({"stage": "failed", "step": failure["step"], "imageId": step["imageId"]})
        raise PipelineFailed(f"{failure['step']} failed ({failure['code']}): {failure['message']}")
    context.set_custom_status({"stage": "completed", "imageId": step["imageId"]})
    return {"status": persisted.get("status", "completed"), "imageId": step["imageId"], **result}
