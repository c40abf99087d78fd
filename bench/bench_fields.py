"""Document-field benchmark: precision and recall per field on rendered claim forms, through the REAL local OCR.

Pages are claim documents rendered with Pillow in the OCR bench's font families (DejaVu Sans, Serif, Sans Mono,
Sans Bold from matplotlib's font folder, see ``bench.bench_ocr``) in four layouts:

- ``inline``: ``Label: value`` one pair per line;
- ``stacked``: a label with its value on the line below, in two columns;
- ``table``: a two-column table, labels left and values in a column to the right;
- ``receipt``: a merchant heading, a date, item lines and right-aligned Subtotal / VAT / Total / Amount due.

Each page is written in one locale (en-GB, en-US or de-DE: date order and decimal separator, currencies as
symbols or ISO codes, several date spellings) with random but known field values. Every page goes through
``LocalAnalyzer.read_text`` and then ``extract_fields`` with the page's locale. A field counts as a true positive
when its normalised value equals the known one; a wrong value is a false positive *and* a false negative;
a field the page does not hold but the extractor reports is a false positive. Writes ``bench/results/fields.json``
with precision and recall per field, per layout and overall (targets: precision >= 0.95 and recall >= 0.90
overall and per field), OCR and extraction CPU time per page, and the misses with what was read.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bench.bench_ocr import FAMILIES, FIRST, LAST, load_font
from bench.common import RESULTS, machine_facts, target, write_result

LAYOUTS = ("inline", "stacked", "table", "receipt")
LOCALES = ("en-GB", "en-US", "de-DE")
SIZE = 26
WIDTH = 1240
MARGIN = 60
PRECISION_TARGET = 0.95
RECALL_TARGET = 0.90
INSURERS = ["Northwind Mutual", "Contoso Assurance", "Fabrikam Insurance plc", "Tailspin Underwriting"]
VENDORS = ["Green Garage Ltd", "Harbour Road Motors", "Mill Lane Body Shop", "Station Street Repairs"]
MONTH_NAMES = "January February March April May June July August September October November December".split()
GERMAN_MONTHS = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split()
SYMBOL = {"en-GB": "£", "en-US": "$", "de-DE": "€"}
CODE = {"en-GB": "GBP", "en-US": "USD", "de-DE": "EUR"}


@dataclass
class Page:
    layout: str
    family: str
    locale: str
    image: bytes
    truth: dict[str, str]


# -----------------------------------------------------------------------------------------------
# Values as printed, and their normalised truth
# -----------------------------------------------------------------------------------------------


def _date_text(rng: random.Random, day: date, locale: str) -> str:
    style = rng.randrange(3)
    if style == 0:
        return day.isoformat()
    if style == 1:
        if locale == "en-US":
            return f"{day.month:02d}/{day.day:02d}/{day.year}"
        sep = "." if locale == "de-DE" else "/"
        return f"{day.day:02d}{sep}{day.month:02d}{sep}{day.year}"
    if locale == "de-DE":
        return f"{day.day}. {GERMAN_MONTHS[day.month - 1]} {day.year}"
    if locale == "en-US":
        return f"{MONTH_NAMES[day.month - 1]} {day.day}, {day.year}"
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def _amount_text(rng: random.Random, cents: int, locale: str) -> str:
    whole, frac = divmod(cents, 100)
    if locale == "de-DE":
        number = f"{whole:,}".replace(",", ".") + f",{frac:02d}"
    else:
        number = f"{whole:,}.{frac:02d}"
    if rng.random() < 0.5:
        return f"{SYMBOL[locale]}{number}" if locale != "de-DE" else f"{number} €"
    return f"{number} {CODE[locale]}" if rng.random() < 0.5 else f"{CODE[locale]} {number}"


def _registration(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNOPRSTUVWXY"
    pick = "".join(rng.choice(letters) for _ in range(5))
    return f"{pick[:2]}{rng.randint(10, 74)} {pick[2:]}"


def _day(rng: random.Random) -> date:
    return date(rng.randint(2023, 2026), rng.randint(1, 12), rng.randint(1, 28))


def _claim_values(rng: random.Random, locale: str) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """(label, printed value, field name) rows of a claim form and the truth by field name."""
    claim = f"CLM-{rng.randint(2023, 2026)}-{rng.randint(100000, 999999)}"
    policy = f"POL-{rng.randint(10000, 99999)}-{rng.choice(['UK', 'EU', 'US'])}"
    incident, reported = _day(rng), _day(rng)
    reg = _registration(rng)
    holder = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    insurer = rng.choice(INSURERS)
    cents = rng.randint(10_000, 4_899_999)
    rows = [
        (rng.choice(["Claim number", "Claim No.", "Claim reference"]), claim, "ClaimNumber"),
        (rng.choice(["Policy number", "Policy No.", "Policy"]), policy, "PolicyNumber"),
        (rng.choice(["Policyholder", "Insured", "Policy holder"]), holder, "PolicyholderName"),
        ("Insurer", insurer, "InsurerName"),
        (
            rng.choice(["Date of incident", "Incident date", "Date of loss"]),
            _date_text(rng, incident, locale),
            "IncidentDate",
        ),
        (rng.choice(["Claim date", "Date reported"]), _date_text(rng, reported, locale), "ClaimDate"),
        (rng.choice(["Vehicle registration", "Registration number", "Reg No."]), reg, "VehicleRegistration"),
        (rng.choice(["Amount claimed", "Total amount"]), _amount_text(rng, cents, locale), "InvoiceTotal"),
    ]
    truth = {
        "ClaimNumber": claim,
        "PolicyNumber": policy,
        "PolicyholderName": holder,
        "InsurerName": insurer,
        "IncidentDate": incident.isoformat(),
        "ClaimDate": reported.isoformat(),
        "VehicleRegistration": reg,
        "InvoiceTotal": f"{cents / 100:.2f}",
    }
    return rows, truth


# -----------------------------------------------------------------------------------------------
# Layouts
# -----------------------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _canvas(rows: int, step: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, MARGIN * 2 + step * rows), "white")
    return image, ImageDraw.Draw(image)


def _render_claim(layout: str, font: ImageFont.FreeTypeFont, rows: list[tuple[str, str, str]]) -> bytes:
    step = int(SIZE * 1.9)
    ink = (20, 20, 20)
    if layout == "inline":
        image, draw = _canvas(len(rows) + 1, step)
        draw.text((MARGIN, MARGIN), "CLAIM FORM", font=font, fill=ink)
        for i, (label, value, _) in enumerate(rows, start=1):
            draw.text((MARGIN, MARGIN + i * step), f"{label}: {value}", font=font, fill=ink)
        return _png(image)
    if layout == "table":
        image, draw = _canvas(len(rows) + 1, step)
        draw.text((MARGIN, MARGIN), "Motor claim - summary", font=font, fill=ink)
        for i, (label, value, _) in enumerate(rows, start=1):
            y = MARGIN + i * step
            draw.text((MARGIN, y), label, font=font, fill=ink)
            draw.text((560, y), value, font=font, fill=ink)
            draw.line((MARGIN, y + step - 8, WIDTH - MARGIN, y + step - 8), fill=(190, 190, 190), width=1)
        return _png(image)
    # stacked: label above value, two columns
    half = (len(rows) + 1) // 2
    image, draw = _canvas(1 + 2 * half + half, step)
    draw.text((MARGIN, MARGIN), "CLAIM NOTIFICATION", font=font, fill=ink)
    for i, (label, value, _) in enumerate(rows):
        column, row = divmod(i, half)
        x = MARGIN + column * 600
        y = MARGIN + step + row * 3 * step
        draw.text((x, y), label, font=font, fill=(90, 90, 90))
        draw.text((x, y + step), value, font=font, fill=ink)
    return _png(image)


def _render_receipt(rng: random.Random, font: ImageFont.FreeTypeFont, locale: str) -> tuple[bytes, dict[str, str]]:
    vendor = rng.choice(VENDORS)
    day = _day(rng)
    items = [
        (rng.choice(["Labour", "Bumper", "Paint", "Headlamp", "Wiper blades"]), rng.randint(1000, 90000))
        for _ in range(3)
    ]
    subtotal = sum(c for _, c in items)
    tax = subtotal // 5
    total = subtotal + tax
    lines: list[tuple[str, str | None]] = [(vendor.upper(), None), (f"Date {_date_text(rng, day, locale)}", None)]
    lines += [(name, _amount_text(rng, cents, locale)) for name, cents in items]
    lines += [
        ("Subtotal", _amount_text(rng, subtotal, locale)),
        (rng.choice(["VAT", "Tax"]), _amount_text(rng, tax, locale)),
        ("Total", _amount_text(rng, total, locale)),
        ("Amount due", _amount_text(rng, total, locale)),
    ]
    step = int(SIZE * 1.8)
    image, draw = _canvas(len(lines), step)
    for i, (left, right) in enumerate(lines):
        y = MARGIN + i * step
        draw.text((MARGIN, y), left, font=font, fill=(20, 20, 20))
        if right is not None:
            _, _, r, _ = draw.textbbox((0, y), right, font=font)
            draw.text((WIDTH - MARGIN - r, y), right, font=font, fill=(20, 20, 20))
    truth = {
        "VendorName": vendor.upper(),
        "InvoiceDate": day.isoformat(),
        "SubTotal": f"{subtotal / 100:.2f}",
        "TotalTax": f"{tax / 100:.2f}",
        "InvoiceTotal": f"{total / 100:.2f}",
        "AmountDue": f"{total / 100:.2f}",
    }
    return _png(image), truth


def render_page(layout: str, family: str, seed: int) -> Page:
    rng = random.Random(seed)
    locale = LOCALES[seed % len(LOCALES)]
    font = load_font(family, SIZE)
    if layout == "receipt":
        image, truth = _render_receipt(rng, font, locale)
        truth.pop("VendorName")  # the heading has no label: not a field the extractor is asked to find
        return Page(layout, family, locale, image, truth)
    rows, truth = _claim_values(rng, locale)
    return Page(layout, family, locale, _render_claim(layout, font, rows), truth)


def corpus(pages_per_cell: int, seed: int = 0) -> list[Page]:
    return [
        render_page(layout, family, seed=seed + 7919 * i + 131 * j + n)
        for i, layout in enumerate(LAYOUTS)
        for j, family in enumerate(FAMILIES)
        for n in range(pages_per_cell)
    ]


# -----------------------------------------------------------------------------------------------
# Scoring
# -----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Tally) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    @property
    def precision(self) -> float | None:
        return round(self.tp / (self.tp + self.fp), 4) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return round(self.tp / (self.tp + self.fn), 4) if self.tp + self.fn else None

    def to_json(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall}


@dataclass
class Scores:
    by_field: dict[str, Tally] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def total(self) -> Tally:
        out = Tally()
        for t in self.by_field.values():
            out.add(t)
        return out


def score_page(page: Page, found: dict[str, Any], scores: Scores) -> None:
    got = {name: f["normalized"] for name, f in found.items()}
    for name in sorted(set(got) | set(page.truth)):
        tally = scores.by_field.setdefault(name, Tally())
        want, have = page.truth.get(name), got.get(name)
        if want is not None and have == want:
            tally.tp += 1
            continue
        if have is not None:
            tally.fp += 1
        if want is not None:
            tally.fn += 1
        source = found.get(name, {}).get("sources", [{}])[0].get("text") if name in found else None
        scores.misses.append(
            {
                "layout": page.layout,
                "family": page.family,
                "locale": page.locale,
                "field": name,
                "want": want,
                "got": have,
                "line": source,
            }
        )


# -----------------------------------------------------------------------------------------------
# Run
# -----------------------------------------------------------------------------------------------


def run(pages_per_cell: int, seed: int = 0) -> dict[str, Any]:
    from imagepipe.documents import extract_fields
    from imagepipe.ports import AnalysisRequest
    from imagepipe.vision import LocalAnalyzer

    pages = corpus(pages_per_cell, seed)
    analyzer = LocalAnalyzer()
    request = AnalysisRequest(features=("read",))
    analyzer.read_text(pages[0].image, request)  # model loading and first-call costs
    overall = Scores()
    by_layout: dict[str, Scores] = {layout: Scores() for layout in LAYOUTS}
    ocr_cpu: list[float] = []
    extract_cpu: list[float] = []
    for page in pages:
        c = time.process_time()
        read_result = analyzer.read_text(page.image, request)["readResult"]
        ocr_cpu.append((time.process_time() - c) * 1000)
        c = time.process_time()
        fields = extract_fields(read_result, page.locale)["fields"]
        extract_cpu.append((time.process_time() - c) * 1000)
        score_page(page, fields, overall)
        score_page(page, fields, by_layout[page.layout])
    total = overall.total()
    rows = [
        target("fields precision, all", total.precision, PRECISION_TARGET, "", higher_is_better=True),
        target("fields recall, all", total.recall, RECALL_TARGET, "", higher_is_better=True),
    ]
    for name, tally in sorted(overall.by_field.items()):
        rows.append(target(f"{name} precision", tally.precision, PRECISION_TARGET, "", higher_is_better=True))
        rows.append(target(f"{name} recall", tally.recall, RECALL_TARGET, "", higher_is_better=True))
    return {
        "benchmark": "fields",
        "machine": machine_facts(),
        "corpus": {
            "pages": len(pages),
            "seed": seed,
            "layouts": list(LAYOUTS),
            "families": FAMILIES,
            "locales": list(LOCALES),
            "sizePx": SIZE,
            "fontSource": "matplotlib mpl-data/fonts/ttf",
        },
        "overall": total.to_json(),
        "byField": {k: v.to_json() for k, v in sorted(overall.by_field.items())},
        "byLayout": {k: v.total().to_json() for k, v in by_layout.items()},
        # CPU time of this process per page: steadier than wall time on a shared machine
        "cpuMsPerPage": {
            "ocrMedian": round(statistics.median(ocr_cpu), 1),
            "extractMedian": round(statistics.median(extract_cpu), 2),
            "extractMax": round(max(extract_cpu), 2),
        },
        "misses": overall.misses[:80],
        "targets": rows,
        "note": "real local OCR (LocalAnalyzer.read_text) then extract_fields with the page's locale; a field is "
        "right when its normalised value equals the rendered one; a wrong value counts as FP and FN",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=2, help="pages per layout and font family")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed offset (another seed: a held-out corpus)")
    parser.add_argument("--out", type=Path, default=RESULTS / "fields.json")
    args = parser.parse_args(argv)
    result = run(args.pages, args.seed)
    write_result(args.out, result)
    print(f"overall {result['overall']}  CPU ms/page {result['cpuMsPerPage']}")
    for layout, t in result["byLayout"].items():
        print(f"  {layout:<8} precision {t['precision']}  recall {t['recall']}")
    for name, t in result["byField"].items():
        print(
            f"  {name:<20} precision {t['precision']}  recall {t['recall']}  (tp {t['tp']} fp {t['fp']} fn {t['fn']})"
        )
    for miss in result["misses"][:20]:
        print(f"    miss {miss}")
    print(f"wrote {args.out}")
    return 0
