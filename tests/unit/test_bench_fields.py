"""The document-field benchmark's corpus and scoring (no OCR): pages carry their truth, scoring counts right."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench.bench_fields import LAYOUTS, Page, Scores, corpus, render_page, score_page

pytestmark = pytest.mark.unit


def test_every_layout_renders_a_png_with_its_truth() -> None:
    for layout in LAYOUTS:
        page = render_page(layout, "sans", seed=5)
        image = Image.open(io.BytesIO(page.image))
        assert image.format == "PNG" and image.width == 1240 and image.height > 200
        assert page.truth and all(page.truth.values())
    assert {p.locale for p in corpus(1)} == {"en-GB", "en-US", "de-DE"}
    assert corpus(1, seed=100_000)[0].truth != corpus(1)[0].truth  # another seed: another corpus


def test_scoring_counts_right_wrong_missing_and_extra_fields() -> None:
    page = Page(
        "inline", "sans", "en-GB", b"", {"ClaimNumber": "CLM-1", "InvoiceTotal": "12.00", "ClaimDate": "2026-01-01"}
    )
    found = {
        "ClaimNumber": {"normalized": "CLM-1", "sources": [{"text": "Claim number: CLM-1"}]},
        "InvoiceTotal": {"normalized": "12.50", "sources": [{"text": "Total 12.50"}]},
        "VendorName": {"normalized": "Someone", "sources": [{"text": "Vendor: Someone"}]},
    }
    scores = Scores()
    score_page(page, found, scores)
    tallies = {name: (t.tp, t.fp, t.fn) for name, t in scores.by_field.items()}
    assert tallies == {
        "ClaimNumber": (1, 0, 0),
        "InvoiceTotal": (0, 1, 1),  # a wrong value is a false positive and a false negative
        "ClaimDate": (0, 0, 1),
        "VendorName": (0, 1, 0),
    }
    total = scores.total()
    assert (total.precision, total.recall) == (round(1 / 3, 4), round(1 / 3, 4))
    assert [m["field"] for m in scores.misses] == ["ClaimDate", "InvoiceTotal", "VendorName"]
