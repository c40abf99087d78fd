"""OCR from several threads at once, as the host's activity workers call it: calls overlap (no lock makes the
text detector or the whole reader one-at-a-time, which left one core idle while four read_text activities queued
behind it) and give exactly what they give one at a time, for pages of several sizes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from PIL import Image, ImageDraw

from imagepipe.vision import LocalAnalyzer
from imagepipe.vision.ocr import RapidOcr, TextDetector

from .test_ocr_lines import _font

pytestmark = pytest.mark.vision


def _page(width: int, words: list[str]) -> Image.Image:
    """A page ``width`` px wide with ``words`` on it, one per line."""
    font = _font("sans", max(18, width // 40))
    img = Image.new("RGB", (width, width * 3 // 4), "white")
    draw = ImageDraw.Draw(img)
    for i, word in enumerate(words):
        draw.text((width // 12, width // 12 + i * width // 10), word, font=font, fill=(15, 15, 15))
    return img


PAGES = [
    _page(640, ["Claim 4471", "Policy holder"]),
    _page(1200, ["Invoice total 318.20", "Due 12 March"]),
    _page(1800, ["Vehicle registration AB12 CDE", "Insured party"]),
]


@contextmanager
def _meeting(model: Any, parties: int) -> Iterator[threading.Barrier]:
    """Make the model's detector session wait until ``parties`` calls are inside it at the same time."""
    infer = model.get().text_det.infer if isinstance(model, RapidOcr) else model.get().infer
    original = infer.__call__
    barrier = threading.Barrier(parties, timeout=20)

    class Meeting:
        def __call__(self, tensor: Any) -> Any:
            barrier.wait()
            return original(tensor)

    owner = model.get().text_det if isinstance(model, RapidOcr) else model.get()
    owner.infer = Meeting()
    try:
        yield barrier
    finally:
        owner.infer = infer


@pytest.mark.parametrize("kind", ["reader", "evidence"])
def test_two_ocr_calls_run_their_detectors_at_the_same_time(analyzer: LocalAnalyzer, kind: str) -> None:
    model: RapidOcr | TextDetector = analyzer.ocr if kind == "reader" else analyzer.text_detector
    call: Callable[[Image.Image], Any] = analyzer.ocr.lines if kind == "reader" else analyzer.text_detector.evidence
    model.get()
    with _meeting(model, 2), ThreadPoolExecutor(2) as pool:
        # One at a time, the first call would wait at the meeting for 20 s and then fail with BrokenBarrierError.
        results = list(pool.map(call, PAGES[:2]))
    assert all(results), "both calls read their page"


def test_concurrent_reads_equal_one_at_a_time(analyzer: LocalAnalyzer) -> None:
    alone = [analyzer.ocr.lines(page) for page in PAGES]
    evidence_alone = [analyzer.text_detector.evidence(page) for page in PAGES]
    assert all(alone), "every page has text to read"
    jobs = [i % len(PAGES) for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda i: analyzer.ocr.lines(PAGES[i]), jobs))
        evidence = list(pool.map(lambda i: analyzer.text_detector.evidence(PAGES[i]), jobs))
    for i, lines in zip(jobs, together, strict=True):
        assert [ln["text"] for ln in lines] == [ln["text"] for ln in alone[i]]
        assert lines == alone[i], "same lines, polygons, words and confidences as one at a time"
    for i, found in zip(jobs, evidence, strict=True):
        assert found == evidence_alone[i]
