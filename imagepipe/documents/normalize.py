"""Value normalisation for document fields: amounts with currency, dates, vehicle registrations, identifiers.

Every parser takes one short string (callers cut it to ``MAX_VALUE_CHARS``) and returns ``None`` when the
text is not a value of its type. The regular expressions are linear: no nested quantifiers, no alternations
that overlap under a repeat, so a hostile line costs time proportional to its (bounded) length.

Locale decides what the text alone cannot: the decimal separator of ``1,234`` / ``1.234`` (``en-*``: point,
most of continental Europe: comma) and whether ``03/04/2026`` is 3 April (day first) or 4 March (``en-US``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

#: The longest value text any parser looks at.
MAX_VALUE_CHARS = 80

#: Locales whose decimal separator is the point; any other locale uses the comma.
_POINT_DECIMAL_LANGS = frozenset({"en", "ja", "zh", "ko", "he", "th", "ms", "hi"})
#: Locales that write the month first in numeric dates.
_MONTH_FIRST = frozenset({"en-US", "en-PH", "en-CA-US"})

SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY", "₹": "INR", "₩": "KRW", "₺": "TRY", "₽": "RUB", "zł": "PLN"}
CODES = frozenset(
    "EUR GBP USD CHF SEK NOK DKK PLN CZK HUF RON BGN JPY CNY INR AUD CAD NZD ZAR TRY BRL MXN SGD HKD".split()
)
_CURRENCY_WORD = re.compile(r"\b[A-Z]{3}\b")
_NUMBER = re.compile(r"[-+]?\d[\d.,'\u00a0\u202f ]{0,24}")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan", "januar", "janvier", "januari"),
            ("february", "feb", "februar", "fevrier", "février", "februari"),
            ("march", "mar", "märz", "maerz", "marz", "mrz", "mars", "maart"),
            ("april", "apr", "avril"),
            ("may", "mai", "mei"),
            ("june", "jun", "juni", "juin"),
            ("july", "jul", "juli", "juillet"),
            ("august", "aug", "août", "aout", "augustus"),
            ("september", "sep", "sept", "septembre"),
            ("october", "oct", "oktober", "octobre", "okt"),
            ("november", "nov", "novembre"),
            ("december", "dec", "dezember", "décembre", "decembre", "dez"),
        ),
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})\b")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\.? ?([A-Za-zéèûä]{3,10})\.?,? ?(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([A-Za-zéèûä]{3,10})\.? ?(\d{1,2})(?:st|nd|rd|th)?,? ?(\d{4})\b")

#: UK formats (current, prefix, suffix) and common continental shapes, on the text without spaces or hyphens.
_UK_CURRENT = re.compile(r"^([A-Z]{2}[0-9]{2})([A-Z]{3})$")
_UK_PREFIX = re.compile(r"^([A-Z][1-9][0-9]{0,2})([A-Z]{3})$")
_UK_SUFFIX = re.compile(r"^([A-Z]{3})([1-9][0-9]{0,2}[A-Z])$")
_EU_SHAPE = re.compile(r"^[A-Z0-9]{1,4}(?:[- ][A-Z0-9]{1,4}){1,3}$")
_IDENTIFIER = re.compile(r"^[A-Z0-9][A-Z0-9/._-]{2,39}$")


@dataclass(frozen=True)
class Locale:
    """What a profile's locale (a BCP 47 tag such as ``en-GB``) decides."""

    tag: str
    decimal: str
    month_first: bool

    @classmethod
    def of(cls, tag: str) -> Locale:
        lang = tag.split("-")[0].lower()
        return cls(tag, "." if lang in _POINT_DECIMAL_LANGS else ",", tag in _MONTH_FIRST)


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str | None


def parse_amount(text: str, locale: Locale) -> Amount | None:
    """An amount and its currency (symbol or ISO code) from text such as ``£1,234.56``, ``1.234,56 EUR``,
    ``1 234,56 €``, ``USD 99``; ``None`` when the text holds no number."""
    text = text[:MAX_VALUE_CHARS]
    currency = None
    for symbol, code in SYMBOLS.items():
        if symbol in text:
            currency = code
            break
    if currency is None:
        for word in _CURRENCY_WORD.findall(text.upper()):
            if word in CODES:
                currency = word
                break
    match = _NUMBER.search(text)
    if match is None:
        return None
    number = _to_decimal(match.group(0).strip(" \u00a0\u202f"), locale)
    return None if number is None else Amount(number, currency)


