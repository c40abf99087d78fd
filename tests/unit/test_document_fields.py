"""The local document-field extractor on synthetic OCR line structures (no OCR): layouts, label synonyms,
locale-aware numbers and dates, registration and identifier patterns, bounded work on hostile input, and the
schema every answer must fit."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from imagepipe.documents import extract_fields
from imagepipe.documents.extract import MAX_LINES
from imagepipe.documents.normalize import Locale, parse_amount, parse_date, parse_identifier, parse_registration
from imagepipe.domain import DocumentFields
from imagepipe.profiles import ConfigurationError, load_profiles

pytestmark = pytest.mark.unit

GB, US, DE, FR = Locale.of("en-GB"), Locale.of("en-US"), Locale.of("de-DE"), Locale.of("fr-FR")


def line(text: str, x: float, y: float, *, width: float | None = None, height: float = 30, conf: float = 0.97) -> Any:
    w = width if width is not None else 14 * len(text)
    words, cursor = [], x
    for word in text.split():
        ww = 14 * len(word)
        poly = [{"x": cursor, "y": y}, {"x": cursor + ww, "y": y}, {"x": cursor + ww, "y": y + height}]
        words.append({"text": word, "boundingPolygon": poly + [{"x": cursor, "y": y + height}], "confidence": conf})
        cursor += ww + 14
    polygon = [{"x": x, "y": y}, {"x": x + w, "y": y}, {"x": x + w, "y": y + height}, {"x": x, "y": y + height}]
    return {"text": text, "boundingPolygon": polygon, "words": words}


def read(*lines: Any) -> dict[str, Any]:
    return {"blocks": [{"lines": list(lines)}]}


def normalized(result: dict[str, Any]) -> dict[str, str]:
    return {name: f["normalized"] for name, f in result["fields"].items()}


# ---------------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "locale", "amount", "currency"),
    [
        ("£1,234.56", GB, "1234.56", "GBP"),
        ("1.234,56 EUR", DE, "1234.56", "EUR"),
        ("1 234,56 €", FR, "1234.56", "EUR"),
        ("1\u202f234,56 €", FR, "1234.56", "EUR"),
        ("USD 99", US, "99", "USD"),
        ("1,234", GB, "1234", None),
        ("1,234", DE, "1.234", None),
        ("1.234", DE, "1234", None),
        ("12,50", GB, "12.50", None),
        ("CHF 1'250.00", GB, "1250.00", "CHF"),
        ("-45.10 GBP", GB, "-45.10", "GBP"),
    ],
)
def test_amounts_by_locale(text: str, locale: Locale, amount: str, currency: str | None) -> None:
    parsed = parse_amount(text, locale)
    assert parsed is not None and parsed.value == Decimal(amount) and parsed.currency == currency


def test_no_number_is_no_amount() -> None:
    assert parse_amount("n/a", GB) is None
    assert parse_amount("1.2.3", GB) is None


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [
        ("2026-03-12", GB, date(2026, 3, 12)),
        ("03/04/2026", GB, date(2026, 4, 3)),
        ("03/04/2026", US, date(2026, 3, 4)),
        ("25/04/2026", US, date(2026, 4, 25)),  # a day above 12 decides whatever the locale
        ("12.03.26", DE, date(2026, 3, 12)),
        ("12 March 2026", GB, date(2026, 3, 12)),
        ("12th Mar 2026", GB, date(2026, 3, 12)),
        ("March 12, 2026", US, date(2026, 3, 12)),
        ("12. März 2026", DE, date(2026, 3, 12)),
        ("15. Marz 2025", DE, date(2025, 3, 15)),  # OCR dropped the umlaut
    ],
)
def test_dates(text: str, locale: Locale, expected: date) -> None:
    assert parse_date(text, locale) == expected


@pytest.mark.parametrize("text", ["31/02/2026", "12 Foo 2026", "soon", "2026-13-01"])
def test_not_dates(text: str) -> None:
    assert parse_date(text, GB) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AB12 CDE", "AB12 CDE"),
        ("ab12cde", "AB12 CDE"),
        ("A123 BCD", "A123 BCD"),
        ("ABC 123D", "ABC 123D"),
        ("B-MW 1234", "B-MW-1234"),
        ("12-ABC-3", "12-ABC-3"),
        ("XC3A RPX", "XC34 RPX"),  # OCR look-alikes put back by position
        ("0B12 CDE", "OB12 CDE"),
        ("AS5l XJT", "AS51 XJT"),
        ("G070 PBV", "GO70 PBV"),  # no prefix-format plate has a leading zero: a current one with 0 for O
        ("AB-123-CD", "AB-123-CD"),
    ],
)
def test_registrations(text: str, expected: str) -> None:
    assert parse_registration(text) == expected


@pytest.mark.parametrize("text", ["HELLO", "12345", "Anna Kowalski", "A" * 30])
def test_not_registrations(text: str) -> None:
    assert parse_registration(text) is None


def test_identifiers() -> None:
    assert parse_identifier("clm-2026-004512") == "CLM-2026-004512"
    assert parse_identifier("CLM 2026 0045") == "CLM20260045"
    assert parse_identifier("P0L-12O4") == "POL-1204"  # 0/O where the neighbours decide
    assert parse_identifier("POLICY") is None  # no digit
    assert parse_identifier("AB") is None


# ---------------------------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------------------------


def test_label_and_value_on_one_line() -> None:
    result = extract_fields(
        read(
            line("Claim number: CLM-2026-004512", 40, 40),
            line("Policy No. POL-88231-UK", 40, 90),
            line("Date of incident: 12 March 2026", 40, 140),
            line("Vehicle registration: AB12 CDE", 40, 190),
            line("Policyholder: Anna Kowalski", 40, 240),
            line("Total: £1,440.00", 40, 290),
        )
    )
    assert normalized(result) == {
        "ClaimNumber": "CLM-2026-004512",
        "PolicyNumber": "POL-88231-UK",
        "IncidentDate": "2026-03-12",
        "VehicleRegistration": "AB12 CDE",
        "PolicyholderName": "Anna Kowalski",
        "InvoiceTotal": "1440.00",
    }
    total = result["fields"]["InvoiceTotal"]
    assert (total["amount"], total["currencyCode"], total["type"]) == (1440.0, "GBP", "currency")
    assert total["sources"] == [{"text": "Total: £1,440.00", "boundingPolygon": total["sources"][0]["boundingPolygon"]}]
    assert total["confidence"] == pytest.approx(0.97)


def test_label_above_value_uses_column_alignment() -> None:
    result = extract_fields(
        read(
            line("Claim number", 40, 40),
            line("Incident date", 600, 40),
            line("CLM-77812", 40, 80),
            line("03/04/2026", 600, 80),
        )
    )
    assert normalized(result) == {"ClaimNumber": "CLM-77812", "IncidentDate": "2026-04-03"}
    claim = result["fields"]["ClaimNumber"]
    assert [s["text"] for s in claim["sources"]] == ["CLM-77812", "Claim number"]
    assert claim["confidence"] == pytest.approx(0.97 * 0.9)


def test_two_column_table_reads_the_cell_to_the_right() -> None:
    result = extract_fields(
        read(
            line("Policy number", 40, 40),
            line("PX-99120", 500, 42),
            line("Insurer", 40, 90),
            line("Northwind Mutual", 500, 88),
            line("Amount claimed", 40, 140),
            line("1.250,00 EUR", 500, 140),
        ),
        "de-DE",
    )
    assert normalized(result) == {
        "PolicyNumber": "PX-99120",
        "InsurerName": "Northwind Mutual",
        "InvoiceTotal": "1250.00",
    }
    assert result["locale"] == "de-DE"


def test_receipt_style_with_shared_currency_and_longest_label_first() -> None:
    result = extract_fields(
        read(
            line("GREEN GARAGE LTD", 40, 20),
            line("Date 14/02/2026", 40, 60),
            line("Subtotal", 40, 100),
            line("£100.00", 500, 100),
            line("VAT", 40, 140),
            line("20.00", 500, 140),
            line("Total", 40, 180),
            line("120.00", 500, 180),
            line("Amount due 120.00", 40, 220),
        )
    )
    assert normalized(result) == {
        "InvoiceDate": "2026-02-14",
        "SubTotal": "100.00",
        "TotalTax": "20.00",
        "InvoiceTotal": "120.00",
        "AmountDue": "120.00",
    }
    # only the subtotal shows a currency: the others take the document's one
    assert {f["currencyCode"] for f in result["fields"].values() if f["type"] == "currency"} == {"GBP"}


def test_fragments_of_one_row_are_joined_but_table_columns_are_not() -> None:
    result = extract_fields(
        read(
            line("Reg", 58, 403, width=52),
            line("No .", 118, 405, width=50),
            line("XC34", 558, 405, width=69),
            line("RPX", 622, 405, width=66),
            line("Policy number", 58, 450),
            line("P0L -58188-US", 558, 452),
        )
    )
    assert normalized(result) == {"VehicleRegistration": "XC34 RPX", "PolicyNumber": "POL-58188-US"}
    source = result["fields"]["VehicleRegistration"]["sources"]
    assert [s["text"] for s in source] == ["XC34 RPX", "Reg No ."]
    assert source[0]["boundingPolygon"][0] == {"x": 558, "y": 405} and source[0]["boundingPolygon"][2]["x"] == 688


def test_two_labels_on_one_line_split_at_the_colon() -> None:
    result = extract_fields(read(line("Claimant: Jonas Brennan   Claim date: 05/01/2026", 40, 40)))
    assert normalized(result) == {"ClaimantName": "Jonas Brennan", "ClaimDate": "2026-01-05"}


def test_ignored_labels_and_headings_yield_nothing() -> None:
    result = extract_fields(
        read(
            line("CLAIM FORM", 40, 20),
            line("Date of birth: 01/02/1980", 40, 60),
            line("Policy details", 40, 100),
            line("PX-1", 40, 140),  # below a heading whose own line holds text: not borrowed
        )
    )
    assert result["fields"] == {}


def test_a_value_that_does_not_parse_is_skipped_for_the_next_candidate() -> None:
    result = extract_fields(
        read(
            line("Date of incident", 40, 40),
            line("(see police report)", 500, 40),
            line("07/07/2026", 40, 80),
        )
    )
    assert normalized(result) == {"IncidentDate": "2026-07-07"}


def test_a_line_starting_with_a_label_is_never_another_labels_value() -> None:
    result = extract_fields(read(line("Claimant", 40, 40), line("Insurer: Contoso", 40, 80)))
    assert normalized(result) == {"InsurerName": "Contoso"}


def test_the_more_confident_reading_wins() -> None:
    result = extract_fields(
        read(line("Claim no: CLM-1111", 40, 40, conf=0.6), line("Claim number: CLM-2222", 40, 400, conf=0.95))
    )
    assert normalized(result) == {"ClaimNumber": "CLM-2222"}


# ---------------------------------------------------------------------------------------------------------------
# Schema and hostile input
# ---------------------------------------------------------------------------------------------------------------


def test_every_answer_fits_the_record_schema() -> None:
    result = extract_fields(
        read(
            line("Claim number: CLM-2026-004512", 40, 40),
            line("Total: 12.00 EUR", 40, 80),
            line("Date 2026-01-01", 40, 120),
        )
    )
    model = DocumentFields.model_validate(result)
    assert model.to_json()["fields"]["InvoiceTotal"]["currencyCode"] == "EUR"
    assert model.provider == "local" and model.truncated == 0


@pytest.mark.parametrize("bad", [None, {}, {"blocks": "x"}, {"blocks": [{"lines": [{"text": 5}, "x", None]}]}])
def test_malformed_ocr_results_give_no_fields(bad: Any) -> None:
    assert extract_fields(bad)["fields"] == {}


def test_work_is_bounded_on_hostile_input() -> None:
    long_digits = "Total " + "1," * 5000 + "x"
    nasty = [line("Date " + "1/" * 3000, 0, 0), line(long_digits, 0, 40), line("Claim number: " + "A-" * 5000, 0, 80)]
    many = [line(f"Claim number CLM-{i:05d} Total 1,00{i}", 0, 40 * i) for i in range(5 * MAX_LINES)]
    started = time.process_time()
    result = extract_fields(read(*nasty, *many))
    elapsed = time.process_time() - started
    assert result["truncated"] == 5 * MAX_LINES + 3 - MAX_LINES
    assert elapsed < 5.0, f"{elapsed:.2f} s CPU for one hostile document"
    DocumentFields.model_validate(result)


def test_profiles_turn_fields_on_with_a_locale_and_refuse_bad_settings(tmp_path: Any) -> None:
    profiles = load_profiles()
    insurance = profiles["insurance"].document_fields
    assert insurance is not None and (insurance.locale, insurance.model) == ("en-GB", "prebuilt-invoice")
    assert profiles["general"].document_fields is None
    custom = tmp_path / "profiles.json"
    custom.write_text('{"receipts": {"documentFields": {"locale": "de-DE", "model": "prebuilt-receipt"}}}')
    receipts = load_profiles(custom)["receipts"].document_fields
    assert receipts is not None and receipts.locale == "de-DE"
    for bad in ('{"locale": "german"}', '{"model": "prebuilt-layout"}', '"yes"'):
        custom.write_text('{"x": {"documentFields": ' + bad + "}}")
        with pytest.raises(ConfigurationError, match="documentFields"):
            load_profiles(custom)
