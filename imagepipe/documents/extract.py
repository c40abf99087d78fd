"""Layout-aware extraction of typed fields from OCR lines (an AI Vision 4.0 ``readResult``), pure and bounded.

A *label* (``Claim number``, ``Total``, ``Date of incident`` ... see ``imagepipe.documents.schema``) is found at
the start of a line, or after another label's value on the same line when it ends with a colon. Its value is,
in order of preference:

1. the rest of the label's own line (``Claim number: CLM-1``; ``Total ...... £12.50``), up to the next label;
2. the nearest line to its right on the same row (vertical overlap of the bounding boxes: two-column tables,
   and OCR that splits a wide gap into two lines);
3. the nearest line below it that starts in the label's column (``label above value`` forms).

A candidate is kept only when it parses as the field's type (``imagepipe.documents.normalize``); otherwise the
next one is tried. A line that itself starts with a label is never taken as another label's value.

Confidence is the mean OCR confidence of the value's words, times a layout factor (same line 1.0, right 0.95,
below 0.9) and a type factor (names, which no parser checks, 0.85). When a field is found twice the more
confident reading wins (the upper one on a tie). Amounts without a currency take the document's currency
when its other amounts agree on one.

Work is bounded per document: at most ``MAX_LINES`` lines of ``MAX_LINE_CHARS`` characters are read (the rest
is ignored and counted in ``truncated``), label lookup is a dictionary probe per word, and the value search
per label is one pass over the lines.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from imagepipe.documents.normalize import (
    MAX_VALUE_CHARS,
    Locale,
    join_separated,
    parse_amount,
    parse_date,
    parse_identifier,
    parse_registration,
)
from imagepipe.documents.schema import FIELDS, FieldSpec

JsonDict = dict[str, Any]
MODEL_VERSION = "imagepipe-fields-1"
PROVIDER = "local"
MAX_LINES = 400
MAX_LINE_CHARS = 240
MAX_NAME_CHARS = 80
#: Pieces of one row closer than this many line heights are one line (see ``_join_fragments``).
JOIN_GAP = 0.8
#: Phrases that look like a label of ours but announce something else (``Date of birth`` is no invoice date).
IGNORED = (
    "date of birth",
    "due date",
    "payment date",
    "registration date",
    "date of registration",
    "policy type",
    "policy period",
    "policy start",
    "policy end",
    "claim type",
    "claim status",
    "vat number",
    "vat no",
    "vat reg",
    "tax id",
    "tax number",
    "tax rate",
    "customer number",
    "customer no",
    "customer id",
    "total items",
)
_LAYOUT = {"line": 1.0, "right": 0.95, "below": 0.9}
_TOKEN = re.compile(r"\S+")
_LEAD = " \t:;-–—#.=|"


def _label_key(text: str) -> tuple[str, ...]:
    return tuple(t for t in (tok.strip(":.").lower() for tok in text.split()) if t)


_LABELS: dict[tuple[str, ...], FieldSpec | None] = {_label_key(label): spec for spec in FIELDS for label in spec.labels}
_LABELS.update({_label_key(phrase): None for phrase in IGNORED})
_LONGEST = max(len(key) for key in _LABELS)


@dataclass
class Line:
    """One OCR line with its axis-aligned box and word confidences."""

    text: str
    polygon: list[JsonDict]
    x0: float
    y0: float
    x1: float
    y1: float
    words: list[tuple[str, float]]
    tokens: list[re.Match[str]] = field(default_factory=list)

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)


@dataclass
class Hit:
    spec: FieldSpec | None
    line: int
    start: int  # token index of the label's first word
    end: int  # token index after the label


def lines_of(read_result: JsonDict | None) -> tuple[list[Line], int]:
    """The first ``MAX_LINES`` lines of a ``readResult`` (texts cut to ``MAX_LINE_CHARS``) and how many were
    left out. Lines without a usable polygon get a zero box (they still count for same-line values)."""
    out: list[Line] = []
    skipped = 0
    blocks = (read_result or {}).get("blocks") or []
    for block in blocks if isinstance(blocks, list) else []:
        for raw in (block.get("lines") or []) if isinstance(block, dict) else []:
            if len(out) >= MAX_LINES:
                skipped += 1
                continue
            if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
                continue
            text = " ".join(raw["text"][:MAX_LINE_CHARS].split())
            polygon = _points(raw.get("boundingPolygon"))
            xs, ys = [p["x"] for p in polygon] or [0.0], [p["y"] for p in polygon] or [0.0]
            words = [
                (str(w.get("text", "")), float(w.get("confidence", 0.9)))
                for w in (raw.get("words") or [])[:60]
                if isinstance(w, dict) and isinstance(w.get("confidence", 0.9), (int, float))
            ]
            out.append(Line(text, polygon, min(xs), min(ys), max(xs), max(ys), words))
    merged = _join_fragments(out)
    for line in merged:
        line.tokens = list(_TOKEN.finditer(line.text))[:60]
    return merged, skipped


def _join_fragments(lines: list[Line]) -> list[Line]:
    """Pieces of one line that OCR detected apart (``Reg`` + ``No.``, ``XC34`` + ``RPX``) joined left to right:
    same row (vertical overlap of half a line) and a gap below ``JOIN_GAP`` line heights. Table columns and
    right-aligned amounts are further apart and stay separate lines."""
    joined: list[Line] = []
    for line in sorted(lines, key=lambda ln: ln.x0):
        for row in joined:
            same_row = _overlap(row.y0, row.y1, line.y0, line.y1) >= 0.5 * min(row.height, line.height)
            gap = line.x0 - row.x1
            if same_row and -0.5 * row.height <= gap <= JOIN_GAP * row.height:
                row.text = f"{row.text} {line.text}"[:MAX_LINE_CHARS]
                row.x1, row.y0, row.y1 = max(row.x1, line.x1), min(row.y0, line.y0), max(row.y1, line.y1)
                row.polygon = _box(row)
                row.words += line.words
                break
        else:
            joined.append(Line(line.text, line.polygon, line.x0, line.y0, line.x1, line.y1, list(line.words)))
    return sorted(joined, key=lambda ln: (ln.y0, ln.x0))


def _box(line: Line) -> list[JsonDict]:
    return [
        {"x": line.x0, "y": line.y0},
        {"x": line.x1, "y": line.y0},
        {"x": line.x1, "y": line.y1},
        {"x": line.x0, "y": line.y1},
    ]


def _points(raw: Any) -> list[JsonDict]:
    if not isinstance(raw, list):
        return []
    points = []
    for p in raw[:8]:
        if isinstance(p, dict) and isinstance(p.get("x"), (int, float)) and isinstance(p.get("y"), (int, float)):
            points.append({"x": float(p["x"]), "y": float(p["y"])})
    return points


def _labels_in(index: int, line: Line) -> list[Hit]:
    """The labels of one line: at its start, and after a value where the label's last word ends with a colon."""
    keys = [m.group(0).strip(":.").lower() for m in line.tokens]
    hits: list[Hit] = []
    t = 0
    while t < len(keys):
        found = None
        for k in range(min(_LONGEST, len(keys) - t), 0, -1):
            key = tuple(keys[t : t + k])
            if key in _LABELS and (t == 0 or line.tokens[t + k - 1].group(0).endswith(":")):
                found = Hit(_LABELS[key], index, t, t + k)
                break
        if found is None:
            t += 1
            continue
        hits.append(found)
        t = found.end
    return hits


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _candidates(lines: list[Line], labelled: set[int], hit: Hit) -> list[tuple[str, int, str]]:
    """(value text, line index, layout) candidates for a label, best first."""
    line = lines[hit.line]
    out: list[tuple[str, int, str]] = []
    rest = line.tokens[hit.end :]
    if rest:
        out.append((line.text[rest[0].start() :].lstrip(_LEAD), hit.line, "line"))
    label_x1 = line.tokens[hit.end - 1].end() / max(1, len(line.text)) * (line.x1 - line.x0) + line.x0
    right: list[tuple[float, int]] = []
    below: list[tuple[float, int]] = []
    for j, other in enumerate(lines):
        if j == hit.line or j in labelled:
            continue
        shared = _overlap(line.y0, line.y1, other.y0, other.y1)
        if shared >= 0.5 * min(line.height, other.height) and other.x0 >= label_x1 - 0.5 * line.height:
            right.append((other.x0 - label_x1, j))
            continue
        gap = other.y0 - line.y1
        aligned = _overlap(line.x0, label_x1, other.x0, other.x1) > 0 or abs(other.x0 - line.x0) < 2 * line.height
        if -0.3 * line.height <= gap <= 1.6 * line.height and aligned:
            below.append((gap, j))
    out += [(lines[j].text, j, "right") for _, j in sorted(right)[:2]]
    out += [(lines[j].text, j, "below") for _, j in sorted(below)[:2]]
    return out


