"""The dashboard's image view in headless Chromium: a claim form's custom labels and typed document fields.

A label set trained on the insurance profile (rendered claim forms against photos) and the local field extractor
both run on one upload; the run's image view must show the label chip and one table row per field with the
values the form was rendered with. Chromium as in ``test_dashboard.py`` (skips, saying how to install it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_fields import render_page
from imagepipe import cli
from tests.support import browser
from tests.support.devhost import ROOT
from tests.support.stack import Stack

pytestmark = [pytest.mark.dashboard, pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]

DRIVER = Path(__file__).with_name("dashboard_image_driver.cjs")
ARTIFACTS = ROOT / "test-artifacts"
PHOTOS = ("cat.jpg", "motorcycle.jpg", "coffee.jpg", "astronaut.jpg")


def test_image_view_shows_custom_labels_and_document_fields(
    ops_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = ops_stack
    forms = []
    for seed, layout in enumerate(("inline", "stacked", "table", "inline")):
        path = tmp_path / f"form-{seed}.png"
        path.write_bytes(render_page(layout, "sans", seed=10 + seed).image)
        forms.append(str(path))
    photos = [str(ROOT / "samples" / name) for name in PHOTOS]
    train = ["labels", "train", "documents", "--profile", "insurance", "--url", stack.host.base, "--json"]
    assert cli.main([*train, "--label", "claim-form", *forms, "--label", "photo", *photos]) == 0
    assert json.loads(capsys.readouterr().out)["active"] is True

    page = render_page("table", "serif", seed=3)
    upload = tmp_path / "new-claim.png"
    upload.write_bytes(page.image)
    image_id = stack.client.upload(upload, profile="insurance")["id"]
    final = stack.client.wait([image_id], timeout_s=240)[image_id]
    assert final["status"] == "completed", final
    record = stack.client.get(image_id)
    assert [(c["labelSet"], c["name"]) for c in record["customLabels"]] == [("documents", "claim-form")]

    ARTIFACTS.mkdir(exist_ok=True)
    seen = browser.run_driver(DRIVER, stack.host.base, str(ARTIFACTS), str(browser.chromium()), final["instanceId"])
    assert seen["consoleErrors"] == []
    assert len(seen["customChips"]) == 1 and seen["customChips"][0].startswith("documents: claim-form")
    shown = {row[0]: row[1] for row in seen["fieldRows"]}
    fields = record["documentFields"]["fields"]
    assert set(shown) == set(fields) and set(page.truth) <= set(shown)
    for name, value in page.truth.items():
        field = fields[name]
        assert field["normalized"] == value, (name, field, value)
        code = field.get("currencyCode") if field["type"] == "currency" else None
        assert shown[name] == (f"{value} {code}" if code else value), (name, shown[name])
