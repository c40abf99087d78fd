"""OCR quality on rendered text with known content (character error rate) and word rebuilding."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw, ImageFont

from imagepipe.ports import AnalysisRequest
from imagepipe.vision import LocalAnalyzer
from tests.support.images import SAMPLES, png_bytes

from .text_metrics import cer

pytestmark = pytest.mark.vision
EXPECTED = json.loads((SAMPLES / "expected-text.json").read_text())


def _lines(result: dict) -> list[str]:
    return [ln["text"] for b in result["readResult"]["blocks"] for ln in b["lines"]]


@pytest.mark.parametrize("sample", ["insurance-claim.png", "game-screenshot.png"])
def test_rendered_samples_cer_below_5_percent(analyzed: Callable[[str], dict], sample: str) -> None:
    reference = "\n".join(" ".join(line.split()) for line in EXPECTED[sample]["text"])
    hypothesis = "\n".join(_lines(analyzed(sample)))
    assert cer(reference, hypothesis) < 0.05, (reference, hypothesis)


def test_paragraph_on_white_cer(analyzer: LocalAnalyzer) -> None:
    text = ["Invoice 2026-0415 for Fabrikam Ltd", "Amount due: 312.40 USD by 30 April", "Thank you for your business"]
    img = Image.new("RGB", (900, 260), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(text):
        draw.text((30, 30 + 70 * i), line, font=ImageFont.load_default(size=34), fill="black")
    result = analyzer.read_text(png_bytes(img), AnalysisRequest(features=("read",)))
    assert cer("\n".join(text), "\n".join(_lines(result))) < 0.05, _lines(result)


def test_blank_image_reads_nothing(analyzer: LocalAnalyzer) -> None:
    result = analyzer.read_text(
        png_bytes(Image.new("RGB", (300, 200), (200, 210, 220))), AnalysisRequest(features=("read",))
    )
    assert result["readResult"] == {"blocks": []}