def _parse(spec: FieldSpec, text: str, locale: Locale) -> tuple[str, JsonDict] | None:
    """(normalised value, extra JSON) when ``text`` is a value of the field's type."""
    text = text[:MAX_VALUE_CHARS].strip()
    if not text:
        return None
    if spec.type == "identifier":
        first = join_separated(text).split()[0]
        value = parse_identifier(first) or parse_identifier(text)
        return (value, {}) if value else None
    if spec.type == "registration":
        words = text.split()
        for size in (len(words), 3, 2, 1):
            value = parse_registration(" ".join(words[:size]))
            if value:
                return value, {}
        return None
    if spec.type == "date":
        day = parse_date(text, locale)
        return (day.isoformat(), {}) if day else None
    if spec.type == "currency":
        if not any(c.isdigit() for c in text):
            return None
        amount = parse_amount(text, locale)
        if amount is None:
            return None
        return decimal_text(amount.value), {"amount": float(amount.value), "currencyCode": amount.currency}
    name = " ".join(text.split())[:MAX_NAME_CHARS]
    if sum(c.isalpha() for c in name) < 2 or _labels_in(0, _line_of(name)):
        return None
    return name, {}


def _line_of(text: str) -> Line:
    line = Line(text, [], 0, 0, 0, 0, [])
    line.tokens = list(_TOKEN.finditer(text))[:60]
    return line


