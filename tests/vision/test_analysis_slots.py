"""The local analyzer runs no more analyses at once than the process has cores for (its models are CPU-bound):
calls beyond ``IMAGEPIPE_ANALYSIS_CONCURRENCY`` wait their turn, and those within it overlap."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from imagepipe.ports import AnalysisRequest
from imagepipe.vision import LocalAnalyzer
from imagepipe.vision.runtime import analysis_slots, ort_threads
from tests.support.images import png_bytes, scene

pytestmark = pytest.mark.vision
TAGS = AnalysisRequest(features=("tags",))


def _most_at_once(analyzer: LocalAnalyzer, monkeypatch: pytest.MonkeyPatch, calls: int) -> int:
    """Run ``calls`` analyses from as many threads; the most that were inside the classifier at once."""
    inside, most = [0], [0]
    lock = threading.Lock()
    real = analyzer.classifier.tags

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.3)  # long enough for every other thread to arrive while this one is inside
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(analyzer.classifier, "tags", counted)
    image = png_bytes(scene(200, 150))
    with ThreadPoolExecutor(calls) as pool:
        list(pool.map(lambda _: analyzer.analyze(image, TAGS), range(calls)))
    return most[0]


def test_calls_beyond_the_limit_wait(analyzer: LocalAnalyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEPIPE_ANALYSIS_CONCURRENCY", "2")
    assert _most_at_once(analyzer, monkeypatch, 5) == 2


def test_calls_within_the_limit_overlap(analyzer: LocalAnalyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEPIPE_ANALYSIS_CONCURRENCY", "3")
    assert _most_at_once(analyzer, monkeypatch, 3) == 3


def test_the_default_is_the_cores_over_the_runtime_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("IMAGEPIPE_ANALYSIS_CONCURRENCY", raising=False)
    assert analysis_slots() == max(1, len(os.sched_getaffinity(0)) // ort_threads())
    monkeypatch.setenv("IMAGEPIPE_ANALYSIS_CONCURRENCY", "zero")
    assert analysis_slots() == max(1, len(os.sched_getaffinity(0)) // ort_threads())  # not a count: the default
