"""Quality guard for the analyzer's speed work: on each sample photo, the objects a person sees in it are
found with a box overlapping the hand-measured one (IoU >= 0.5), the expected tags are among the top ones,
and nothing that is not in the picture is named with confidence.

The boxes below were measured by eye on the images (pixel grid overlay), not taken from any model output,
so they hold whatever runtime, resizing or batching the analyzer uses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.analysis import tag_names

pytestmark = pytest.mark.vision

MIN_IOU = 0.5

#: sample -> [(object name, (x, y, w, h) measured on the image)]
EXPECTED_OBJECTS: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {
    "motorcycle.jpg": [("motorcycle", (90, 75, 595, 375))],
    "cat.jpg": [("cat", (0, 0, 451, 300))],
    "cat-copy-small.jpg": [("cat", (0, 0, 300, 200))],
    "coffee.jpg": [("cup", (165, 15, 245, 285))],
    "astronaut.jpg": [("person", (10, 14, 365, 498))],
    "uniform-portrait.jpg": [("person", (5, 18, 503, 582)), ("tie", (217, 409, 79, 111))],
}

#: sample -> tags that must be in the top 6
EXPECTED_TAGS: dict[str, set[str]] = {
    "motorcycle.jpg": {"motorcycle", "vehicle"},
    "cat.jpg": {"cat", "animal"},
    "cat-copy-small.jpg": {"cat", "animal"},
    "coffee.jpg": {"cup", "drink"},
    "astronaut.jpg": {"person"},
    "uniform-portrait.jpg": {"person", "tie"},
    "insurance-claim.png": {"text"},
    "game-screenshot.png": {"text"},
}

#: sample -> names that must not appear among objects or tags of confidence >= 0.5
ABSENT: dict[str, set[str]] = {
    "motorcycle.jpg": {"person", "cat", "text"},
    "cat.jpg": {"person", "dog", "text", "vehicle"},
    "coffee.jpg": {"person", "animal", "text"},
    "astronaut.jpg": {"cat", "dog", "vehicle", "text"},
    "qr-code.png": {"person", "animal", "vehicle"},
}


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union else 0.0


def test_iou_of_known_boxes() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


@pytest.mark.parametrize("sample", sorted(EXPECTED_OBJECTS))
def test_expected_objects_found_where_they_are(analyzed: Callable[[str], dict], sample: str) -> None:
    found = [
        (o["tags"][0]["name"], tuple(o["boundingBox"][k] for k in "xywh"))
        for o in analyzed(sample)["objectsResult"]["values"]
    ]
    for name, box in EXPECTED_OBJECTS[sample]:
        best = max((iou(box, b) for n, b in found if n == name), default=0.0)
        assert best >= MIN_IOU, f"{sample}: {name} at {box} best IoU {best:.2f}; found {found}"


@pytest.mark.parametrize("sample", sorted(EXPECTED_TAGS))
def test_expected_tags_on_top(analyzed: Callable[[str], dict], sample: str) -> None:
    top = tag_names(analyzed(sample), 6)
    assert EXPECTED_TAGS[sample] <= set(top), f"{sample}: top tags {top}"


@pytest.mark.parametrize("sample", sorted(ABSENT))
def test_nothing_absent_named_with_confidence(analyzed: Callable[[str], dict], sample: str) -> None:
    result = analyzed(sample)
    named = {t["name"] for t in result["tagsResult"]["values"] if t["confidence"] >= 0.5}
    named |= {o["tags"][0]["name"] for o in result["objectsResult"]["values"] if o["tags"][0]["confidence"] >= 0.5}
    assert not named & ABSENT[sample], f"{sample}: {sorted(named & ABSENT[sample])} named; all: {sorted(named)}"