def decimal_text(value: Decimal) -> str:
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else format(value.normalize(), "f")


def _confidence(line: Line, value: str, layout: str, spec: FieldSpec) -> float:
    wanted = set(value.split())
    scores = [c for text, c in line.words if text in wanted]
    base = sum(scores) / len(scores) if scores else 0.9
    factor = _LAYOUT[layout] * (0.85 if spec.type == "string" else 1.0)
    return round(max(0.0, min(1.0, base * factor)), 4)


def _source(line: Line) -> JsonDict:
    return {"text": line.text, "boundingPolygon": line.polygon}


def extract_fields(read_result: JsonDict | None, locale_tag: str = "en-GB") -> JsonDict:
    """The ``documentFields`` JSON of one OCR result (see ``imagepipe.domain.DocumentFields``)."""
    locale = Locale.of(locale_tag)
    lines, skipped = lines_of(read_result)
    hits = [hit for i, line in enumerate(lines) for hit in _labels_in(i, line)]
    labelled = {hit.line for hit in hits if hit.start == 0}
    fields: dict[str, JsonDict] = {}
    for hit in hits:
        spec = hit.spec
        if spec is None:
            continue
        following = [h for h in hits if h.line == hit.line and h.start >= hit.end]
        for text, j, layout in _candidates(lines, labelled, hit):
            if layout == "line" and following:
                stop = lines[hit.line].tokens[following[0].start].start()
                start = lines[hit.line].tokens[hit.end].start()
                text = lines[hit.line].text[start:stop].strip(_LEAD)
            parsed = _parse(spec, text, locale)
            if parsed is None:
                if layout == "line" and text:
                    break  # the label's own line holds something else: never borrow a neighbour's value
                continue
            normalized, extra = parsed
            value = text[:MAX_VALUE_CHARS].strip()
            found = {
                "type": spec.type,
                "value": value,
                "normalized": normalized,
                **extra,
                "confidence": _confidence(lines[j], value, layout, spec),
                "sources": [_source(lines[j])] + ([_source(lines[hit.line])] if j != hit.line else []),
            }
            known = fields.get(spec.name)
            if known is None or found["confidence"] > known["confidence"]:
                fields[spec.name] = found
            break
    _shared_currency(fields)
    return {
        "provider": PROVIDER,
        "modelVersion": MODEL_VERSION,
        "locale": locale.tag,
        "fields": fields,
        "truncated": skipped,
    }


def _shared_currency(fields: dict[str, JsonDict]) -> None:
    codes = Counter(f["currencyCode"] for f in fields.values() if f["type"] == "currency" and f.get("currencyCode"))
    if len(codes) == 1:
        (code,) = codes
        for f in fields.values():
            if f["type"] == "currency" and not f.get("currencyCode"):
                f["currencyCode"] = code
