"""``ImagepipeClient.wait`` is a polite client: it asks for an image again no sooner than the API's
``Retry-After`` says, the longest-waiting first, no more than ``max_calls_per_s`` a second in all, and still
returns a status for every image when it times out. Driven by a fake clock and scripted answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from imagepipe import client as client_module
from imagepipe.client import ImagepipeClient

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(client_module.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(client_module.time, "sleep", fake.sleep)
    yield fake


def scripted(
    clock: Clock, pending_calls: dict[str, int], retry_after: str | None = "1"
) -> tuple[ImagepipeClient, list[tuple[float, str]]]:
    """A client whose status answers are 'processing' (with ``retry_after``) ``pending_calls[id]`` times, then
    'completed'; it records (time, image id) of every call."""
    calls: list[tuple[float, str]] = []
    client = ImagepipeClient("http://127.0.0.1:1", key="")

    def request(method: str, path: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        image_id = path.split("/")[3]
        calls.append((clock.now, image_id))
        seen = sum(1 for _, i in calls if i == image_id)
        if seen <= pending_calls[image_id]:
            return 200, {"id": image_id, "status": "processing"}, ({"Retry-After": retry_after} if retry_after else {})
        return 200, {"id": image_id, "status": "completed"}, {}

    client.request = request  # type: ignore[method-assign]
    return client, calls


def test_each_image_waits_its_retry_after_and_all_calls_keep_the_rate(clock: Clock) -> None:
    pending = {f"img{i}": 3 for i in range(20)}
    client, calls = scripted(clock, pending)
    final = client.wait(list(pending), timeout_s=600, max_calls_per_s=8)
    assert {i: s["status"] for i, s in final.items()} == dict.fromkeys(pending, "completed")
    assert len(calls) == 20 * 4
    for image_id in pending:
        times = [t for t, i in calls if i == image_id]
        assert all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False)), (image_id, times)
    starts = [t for t, _ in calls]
    assert all(b - a >= 1 / 8 - 1e-9 for a, b in zip(starts, starts[1:], strict=False)), "more than 8 calls a second"


def test_without_retry_after_it_polls_every_poll_s_and_oldest_first(clock: Clock) -> None:
    client, calls = scripted(clock, {"a": 2, "b": 2}, retry_after=None)
    client.wait(["a", "b"], poll_s=0.5, max_calls_per_s=100)
    assert [i for _, i in calls] == ["a", "b", "a", "b", "a", "b"]
    a_times = [t for t, i in calls if i == "a"]
    assert all(b - a >= 0.5 for a, b in zip(a_times, a_times[1:], strict=False))


def test_a_timeout_still_returns_a_status_for_every_image(clock: Clock) -> None:
    pending = {f"img{i}": 100 for i in range(10)}
    client, _ = scripted(clock, pending)
    final = client.wait(list(pending), timeout_s=0.3, max_calls_per_s=8)
    assert set(final) == set(pending) and all(s["status"] == "processing" for s in final.values())


@pytest.mark.parametrize(
    ("header", "seconds"), [("1", 1.0), ("2.5", 2.5), ("3600", 60.0), ("soon", None), ("-1", None), ("nan", None)]
)
def test_retry_after_is_read_as_capped_seconds(header: str, seconds: float | None) -> None:
    assert client_module._retry_after_s({"retry-after": header}) == seconds
