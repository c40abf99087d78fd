"""OCR defects seen on documents: long lines near the image's right edge vanishing from the result, and
spaces put inside words ("In sured", "a mount", "72 3 2 6"). Rendered with the DejaVu fonts matplotlib ships
(requirements-local.txt), read by the real models."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from PIL import Image, ImageDraw, ImageFont

from imagepipe.ports import AnalysisRequest
from imagepipe.vision import LocalAnalyzer
from tests.support.images import png_bytes

from .text_metrics import cer

pytestmark = pytest.mark.vision
READ = AnalysisRequest(features=("read",))
FONTS = {
    "sans": "DejaVuSans.ttf",
    "serif": "DejaVuSerif.ttf",
    "mono": "DejaVuSansMono.ttf",
    "bold": "DejaVuSans-Bold.ttf",
}


def _font(family: str, size: int) -> ImageFont.FreeTypeFont:
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[family]
    assert path.is_file(), f"{path} is missing: matplotlib (requirements-local.txt) ships it"
    return ImageFont.truetype(str(path), size)


def _lines(result: dict) -> list[str]:
    return [ln["text"] for b in result["readResult"]["blocks"] for ln in b["lines"]]


def _page(lines: list[str], family: str, size: int, *, width: int, right_aligned: bool) -> Image.Image:
    """Lines on white; right-aligned ones end 4 px from the right edge."""
    font = _font(family, size)
    step = int(size * 1.9)
    img = Image.new("RGB", (width, 60 * 2 + step * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(lines):
        y = 60 + step * i
        x = width - 4 - draw.textbbox((0, y), text, font=font)[2] if right_aligned else 60
        draw.text((x, y), text, font=font, fill=(20, 20, 20))
    return img


LONG = [
    "reported the claim amount to the 9378 within the period stated in the",
    "the policy holder reported the claim 22648 to the insurer within the",
    "the insured vehicle was parked outside 84819 premises when the",
    "and a copy of the police 50670 for the incident the",
]


@pytest.mark.parametrize(("family", "size"), [("sans", 32), ("sans", 44), ("serif", 44)])
def test_long_lines_ending_at_the_right_edge_are_read(analyzer: LocalAnalyzer, family: str, size: int) -> None:
    font = _font(family, size)
    width = int(max(font.getlength(t) for t in LONG)) + 64
    result = analyzer.read_text(png_bytes(_page(LONG, family, size, width=width, right_aligned=True)), READ)
    got = _lines(result)
    assert len(got) == len(LONG), got
    for ref, hyp in zip(LONG, got, strict=True):
        assert cer(ref, hyp) < 0.05, (ref, hyp)


FIELDS = [
    "CONTOSO INSURANCE - CLAIM FORM",
    "Insured amount: 72326 EUR",
    "Policy number: PX-72326-15",
    "Date of loss: 14 March 2026",
    "Reference 49747 / 179 / 3771",
]


@pytest.mark.parametrize("family", list(FONTS))
@pytest.mark.parametrize("size", [18, 32])
def test_words_are_not_split_or_run_together(analyzer: LocalAnalyzer, family: str, size: int) -> None:
    result = analyzer.read_text(png_bytes(_page(FIELDS, family, size, width=900, right_aligned=False)), READ)
    got = _lines(result)
    assert len(got) == len(FIELDS), got
    # a spurious space makes one more word, a lost space one fewer: the word counts must match line by line
    assert [len(g.split()) for g in got] == [len(f.split()) for f in FIELDS], got
    words = [w["text"] for b in result["readResult"]["blocks"] for ln in b["lines"] for w in ln["words"]]
    assert words == [w for g in got for w in g.split()]


def test_detected_polygons_can_be_reused_for_recognition(analyzer: LocalAnalyzer) -> None:
    image = _page(FIELDS[:3], "serif", 24, width=700, right_aligned=False)
    polygons = analyzer.ocr.detect(image)
    assert len(polygons) == 3
    assert all(p.shape == (4, 2) and (p[:, 0] <= image.width).all() for p in polygons)
    assert analyzer.ocr.lines(image, polygons) == analyzer.ocr.lines(image)
