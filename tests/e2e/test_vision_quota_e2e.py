"""A 429 storm from AI Vision pauses the runs through the vision quota entity instead of spending their retries.

tests/devhost/apps/vision_quota_app runs imagepipe's quota entity and orchestrator gate in front of the Azure
AI Vision adapter, which talks to the fake AI Vision transport (tests/fakes/vision_transport.py). Each run's
activity retry policy allows 2 attempts 0.5 s apart: a 6-second storm would exhaust it. With the quota, the
first throttled call opens the circuit for the service's Retry-After; the other runs wait on durable timers,
one probe tests the service when the pause ends, and every run completes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.devhost.harness import APPS, Devhost
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e]

RUNS = 12
STORM_S = 6


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    state = tmp_path_factory.mktemp("vision-quota") / "state"
    env = {
        "IMAGES_STORAGE": "UseDevelopmentStorage=true",  # read by the settings, never connected to
        "VISION_RATE_LIMIT_PER_SECOND": "0",
        "VISION_MAX_CONCURRENCY": "8",
        "VISION_TIMEOUT_S": "5",
        "VISION_MAX_WAIT_S": "1",
    }
    devhost = Devhost(APPS / "vision_quota_app", state, env=env).start()
    yield devhost
    devhost.stop()


def finished(host: Devhost, instance_id: str, timeout: float) -> dict[str, Any]:
    """The instance's status once it has ended (through the management API, as any HTTP client reads it)."""
    url = f"{host.base}/runtime/webhooks/durabletask/instances/{instance_id}"
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(requests.get(url, timeout=10).json())
        return seen.get("runtimeStatus") in ("Completed", "Failed", "Terminated")

    assert eventually(ended, timeout=timeout), seen
    return seen


def test_a_429_storm_pauses_every_run_and_all_complete(host: Devhost) -> None:
    assert requests.post(f"{host.base}/api/storm", params={"seconds": STORM_S}, timeout=10).status_code == 204

    def start(n: int) -> str:
        return str(requests.post(f"{host.base}/api/runs", json={"n": n, "visionQuota": True}, timeout=10).json()["id"])

    # The first run meets the storm and reports it; only then do the others start, so that whether they saw the
    # report does not depend on how the host happened to interleave their first steps.
    ids = [start(0)]

    def reported() -> bool:  # the entity has no state before its first operation
        return int((requests.get(f"{host.base}/api/quota", timeout=10).json() or {}).get("throttled_total", 0)) >= 1

    assert eventually(reported, timeout=60)
    ids += [start(n) for n in range(1, RUNS)]
    outputs = [finished(host, iid, timeout=120)["output"] for iid in ids]
    assert all(isinstance(o, dict) and o.get("ok") for o in outputs), outputs
    calls = requests.get(f"{host.base}/api/calls", timeout=10).json()
    throttled = [c for c in calls if c["status"] == 429]
    ok = [c for c in calls if c["status"] == 200]
    assert len(ok) == RUNS
    # Without the quota each run would spend both attempts on 429s (2 x RUNS) and fail. With it, only the call
    # that met the storm first, and a probe or two, met a 429: the runs started after the report all waited.
    assert 1 <= len(throttled) <= 3, throttled
    quota = requests.get(f"{host.base}/api/quota", timeout=10).json()
    assert quota["throttled_total"] == len(throttled) and quota["storms"] == 0  # the probe closed the circuit
    first_ok = min(c["arrived"] for c in ok)
    first_429 = min(c["arrived"] for c in throttled)
    assert first_ok - first_429 >= STORM_S - 1  # nobody got through before the storm's Retry-After


def test_without_the_quota_the_same_storm_exhausts_the_retries(host: Devhost) -> None:
    assert requests.post(f"{host.base}/api/storm", params={"seconds": STORM_S}, timeout=10).status_code == 204
    iid = requests.post(f"{host.base}/api/runs", json={"n": 0, "visionQuota": False}, timeout=10).json()["id"]
    status = finished(host, iid, timeout=60)
    assert status["runtimeStatus"] == "Failed"  # both attempts met the storm
    assert "Azure AI Vision answered 429" in status["output"]
