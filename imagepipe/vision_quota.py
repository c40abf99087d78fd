"""The vision quota: one token bucket and circuit breaker for every run that calls Azure AI Vision.

The state lives in a durable entity (``triggers/vision_quota.py``) so that all orchestrations, on every
instance of the app, share it; this module is the pure logic, with the time passed in.

* **Token bucket** (closed circuit): ``VISION_RATE_LIMIT_PER_SECOND`` tokens per second (0: no cap), at most
  ``VISION_MAX_CONCURRENCY`` saved up. ``acquire`` takes a token or says how long to wait for one.
* **Circuit breaker**: a run whose call was throttled (AI Vision answered 429, with ``Retry-After``) reports
  it; the circuit opens until the service's ``Retry-After`` (or a back-off that doubles with each storm that
  follows a failed probe, capped), and every ``acquire`` meanwhile answers "wait until then" — runs pause on a
  durable timer instead of spending their activity retries on calls that cannot succeed. Reports arriving
  while the circuit is already open extend the pause to the latest ``Retry-After`` without doubling it (one
  storm is reported by every run that was in flight).
* **Half-open**: when the pause ends, one ``acquire`` is let through as the probe; the others wait until the
  probe reports success (the circuit closes) or throttling (it opens again, longer), or until the probe's
  time is up (a lost report must not block everyone; the next caller becomes the probe).

The activity tells the run it was throttled with ``throttled_result`` (a value, so the activity's retry
policy is not spent) when the run uses the quota; ``TransientServiceError`` of other kinds, and a 429 in a run
without the quota, still raise and are retried as before.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, NoReturn

from imagepipe.errors import TransientServiceError
from imagepipe.settings import Settings

#: The entity: one per app (the AI Vision account), as ``df.EntityId(ENTITY_NAME, ENTITY_KEY)``.
ENTITY_NAME = "vision_quota"
ENTITY_KEY = "azure-vision"
#: Operations of the entity.
ACQUIRE, THROTTLED, SUCCEEDED, STATUS, RESET = "acquire", "throttled", "succeeded", "status", "reset"
#: ``TransientServiceError.code`` of a vision call the service throttled (429). The per-process throttle's own
#: ``vision_throttled`` is not one: it is this instance's limit, retried by the activity's policy as before.
THROTTLED_CODE = "vision_rate_limited"
#: Pause when a throttled report carries no usable Retry-After.
DEFAULT_PAUSE_S = 2.0
#: Longest single pause (a Retry-After beyond it is capped).
MAX_PAUSE_S = 300.0


@dataclass(frozen=True)
class QuotaPolicy:
    """The numbers the quota works with (from settings; see docs/reliability.md)."""

    rate_per_s: float = 0.0
    burst: int = 8
    default_pause_s: float = DEFAULT_PAUSE_S
    max_pause_s: float = MAX_PAUSE_S
    probe_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> QuotaPolicy:
        """The policy of the app's settings: the same rate and concurrency as the per-process throttle, and a
        probe may take as long as one vision call may (its timeout plus its own waiting)."""
        return cls(
            rate_per_s=settings.vision_rate_limit_per_second,
            burst=settings.vision_max_concurrency,
            probe_timeout_s=settings.vision_timeout_s + settings.vision_max_wait_s,
        )


@dataclass(frozen=True)
class QuotaState:
    """The entity's state (JSON-native through ``to_json``/``from_json``); times are epoch seconds."""

    tokens: float = -1.0  # -1: a full bucket on first use
    refilled_at: float = 0.0
    open_until: float = 0.0
    storms: int = 0  # consecutive throttled reports not followed by a successful probe
    probe_until: float = 0.0
    throttled_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> QuotaState:
        """The state stored by ``to_json``; anything unreadable starts afresh (the quota is advisory)."""
        if not isinstance(data, dict):
            return cls()
        values: dict[str, Any] = {}
        for name, default in asdict(cls()).items():
            given = data.get(name, default)
            ok = isinstance(given, (int, float)) and not isinstance(given, bool) and math.isfinite(given)
            values[name] = type(default)(given) if ok else default
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    """The answer to ``acquire``: go now (``probe`` when this call tests a paused service), or wait."""

    go: bool
    wait_s: float = 0.0
    reason: str = ""
    probe: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"go": self.go, "waitS": round(self.wait_s, 3), "reason": self.reason, "probe": self.probe}

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        """The decision of the entity's answer; a malformed one means go (never block work on a bad answer)."""
        if not isinstance(data, dict) or data.get("go") is not False:
            return cls(True, probe=bool(isinstance(data, dict) and data.get("probe") is True))
        wait, reason = data.get("waitS"), str(data.get("reason") or "")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and math.isfinite(wait):
            return cls(False, min(max(float(wait), 0.0), MAX_PAUSE_S), reason)
        return cls(False, DEFAULT_PAUSE_S, reason)


