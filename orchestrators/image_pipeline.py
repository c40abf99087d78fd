"""The ``image_pipeline`` orchestration: one instance per image version.

fetch_image_metadata -> analyze_image (retried) -> read_text when text-heavy (retried) -> persist_record.
Deterministic: the retry policy travels in the input (the starter reads settings), time comes from
``context.current_utc_datetime``, and the custom status names the current stage. A permanent failure is
persisted on the record and then ends the run as Failed with the reason, so operators can find and replay it.
"""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from imagepipe.retry import ExponentialRetryOptions

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


def _retry(spec: dict[str, Any]) -> ExponentialRetryOptions:
    return ExponentialRetryOptions(
        int(spec["firstRetryIntervalInMilliseconds"]),
        int(spec["maxNumberOfAttempts"]),
        float(spec.get("backoffCoefficient", 2.0)),
        int(spec.get("maxRetryIntervalInMilliseconds", 60000)),
    )


def _iso(context: df.DurableOrchestrationContext) -> str:
    return str(context.current_utc_datetime.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


@bp.orchestration_trigger(context_name="context")
def image_pipeline(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    given: dict[str, Any] = context.get_input()
    step = {k: given[k] for k in ("imageId", "blobName", "etag", "instanceId")}
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
            analysis = yield context.call_activity_with_retry(
                current, vision_retry, {**step, "profile": meta["profile"]}
            )
            done(current)
            if analysis.get("ok") and analysis.get("textHeavy"):
                current = "read_text"
                stage(current)
                text = yield context.call_activity_with_retry(
                    current, vision_retry, {**step, "profile": meta["profile"]}
                )
                done(current)
                if not text.get("ok"):
                    meta = text
                result["ocr"] = text
            elif not analysis.get("ok"):
                meta = analysis
            result["analysis"] = analysis
        if meta.get("superseded") or result.get("analysis", {}).get("superseded"):
            context.set_custom_status({"stage": "superseded", "imageId": step["imageId"]})
            return {"status": "superseded", "imageId": step["imageId"]}
        if not meta.get("ok"):
            failure = meta["error"]
    except Exception as exc:  # the activity's transient failure after the last retry
        reason = str(exc).split(" \n ", 1)[0].strip()  # "<reason> \n <details/stack trace>"
        failure = {
            "code": "retries_exhausted",
            "message": f"{current} kept failing after its retries: {reason}",
            "step": current,
        }

    current_final = "persist_record"
    stage(current_final)
    persisted = yield context.call_activity_with_retry(
        current_final,
        storage_retry,
        {**step, "status": "failed" if failure else "completed", "error": failure, "run": run_facts()},
    )
    if failure:
        context.set_custom_status({"stage": "failed", "step": failure["step"], "imageId": step["imageId"]})
        raise PipelineFailed(f"{failure['step']} failed ({failure['code']}): {failure['message']}")
    context.set_custom_status({"stage": "completed", "imageId": step["imageId"]})
    return {"status": persisted.get("status", "completed"), "imageId": step["imageId"], **result}