def _to_decimal(raw: str, locale: Locale) -> Decimal | None:
    sign = "-" if raw.startswith("-") else ""
    body = raw.lstrip("+-")
    for grouping in ("'", "\u00a0", "\u202f", " "):
        body = body.replace(grouping, "")
    body = body.rstrip(".,")
    points, commas = body.count("."), body.count(",")
    if points and commas:
        decimal_sep = "." if body.rfind(".") > body.rfind(",") else ","
    elif points or commas:
        sep = "." if points else ","
        tail = body.rsplit(sep, 1)[1]
        if body.count(sep) > 1:
            decimal_sep = "" if len(tail) == 3 else sep
            if decimal_sep:
                return None  # 1.2.3: not a number
        elif len(tail) == 3:
            decimal_sep = sep if sep == locale.decimal else ""  # 1,234: thousands in en, 1.234 in de
        else:
            decimal_sep = sep
    else:
        decimal_sep = ""
    thousands = {".", ","} - {decimal_sep}
    for mark in thousands:
        body = body.replace(mark, "")
    if decimal_sep:
        body = body.replace(decimal_sep, ".")
    try:
        value = Decimal(sign + body)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _year(raw: str) -> int:
    value = int(raw)
    return value + (2000 if value < 70 else 1900) if len(raw) == 2 else value


def parse_date(text: str, locale: Locale) -> date | None:
    """A calendar date from ``2026-03-12``, ``12/03/2026`` (day first unless the locale writes month first;
    a day above 12 decides either way), ``12.03.26``, ``12 March 2026``, ``12th Mar 2026``, ``March 12, 2026``."""
    text = text[:MAX_VALUE_CHARS]
    if match := _ISO_DATE.search(text):
        return _valid(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if match := _NUMERIC_DATE.search(text):
        a, b, year = int(match.group(1)), int(match.group(2)), _year(match.group(3))
        first = (b, a) if locale.month_first else (a, b)  # (day, month)
        day, month = first if first[1] <= 12 else (first[1], first[0])
        return _valid(year, month, day)
    if match := _DAY_MONTH_YEAR.search(text):
        named = _MONTHS.get(match.group(2).lower())
        if named:
            return _valid(int(match.group(3)), named, int(match.group(1)))
    if match := _MONTH_DAY_YEAR.search(text):
        named = _MONTHS.get(match.group(1).lower())
        if named:
            return _valid(int(match.group(3)), named, int(match.group(2)))
    return None


_AS_LETTER = str.maketrans("0158246", "OISBZAG")
_AS_DIGIT = str.maketrans("OILSBZQDAGT", "01158200467")


def _uk_current_repaired(compact: str) -> str:
    """A 7-character UK plate with OCR's look-alikes put back by position (letters, 2 digits, 3 letters)."""
    if len(compact) != 7:
        return compact
    head, digits, tail = compact[:2], compact[2:4], compact[4:]
    return head.translate(_AS_LETTER) + digits.translate(_AS_DIGIT) + tail.translate(_AS_LETTER)


def parse_registration(text: str) -> str | None:
    """A vehicle registration, upper case: UK ones in their standard spacing (``AB12 CDE``; OCR look-alikes such as
    0/O put back by position), others with single hyphens between their groups (``B-MW-1234``, ``12-ABC-3``);
    ``None`` for anything else."""
    raw = text[:MAX_VALUE_CHARS].strip().upper()
    compact = re.sub(r"[\s-]", "", raw)
    if not 2 <= len(compact) <= 10:
        return None
    for pattern in (_UK_CURRENT, _UK_PREFIX, _UK_SUFFIX):
        if match := pattern.match(compact):
            return f"{match.group(1)} {match.group(2)}"
    if match := _UK_CURRENT.match(_uk_current_repaired(compact)):
        return f"{match.group(1)} {match.group(2)}"
    grouped = " ".join(raw.split())
    if _EU_SHAPE.match(grouped) and any(c.isdigit() for c in compact) and any(c.isalpha() for c in compact):
        return re.sub(r"[- ]", "-", grouped)
    return None


def parse_identifier(text: str) -> str | None:
    """A claim, policy or invoice number: 3 to 40 of letters, digits and ``/ . _ -``, at least one digit, upper
    case; inner spaces are dropped (``CLM 2026 0045`` -> ``CLM20260045``) and OCR's 0/O confusion is undone
    where the neighbours decide it (``P0L-12`` -> ``POL-12``, ``12O4`` -> ``1204``)."""
    compact = "".join(text[:MAX_VALUE_CHARS].split()).upper().strip(".:,;#")
    if not (_IDENTIFIER.match(compact) and any(c.isdigit() for c in compact)):
        return None
    chars = list(compact)
    for i in range(1, len(chars) - 1):
        before, after = compact[i - 1], compact[i + 1]
        if chars[i] == "0" and before.isalpha() and after.isalpha():
            chars[i] = "O"
        elif chars[i] == "O" and before.isdigit() and after.isdigit():
            chars[i] = "0"
    return "".join(chars)


def join_separated(text: str) -> str:
    """``CLM- 2024-476674`` -> ``CLM-2024-476674``: spaces OCR put around an identifier's separators dropped."""
    return _AROUND_SEPARATOR.sub(r"\1", text[:MAX_VALUE_CHARS])


_AROUND_SEPARATOR = re.compile(r" ?([-/]) ?")
