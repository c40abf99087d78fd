"""Azure AI Document Intelligence ``analyzeResult`` JSON -> our ``documentFields`` (pure; no SDK needed).

The first analyzed document's ``fields`` are read by name: prebuilt-invoice names are ours already, prebuilt-receipt
names go through ``RECEIPT_NAMES``, and the insurance fields arrive as query fields (``valueString``). Names
outside our schema (``DueDate``, ``Items``, ``VendorAddress`` ...) are left out. Values are normalised exactly as the
local extractor normalises them: currency from ``valueCurrency`` (amount and ISO code), dates from ``valueDate``
(else the content through our date parser), identifiers and registrations through our parsers (a query-field
answer that is no identifier or registration is dropped, so both modes agree on what a field holds). Each field's
source is its ``content`` and the polygon of its first bounding region (flat ``[x1, y1, x2, y2, ...]`` in the
page's unit, pixels for images).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from imagepipe.documents.extract import decimal_text
from imagepipe.documents.normalize import (
    MAX_VALUE_CHARS,
    Locale,
    parse_amount,
    parse_date,
    parse_identifier,
    parse_registration,
)
from imagepipe.documents.schema import BY_NAME, RECEIPT_NAMES, FieldSpec

JsonDict = dict[str, Any]
PROVIDER = "azure-document-intelligence"


def _polygon(field: JsonDict) -> list[JsonDict]:
    regions = field.get("boundingRegions") or []
    flat = regions[0].get("polygon") if regions and isinstance(regions[0], dict) else None
    if not isinstance(flat, list):
        return []
    numbers = [float(v) for v in flat[:16] if isinstance(v, (int, float))]
    return [{"x": numbers[i], "y": numbers[i + 1]} for i in range(0, len(numbers) - 1, 2)]


def _text(field: JsonDict) -> str:
    for key in ("content", "valueString"):
        value = field.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:MAX_VALUE_CHARS]
    return ""


def _value(spec: FieldSpec, field: JsonDict, locale: Locale) -> tuple[str, JsonDict] | None:
    text = _text(field)
    if spec.type == "currency":
        currency = field.get("valueCurrency")
        if isinstance(currency, dict) and isinstance(currency.get("amount"), (int, float)):
            try:
                amount = Decimal(str(currency["amount"]))
            except InvalidOperation:
                return None
            code = currency.get("currencyCode")
            return decimal_text(amount), {
                "amount": float(amount),
                "currencyCode": code if isinstance(code, str) and len(code) == 3 else None,
            }
        parsed = parse_amount(text, locale)
        if parsed is None:
            return None
        return decimal_text(parsed.value), {"amount": float(parsed.value), "currencyCode": parsed.currency}
    if spec.type == "date":
        raw = field.get("valueDate")
        if isinstance(raw, str) and len(raw) == 10:
            return raw, {}
        day = parse_date(text, locale)
        return (day.isoformat(), {}) if day else None
    if spec.type == "identifier":
        value = parse_identifier(str(field.get("valueString") or text))
        return (value, {}) if value else None
    if spec.type == "registration":
        value = parse_registration(str(field.get("valueString") or text))
        return (value, {}) if value else None
    name = str(field.get("valueString") or text).strip()[:80]
    return (" ".join(name.split()), {}) if name else None


def fields_from_analyze_result(result: JsonDict, locale_tag: str) -> JsonDict:
    """The ``documentFields`` JSON of one ``analyzeResult`` (the service's JSON, camelCase names)."""
    locale = Locale.of(locale_tag)
    documents = result.get("documents") or []
    raw_fields = documents[0].get("fields") if documents and isinstance(documents[0], dict) else None
    fields: dict[str, JsonDict] = {}
    for raw_name, field in (raw_fields or {}).items():
        name = RECEIPT_NAMES.get(raw_name, raw_name)
        spec = BY_NAME.get(name)
        if spec is None or not isinstance(field, dict) or name in fields:
            continue
        parsed = _value(spec, field, locale)
        if parsed is None:
            continue
        normalized, extra = parsed
        confidence = field.get("confidence")
        fields[name] = {
            "type": spec.type,
            "value": _text(field) or normalized,
            "normalized": normalized,
            **extra,
            "confidence": round(float(confidence), 4) if isinstance(confidence, (int, float)) else 0.0,
            "sources": [{"text": _text(field) or normalized, "boundingPolygon": _polygon(field)}],
        }
    model = str(result.get("modelId") or "prebuilt")
    version = str(result.get("apiVersion") or "")
    return {
        "provider": PROVIDER,
        "modelVersion": f"{model}@{version}"[:64] if version else model[:64],
        "locale": locale.tag,
        "fields": fields,
        "truncated": 0,
    }
