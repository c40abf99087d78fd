"""OCR quality and speed benchmark: character and word error rates on a generated corpus of rendered documents.

Pages are rendered with Pillow in four font families (DejaVu Sans, Serif, Sans Mono and Sans Bold, the TrueType
files matplotlib ships, so a fresh install of requirements-local.txt has them; a missing file stops the run with
a message) at several pixel sizes. Each page holds insurance-like fields (policy and claim numbers, names,
amounts, dates), a line of numbers, and long lines that run to a few pixels from the image's right edge. Every
page goes through ``LocalAnalyzer.read_text`` (decode, detection, recognition, word rebuilding) and is scored
line by line: a result line belongs to the reference line whose rendered band holds its vertical centre; the
pieces of one band are joined left to right with a space. CER and WER are Levenshtein distances (our own
implementation, over characters and over whitespace-separated words) divided by the reference length; text
read outside every band counts as insertions. A reference line is *dropped* when less than half of it came
back (its CER is above 0.5). Writes ``bench/results/ocr.json`` with the issue's targets: CER below 1% overall
and per family, no dropped line.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bench.common import RESULTS, machine_facts, target, write_result

#: family -> TrueType file name in matplotlib's font folder.
FAMILIES = {
    "sans": "DejaVuSans.ttf",
    "serif": "DejaVuSerif.ttf",
    "mono": "DejaVuSansMono.ttf",
    "bold": "DejaVuSans-Bold.ttf",
}
SIZES = (18, 24, 32, 44)
PAGE_WIDTH = 1240
MARGIN = 60
#: Where the long lines end: this many pixels before the right edge.
EDGE_GAP = 4
CER_LIMIT = 0.01

FIRST = ["Anna", "Jonas", "Maria", "Pieter", "Sofia", "Lukas", "Elena", "Tomasz", "Ines", "Rafael"]
LAST = ["Kowalski", "Fernandes", "Lindqvist", "Moreau", "Okafor", "Brennan", "Schmidt", "Haddad"]
STREETS = ["Harbour Road", "Station Street", "Elm Avenue", "Market Square", "Mill Lane", "Park Terrace"]
CITIES = ["Rotterdam", "Leeds", "Lyon", "Porto", "Gdansk", "Malmo", "Cork", "Graz"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
WORDS = (
    "the insured vehicle was parked outside the premises when the damage occurred and the policy holder "
    "reported the claim amount to the insurer within the period stated in the contract together with the "
    "repair estimate photographs of the rear bumper and a copy of the police report for the incident"
).split()


@dataclass(frozen=True)
class Line:
    """One rendered reference line: its text and the vertical band it occupies."""

    text: str
    top: float
    bottom: float


@dataclass(frozen=True)
class Page:
    family: str
    size: int
    image: bytes
    lines: tuple[Line, ...]


# -----------------------------------------------------------------------------------------------
# Corpus
# -----------------------------------------------------------------------------------------------


def font_dir() -> Path:
    """matplotlib's bundled TrueType folder (matplotlib is in requirements-local.txt)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise SystemExit("bench ocr needs matplotlib (requirements-local.txt) for its DejaVu fonts") from exc
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def load_font(family: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_dir() / FAMILIES[family]
    if not path.is_file():
        raise SystemExit(f"font {path} for family {family!r} is missing (reinstall matplotlib)")
    return ImageFont.truetype(str(path), size)


def _amount(rng: random.Random) -> str:
    return f"{rng.randint(10, 48999):,}.{rng.randint(0, 99):02d}"


def _fields(rng: random.Random) -> list[str]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    day, month, year = rng.randint(1, 28), rng.choice(MONTHS), rng.randint(2019, 2026)
    return [
        "CONTOSO INSURANCE - CLAIM FORM",
        f"Policy number: PX-{rng.randint(10000, 99999)}-{rng.randint(10, 99)}",
        f"Insured: {name}, {rng.randint(1, 240)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
        f"Date of loss: {day} {month} {year}",
        f"Claim amount: {_amount(rng)} EUR",
        f"Reference {rng.randint(10000, 99999)} / {rng.randint(100, 999)} / {rng.randint(1000, 9999)}",
        f"Repair receipt total: {_amount(rng)} EUR (VAT {rng.randint(5, 25)}%)",
    ]


def _long_line(rng: random.Random, font: ImageFont.FreeTypeFont, width: float) -> str:
    """Words from WORDS (and numbers) until the next one would not fit in ``width`` pixels."""
    words: list[str] = []
    start = rng.randrange(len(WORDS))
    i = 0
    while True:
        word = WORDS[(start + i) % len(WORDS)] if i % 7 != 6 else str(rng.randint(100, 99999))
        candidate = " ".join([*words, word])
        if font.getlength(candidate) > width:
            return " ".join(words)
        words.append(word)
        i += 1


def render_page(family: str, size: int, seed: int) -> Page:
    """One document page: fields, then two long lines whose last glyph ends EDGE_GAP px from the right."""
    rng = random.Random(seed)
    font = load_font(family, size)
    texts = _fields(rng)
    usable = PAGE_WIDTH - MARGIN - EDGE_GAP  # fields wider than that widen the page (see below)
    long_texts = [_long_line(rng, font, usable) for _ in range(2)]
    step = int(size * 1.9)
    height = MARGIN * 2 + step * (len(texts) + len(long_texts))
    width = max(PAGE_WIDTH, MARGIN * 2 + int(max(font.getlength(t) for t in texts)))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    lines: list[Line] = []
    y = MARGIN
    for text in texts:
        left, top, _, bottom = draw.textbbox((MARGIN, y), text, font=font)
        draw.text((MARGIN, y), text, font=font, fill=(20, 20, 20))
        lines.append(Line(text, top, bottom))
        y += step
    for text in long_texts:
        # right-aligned so the ink ends EDGE_GAP px from the edge, whatever the font's advance widths
        left, top, right, bottom = draw.textbbox((0, y), text, font=font)
        x = width - EDGE_GAP - right
        draw.text((x, y), text, font=font, fill=(20, 20, 20))
        lines.append(Line(text, top, bottom))
        y += step
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return Page(family, size, buf.getvalue(), tuple(lines))


def corpus(pages_per_cell: int, sizes: Sequence[int] = SIZES) -> list[Page]:
    return [
        render_page(family, size, seed=1000 * size + 17 * n + i)
        for i, family in enumerate(FAMILIES)
        for size in sizes
        for n in range(pages_per_cell)
    ]


# -----------------------------------------------------------------------------------------------
# Scoring
# -----------------------------------------------------------------------------------------------


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1) over any two sequences."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@dataclass
class Score:
    chars: int = 0
    char_errors: int = 0
    words: int = 0
    word_errors: int = 0
    lines: int = 0
    dropped: int = 0

    def add(self, other: Score) -> None:
        self.chars += other.chars
        self.char_errors += other.char_errors
        self.words += other.words
        self.word_errors += other.word_errors
        self.lines += other.lines
        self.dropped += other.dropped

    @property
    def cer(self) -> float:
        return self.char_errors / max(1, self.chars)

    @property
    def wer(self) -> float:
        return self.word_errors / max(1, self.words)

    def to_json(self) -> dict[str, Any]:
        return {
            "cer": round(self.cer, 5),
            "wer": round(self.wer, 5),
            "chars": self.chars,
            "words": self.words,
            "lines": self.lines,
            "linesDropped": self.dropped,
        }


