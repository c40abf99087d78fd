"""The generated benchmark images: deterministic per (label, seed), valid uploads, and different per seed."""

from __future__ import annotations

import pytest

from bench import __main__ as bench_main
from bench.label_images import CLASSES, SIZE, image
from imagepipe.imagefacts import MAX_BYTES, MAX_PIXELS, MAX_SIDE_PX, MIN_SIDE_PX, Limits, validate_image

pytestmark = pytest.mark.unit


def test_images_are_deterministic_valid_and_varied() -> None:
    limits = Limits(MAX_BYTES, MIN_SIDE_PX, MAX_SIDE_PX, MAX_PIXELS)
    seen = set()
    for label in (*CLASSES, "stranger"):
        first = image(label, 1)
        assert image(label, 1) == first
        valid = validate_image(first, limits)
        assert (valid.format, valid.width, valid.height) == ("PNG", SIZE, SIZE)
        seen |= {first, image(label, 2)}
    assert len(seen) == 2 * (len(CLASSES) + 1)


def test_labels_benchmark_is_registered() -> None:
    assert bench_main.BENCHMARKS["labels"] == "bench.bench_labels"
