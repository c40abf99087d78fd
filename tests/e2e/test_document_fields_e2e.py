"""End to end on the devhost: a rendered claim form, uploaded with the insurance profile, runs through the real
local OCR and the local field extractor; GET /api/images/{id} and ``imagepipe get`` show its documentFields."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_fields import render_page
from imagepipe import cli
from imagepipe.domain import DocumentFields
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_claim_form_gets_typed_fields(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = render_page("table", "sans", seed=3)  # seed 3: en-GB (day-first dates, £ / GBP)
    assert page.locale == "en-GB"
    form = tmp_path / "claim-form.png"
    form.write_bytes(page.image)
    body = stack.client.upload(form, profile="insurance")
    final = stack.client.wait([body["id"]], timeout_s=240)[body["id"]]
    assert final["status"] == "completed", final
    record = stack.client.get(body["id"])
    fields = DocumentFields.model_validate(record["documentFields"])
    assert (fields.provider, fields.locale) == ("local", "en-GB")
    assert {name: f.normalized for name, f in fields.fields.items()} == page.truth
    total = fields.fields["InvoiceTotal"]
    assert total.currency_code in ("GBP", None) and total.amount == float(page.truth["InvoiceTotal"])
    claim = fields.fields["ClaimNumber"]
    assert claim.sources and len(claim.sources[0].bounding_polygon) == 4 and 0 < claim.confidence <= 1
    # the CLI's image view lists them
    assert cli.main(["get", body["id"], "--url", stack.client.base_url]) == 0
    out = capsys.readouterr().out
    assert "fields:" in out and page.truth["ClaimNumber"] in out
