"""AI Vision throttling: Retry-After honoured within a budget, and a per-process cap on calls and their rate.

The real ``ImageAnalysisClient`` runs over the service fake (tests/fakes/vision_transport.py), which answers
429 the way AI Vision does: a stretch of throttling (``throttle_for``) and the account's calls-per-second
quota (``quota_tps``), each with ``Retry-After`` in whole seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from imagepipe.adapters.azure_vision import AzureVisionAnalyzer, VisionThrottle
from imagepipe.errors import TransientServiceError
from imagepipe.ports import AnalysisRequest
from tests.fakes.credentials import StaticCredential
from tests.fakes.vision_transport import Call, FakeVisionTransport, Fault

pytestmark = pytest.mark.unit

ENDPOINT = "https://fakevision.cognitiveservices.azure.com/"
TAGS = AnalysisRequest(features=["tags"])
IMAGES = 50
QUOTA_TPS = 20  # the account (S1)
RATE = 16.0  # VISION_RATE_LIMIT_PER_SECOND of this one instance
CONCURRENCY = 8  # VISION_MAX_CONCURRENCY
OUTAGE_S = 2.0


def jpeg(index: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + index.to_bytes(4, "big") + b"\x00" * 60


def by_image(calls: list[Call]) -> dict[str, list[Call]]:
    out: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.arrived):
        out[call.image].append(call)
    return out


def test_fifty_concurrent_analyses_ride_out_a_throttling_stretch() -> None:
    transport = FakeVisionTransport(quota_tps=QUOTA_TPS, latency_s=0.02)
    transport.throttle_for(OUTAGE_S)
    analyzer = AzureVisionAnalyzer(
        ENDPOINT,
        StaticCredential(),
        transport=transport,
        max_concurrency=CONCURRENCY,
        rate_limit_per_s=RATE,
    )

    def analyze(index: int) -> BaseException | None:
        try:
            analyzer.analyze(jpeg(index), TAGS)
        except Exception as exc:  # noqa: BLE001 - collected: every one must be None
            return exc
        return None

    with ThreadPoolExecutor(IMAGES) as pool:
        outcomes = list(pool.map(analyze, range(IMAGES)))

    assert outcomes == [None] * IMAGES
    calls = transport.calls
    images = by_image(calls)
    assert len(images) == IMAGES
    assert all(sum(c.status == 200 for c in seen) == 1 and seen[-1].status == 200 for seen in images.values())
    # Starts are spaced 1/RATE apart, so at most floor(RATE * OUTAGE_S) + 1 calls arrive inside the stretch;
    # each of those gets a Retry-After reaching past its end, so no image is refused twice.
    refused = [c for c in calls if c.status == 429]
    assert all(sum(c.status == 429 for c in seen) <= 1 for seen in images.values())
    assert len(refused) <= math.floor(RATE * OUTAGE_S) + 1
    assert len(calls) <= IMAGES + math.floor(RATE * OUTAGE_S) + 1
    # Retry-After honoured: an image's next call never arrives inside the window its 429 named.
    for seen in images.values():
        for before, after in zip(seen, seen[1:], strict=False):
            assert before.status == 429 and before.retry_after_s is not None
            assert after.arrived >= before.ended + before.retry_after_s
    # The per-instance caps: never more than CONCURRENCY in flight, never over the account's quota.
    assert transport.max_in_flight <= CONCURRENCY
    first_ok = min(c.arrived for c in calls if c.status == 200)
    assert not [c for c in refused if c.arrived >= first_ok], "the local rate kept every call within the quota"


def test_a_retry_after_beyond_the_budget_surfaces_at_once_as_transient() -> None:
    transport = FakeVisionTransport()
    transport.throttle_for(120)
    analyzer = AzureVisionAnalyzer(ENDPOINT, StaticCredential(), transport=transport, max_wait_s=30)
    started = time.monotonic()
    with pytest.raises(TransientServiceError) as info:
        analyzer.analyze(jpeg(1), TAGS)
    assert info.value.retry_after_s == 120  # what the service asked for, for the orchestration's retry
    assert len(transport.calls) == 1 and time.monotonic() - started < 5


def test_retry_after_ms_is_honoured_on_the_post() -> None:
    # azure-core's default policy retries a POST 429 only when a Retry-After header is present.
    transport = FakeVisionTransport()
    transport.script([Fault(429, "429", "Rate limit is exceeded.", retry_after_ms="300")])
    analyzer = AzureVisionAnalyzer(ENDPOINT, StaticCredential(), transport=transport)
    assert analyzer.analyze(jpeg(2), TAGS)["tagsResult"]["values"]
    first, second = transport.calls
    assert (first.status, second.status) == (429, 200)
    assert second.arrived - first.ended >= 0.3


def test_the_throttle_spaces_starts_and_caps_concurrency() -> None:
    throttle = VisionThrottle(3, rate_per_s=100.0)
    starts: list[float] = []
    lock = threading.Lock()
    active = [0, 0]  # now, most

    def one() -> None:
        with throttle.slot(time.monotonic() + 10):
            with lock:
                starts.append(time.monotonic())
                active[0] += 1
                active[1] = max(active[1], active[0])
            time.sleep(0.01)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=one) for _ in range(30)]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    assert active[1] <= 3
    # start k was booked k/rate after the first booking (made after `begin`), and no start precedes its booking
    assert all(start - begin >= k / 100.0 for k, start in enumerate(starts))


def test_the_throttle_refuses_to_wait_past_the_deadline() -> None:
    throttle = VisionThrottle(1, rate_per_s=1.0)
    with throttle.slot(time.monotonic() + 1):
        pass
    started = time.monotonic()
    with pytest.raises(TransientServiceError) as info:  # the next start is ~1 s away, the deadline 0.3 s
        with throttle.slot(time.monotonic() + 0.3):
            pass
    assert info.value.code == "vision_throttled" and 0 < (info.value.retry_after_s or 0) <= 1
    assert time.monotonic() - started < 0.2  # refused without sleeping

    busy = VisionThrottle(1)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with busy.slot(time.monotonic() + 5):
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    try:
        with pytest.raises(TransientServiceError, match="VISION_MAX_CONCURRENCY"):
            with busy.slot(time.monotonic() + 0.1):
                pass
    finally:
        release.set()
        holder.join()


def test_the_app_settings_reach_the_process_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagepipe.composition import reset_services, services
    from imagepipe.errors import ConfigurationError
    from imagepipe.settings import load_settings

    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("VISION_PROVIDER", "azure")
    monkeypatch.setenv("VISION__endpoint", ENDPOINT)
    monkeypatch.delenv("VISION_FAULT_PLAN", raising=False)
    monkeypatch.setenv("VISION_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("VISION_RATE_LIMIT_PER_SECOND", "2.5")
    monkeypatch.setenv("VISION_MAX_WAIT_S", "12")
    reset_services()
    try:
        vision = services().vision
        assert isinstance(vision, AzureVisionAnalyzer)
        assert (vision.throttle.max_concurrency, vision.throttle.rate_per_s, vision.max_wait_s) == (3, 2.5, 12)
    finally:
        reset_services()
    monkeypatch.setenv("VISION_MAX_CONCURRENCY", "0")
    with pytest.raises(ConfigurationError, match="VISION_MAX_CONCURRENCY"):
        load_settings()
