"""The ``vision_quota`` durable entity: the shared token bucket and circuit breaker in front of AI Vision.

Operations (``imagepipe.vision_quota`` holds the logic): ``acquire`` answers ``{"go", "waitS", "reason",
"probe"}``; ``throttled`` (input ``{"retryAfterS"}``) and ``succeeded`` are the reports runs signal;
``status`` answers the circuit's position for operators; ``reset`` forgets everything. An entity is not
replayed, so it reads the wall clock; it reads the quota's numbers from the app settings.
"""

from __future__ import annotations

import time
from typing import Any

import azure.durable_functions as df

from imagepipe import vision_quota as quota
from imagepipe.composition import services

bp = df.Blueprint()


def _input(context: df.DurableEntityContext) -> Any:
    try:
        return context.get_input()
    except (TypeError, ValueError):  # a signal without a body has no input at all
        return None


@bp.entity_trigger(context_name="context", entity_name=quota.ENTITY_NAME)
def vision_quota(context: df.DurableEntityContext) -> None:
    state = quota.QuotaState.from_json(context.get_state(dict))
    now = time.time()
    operation = context.operation_name
    if operation == quota.ACQUIRE:
        state, decision = quota.acquire(state, now, quota.QuotaPolicy.from_settings(services().settings))
        context.set_result(decision.to_json())
    elif operation == quota.THROTTLED:
        given = _input(context)
        retry_after = given.get("retryAfterS") if isinstance(given, dict) else None
        state = quota.throttled(state, now, retry_after, quota.QuotaPolicy.from_settings(services().settings))
    elif operation == quota.SUCCEEDED:
        state = quota.succeeded(state, now)
    elif operation == quota.STATUS:
        context.set_result(quota.status(state, now))
    elif operation == quota.RESET:
        state = quota.QuotaState()
    else:
        raise ValueError(f"vision_quota has no operation {operation[:60]!r}")
    context.set_state(state.to_json())