def _result_lines(read_result: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(text, centre y, left x) of every line of a readResult."""
    out: list[tuple[str, float, float]] = []
    for block in read_result.get("blocks", []):
        for line in block["lines"]:
            ys = [p["y"] for p in line["boundingPolygon"]]
            xs = [p["x"] for p in line["boundingPolygon"]]
            out.append((line["text"], (min(ys) + max(ys)) / 2, min(xs)))
    return out


def score_page(page: Page, read_result: dict[str, Any]) -> tuple[Score, list[dict[str, str]]]:
    """The page's score and its wrong lines as [{ref, got}]."""
    found = _result_lines(read_result)
    assigned: list[list[tuple[float, str]]] = [[] for _ in page.lines]
    stray = 0
    for text, cy, x in found:
        band = next((i for i, ln in enumerate(page.lines) if ln.top - 4 <= cy <= ln.bottom + 4), None)
        if band is None:
            stray += len(text)
        else:
            assigned[band].append((x, text))
    score = Score(char_errors=stray)
    wrong: list[dict[str, str]] = []
    for ref, pieces in zip(page.lines, assigned, strict=True):
        got = " ".join(t for _, t in sorted(pieces))
        errors = edit_distance(ref.text, got)
        line = Score(
            chars=len(ref.text),
            char_errors=errors,
            words=len(ref.text.split()),
            word_errors=edit_distance(ref.text.split(), got.split()),
            lines=1,
            dropped=int(errors > 0.5 * len(ref.text)),
        )
        score.add(line)
        if errors:
            wrong.append({"ref": ref.text, "got": got})
    return score, wrong


# -----------------------------------------------------------------------------------------------
# Run
# -----------------------------------------------------------------------------------------------


def run(pages_per_cell: int, sizes: Sequence[int]) -> dict[str, Any]:
    from imagepipe.ports import AnalysisRequest
    from imagepipe.vision import LocalAnalyzer

    pages = corpus(pages_per_cell, sizes)
    analyzer = LocalAnalyzer()
    request = AnalysisRequest(features=("read",))
    analyzer.read_text(pages[0].image, request)  # model loading and first-call costs
    total = Score()
    by_family: dict[str, Score] = {f: Score() for f in FAMILIES}
    by_cell: dict[str, Score] = {}
    times: list[float] = []
    cpu_times: list[float] = []
    examples: list[dict[str, Any]] = []
    for page in pages:
        t, c = time.perf_counter(), time.process_time()
        result = analyzer.read_text(page.image, request)
        times.append((time.perf_counter() - t) * 1000)
        cpu_times.append((time.process_time() - c) * 1000)
        score, wrong = score_page(page, result["readResult"])
        total.add(score)
        by_family[page.family].add(score)
        by_cell.setdefault(f"{page.family}/{page.size}px", Score()).add(score)
        examples.extend({"family": page.family, "size": page.size, **w} for w in wrong)
    rows = [target("OCR CER, all fonts and sizes", round(total.cer * 100, 3), CER_LIMIT * 100, "%")]
    rows += [
        target(f"OCR CER, {family}", round(s.cer * 100, 3), CER_LIMIT * 100, "%") for family, s in by_family.items()
    ]
    rows.append(target("OCR lines dropped", total.dropped, 0, "lines"))
    return {
        "benchmark": "ocr",
        "machine": machine_facts(),
        "corpus": {
            "pages": len(pages),
            "families": FAMILIES,
            "sizesPx": list(sizes),
            "pageWidth": PAGE_WIDTH,
            "longLinesEndPxFromRightEdge": EDGE_GAP,
            "fontSource": "matplotlib mpl-data/fonts/ttf",
        },
        "overall": total.to_json(),
        "byFamily": {k: v.to_json() for k, v in by_family.items()},
        "byFamilyAndSize": {k: v.to_json() for k, v in by_cell.items()},
        "msPerPage": {
            "median": round(statistics.median(times), 1),
            "mean": round(statistics.fmean(times), 1),
            "max": round(max(times), 1),
        },
        # CPU time of this process per page: steadier than wall time on a shared machine (1 ORT thread)
        "cpuMsPerPage": {
            "median": round(statistics.median(cpu_times), 1),
            "mean": round(statistics.fmean(cpu_times), 1),
        },
        "wrongLines": examples[:60],
        "targets": rows,
        "note": "read_text per page (decode + detection + recognition + words); a line is dropped when its CER "
        "is above 0.5; CER/WER = Levenshtein distance / reference length",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=2, help="pages per font family and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--out", type=Path, default=RESULTS / "ocr.json")
    args = parser.parse_args(argv)
    result = run(args.pages, args.sizes)
    write_result(args.out, result)
    print(f"overall {result['overall']}  ms/page {result['msPerPage']}  CPU ms/page {result['cpuMsPerPage']}")
    for family, s in result["byFamily"].items():
        print(f"  {family:<6} CER {s['cer'] * 100:6.2f}%  WER {s['wer'] * 100:6.2f}%  dropped {s['linesDropped']}")
    for cell, s in result["byFamilyAndSize"].items():
        print(f"    {cell:<12} CER {s['cer'] * 100:6.2f}%  WER {s['wer'] * 100:6.2f}%  dropped {s['linesDropped']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