def _refill(state: QuotaState, now: float, policy: QuotaPolicy) -> QuotaState:
    burst = float(max(policy.burst, 1))
    if state.tokens < 0:
        return replace(state, tokens=burst, refilled_at=now)
    elapsed = max(0.0, now - state.refilled_at)
    return replace(state, tokens=min(burst, state.tokens + elapsed * policy.rate_per_s), refilled_at=now)


def acquire(state: QuotaState, now: float, policy: QuotaPolicy) -> tuple[QuotaState, Decision]:
    """May a run call AI Vision now? Takes a token when it may."""
    if now < state.open_until:
        return state, Decision(False, state.open_until - now, "paused")
    probe = False
    if state.storms > 0:  # half-open
        if now < state.probe_until:
            return state, Decision(False, state.probe_until - now, "probing")
        state = replace(state, probe_until=now + policy.probe_timeout_s)
        probe = True
    if policy.rate_per_s > 0:
        state = _refill(state, now, policy)
        if state.tokens < 1 and not probe:
            return state, Decision(False, (1 - state.tokens) / policy.rate_per_s, "rate")
        state = replace(state, tokens=max(0.0, state.tokens - 1))
    return state, Decision(True, probe=probe)


def _pause_s(retry_after_s: Any, policy: QuotaPolicy) -> float:
    ok = isinstance(retry_after_s, (int, float)) and not isinstance(retry_after_s, bool)
    asked = float(retry_after_s) if ok and math.isfinite(retry_after_s) and retry_after_s > 0 else 0.0
    return min(asked or policy.default_pause_s, policy.max_pause_s)


def throttled(state: QuotaState, now: float, retry_after_s: Any, policy: QuotaPolicy) -> QuotaState:
    """A call was throttled: open the circuit (or keep it open until the latest Retry-After)."""
    pause = _pause_s(retry_after_s, policy)
    total = state.throttled_total + 1
    if now < state.open_until:  # the same storm, reported by another run
        return replace(state, open_until=max(state.open_until, now + pause), throttled_total=total)
    storms = state.storms + 1  # > 1: the probe after a pause was throttled again, so back off further
    hold = (
        pause if storms == 1 else max(pause, min(policy.default_pause_s * 2 ** min(storms - 1, 16), policy.max_pause_s))
    )
    return replace(
        state,
        open_until=now + hold,
        storms=storms,
        probe_until=0.0,
        tokens=0.0,
        refilled_at=now,
        throttled_total=total,
    )


def succeeded(state: QuotaState, now: float) -> QuotaState:
    """A probe got through: close the circuit."""
    if state.storms == 0:
        return state
    return replace(state, storms=0, probe_until=0.0, open_until=min(state.open_until, now))


def status(state: QuotaState, now: float) -> dict[str, Any]:
    """What operators read: the circuit's position and the pause left."""
    circuit = "open" if now < state.open_until else ("half-open" if state.storms else "closed")
    return {
        "circuit": circuit,
        "pausedForS": round(max(0.0, state.open_until - now), 3),
        "storms": state.storms,
        "throttledTotal": state.throttled_total,
    }


# ---------------------------------------------------------------------------------------------------
# the activity side
# ---------------------------------------------------------------------------------------------------


def throttled_result(step: str, exc: TransientServiceError, given: Any) -> dict[str, Any]:
    """The value an activity returns for a throttled vision call of a run that uses the quota (the gate marks
    the activity's input with ``visionQuota: true``); otherwise ``exc`` is re-raised, and so is any other
    transient failure: those stay the activity retry policy's business."""
    if exc.code != THROTTLED_CODE or not (isinstance(given, dict) and given.get("visionQuota") is True):
        _reraise(exc)
    return {
        "ok": False,
        "outcome": "failed",
        "throttled": True,
        "retryAfterS": exc.retry_after_s,
        "error": {"code": THROTTLED_CODE, "message": exc.message, "step": step},
    }


def _reraise(exc: TransientServiceError) -> NoReturn:
    raise exc


def is_throttled(result: Any) -> bool:
    """True for an activity result made by ``throttled_result``."""
    return isinstance(result, dict) and result.get("throttled") is True and result.get("ok") is False
