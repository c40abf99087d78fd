"""Orchestration side of the vision quota: ask the ``vision_quota`` entity before calling AI Vision.

``vision_call`` replaces one ``yield context.call_activity_with_retry(...)`` of a vision step with
``yield from vision_call(...)`` in runs whose input asks for the quota (``visionQuota``): it waits on
durable timers until the entity says go, calls the activity, and when the activity reports a throttled call
(``imagepipe.vision_quota.throttled_result``) it signals the entity, which pauses every run, and asks again.
The quota is advisory: an entity that fails to answer lets the call go. Deterministic: time comes from
``context.current_utc_datetime`` only.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from imagepipe import vision_quota as quota

QUOTA = df.EntityId(quota.ENTITY_NAME, quota.ENTITY_KEY)
#: Longest a run waits for the quota in all before it calls anyway (its retry policy then decides).
MAX_PAUSED_S = 3600.0
#: Throttled answers one step accepts before it ends with the throttled failure.
MAX_THROTTLED_CALLS = 10
#: Shortest timer between two questions to the entity.
MIN_WAIT_S = 0.2


def _await_go(context: df.DurableOrchestrationContext, budget_s: float) -> Generator[Any, Any, tuple[bool, float]]:
    """Wait until the entity says go or ``budget_s`` is spent; returns (this call is a probe, seconds waited)."""
    waited = 0.0
    while True:
        try:
            answer = yield context.call_entity(QUOTA, quota.ACQUIRE)
        except Exception:  # noqa: BLE001 - the entity failed: the quota must never stop the pipeline
            return False, waited
        decision = quota.Decision.from_json(answer)
        if decision.go or waited >= budget_s:
            return decision.probe, waited
        wait = max(MIN_WAIT_S, min(decision.wait_s, budget_s - waited))
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        waited += wait


def vision_call(
    context: df.DurableOrchestrationContext, name: str, retry: df.RetryOptions, payload: Any
) -> Generator[Any, Any, Any]:
    """The result of vision activity ``name`` of a run that uses the quota (its input's ``visionQuota``, set by
    the starter when the provider is AI Vision): called when the quota allows, and again after a pause when it
    was throttled; after ``MAX_THROTTLED_CALLS`` throttled answers, that answer (a failure with
    ``error.code`` ``vision_rate_limited``)."""
    paused = 0.0
    result: Any = None
    for _ in range(MAX_THROTTLED_CALLS):
        probe, waited = yield from _await_go(context, MAX_PAUSED_S - paused)
        paused += waited
        result = yield context.call_activity_with_retry(name, retry, {**payload, "visionQuota": True})
        if not quota.is_throttled(result):
            if probe:
                context.signal_entity(QUOTA, quota.SUCCEEDED)
            return result
        context.signal_entity(QUOTA, quota.THROTTLED, {"retryAfterS": result.get("retryAfterS")})
    return result
