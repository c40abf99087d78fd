"""Analysis profiles: which features to compute, which custom labels to score, the OCR policy and document fields.

Built-in profiles (general, fashion, insurance, game-telemetry) can be extended or overridden by a JSON
file named by the ``PROFILES_FILE`` setting (same shape as ``BUILTIN_PROFILES`` entries). The text-heavy
decision and label derivation live in ``imagepipe.policy``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imagepipe.errors import ConfigurationError, InvalidInputError
from imagepipe.ports import EXTRA_FEATURES, VISUAL_FEATURES

OcrPolicy = Literal["always", "auto", "never"]


@dataclass(frozen=True)
class LabelRule:
    """A profile label scored from evidence: any of these tags/objects (by name) or OCR keywords."""

    name: str
    tags: tuple[str, ...] = ()
    text_keywords: tuple[str, ...] = ()
    min_confidence: float = 0.3


@dataclass(frozen=True)
class DocumentFieldsPolicy:
    """A profile's ``documentFields``: read typed fields after OCR, in this locale, with this Azure model."""

    locale: str = "en-GB"
    model: str = "prebuilt-invoice"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    features: tuple[str, ...]
    extras: tuple[str, ...]
    ocr: OcrPolicy = "auto"
    labels: tuple[LabelRule, ...] = field(default_factory=tuple)
    document_fields: DocumentFieldsPolicy | None = None


def _profile_from_json(name: str, raw: Mapping[str, Any]) -> Profile:
    try:
        features = tuple(raw.get("features", ("tags", "objects", "people")))
        extras = tuple(raw.get("extras", EXTRA_FEATURES))
        ocr = raw.get("ocr", "auto")
        labels = tuple(
            LabelRule(
                name=str(rule["name"]),
                tags=tuple(rule.get("tags", ())),
                text_keywords=tuple(rule.get("textKeywords", ())),
                min_confidence=float(rule.get("minConfidence", 0.3)),
            )
            for rule in raw.get("labels", ())
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"profile '{name}' is malformed: {exc}") from exc
    unknown = [f for f in features if f not in VISUAL_FEATURES] + [e for e in extras if e not in EXTRA_FEATURES]
    if unknown:
        raise ConfigurationError(f"profile '{name}' names unknown features {unknown}")
    if ocr not in ("always", "auto", "never"):
        raise ConfigurationError(f"profile '{name}': ocr must be always|auto|never, not {ocr!r}")
    return Profile(name, str(raw.get("description", "")), features, extras, ocr, labels, _document_fields(name, raw))


#: Document Intelligence models a profile may name (docs/document-fields.md).
DOCUMENT_MODELS = ("prebuilt-invoice", "prebuilt-receipt")
_LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


def _document_fields(name: str, raw: Mapping[str, Any]) -> DocumentFieldsPolicy | None:
    """The profile's ``documentFields`` (absent or false: off; true: the defaults; or an object)."""
    spec = raw.get("documentFields")
    if spec in (None, False):
        return None
    if spec is True:
        return DocumentFieldsPolicy()
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"profile '{name}': documentFields must be true, false or an object")
    policy = DocumentFieldsPolicy(str(spec.get("locale", "en-GB")), str(spec.get("model", "prebuilt-invoice")))
    if not _LOCALE.match(policy.locale):
        raise ConfigurationError(f"profile '{name}': documentFields.locale must look like en-GB, not {policy.locale!r}")
    if policy.model not in DOCUMENT_MODELS:
        raise ConfigurationError(
            f"profile '{name}': documentFields.model must be one of {', '.join(DOCUMENT_MODELS)}, not {policy.model!r}"
        )
    return policy


BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "general": {
        "description": "Tags, objects and people; OCR when the image shows text.",
        "features": ["tags", "objects", "people"],
        "ocr": "auto",
        "labels": [],
    },
    "fashion": {
        "description": "Catalogue photos: garment and footwear classes, colours.",
        "features": ["tags", "objects", "people"],
        "ocr": "never",
        "labels": [
            {
                "name": "garment",
                "tags": [
                    "clothing",
                    "garment",
                    "jersey",
                    "t-shirt",
                    "sweatshirt",
                    "cardigan",
                    "suit",
                    "gown",
                    "jean",
                    "miniskirt",
                    "overskirt",
                    "trench coat",
                    "fur coat",
                    "lab coat",
                    "kimono",
                    "abaya",
                    "poncho",
                    "swimsuit",
                    "brassiere",
                    "bikini",
                    "apron",
                    "pajama",
                    "sweater",
                    "coat",
                    "dress",
                ],
            },
            {
                "name": "footwear",
                "tags": [
                    "footwear",
                    "shoe",
                    "running shoe",
                    "loafer",
                    "sandal",
                    "clog",
                    "cowboy boot",
                    "boot",
                    "sneaker",
                ],
            },
            {
                "name": "accessory",
                "tags": [
                    "handbag",
                    "purse",
                    "backpack",
                    "wallet",
                    "sunglasses",
                    "sunglass",
                    "bow tie",
                    "necklace",
                    "hat",
                    "cowboy hat",
                    "sombrero",
                    "umbrella",
                    "tie",
                    "watch",
                    "wristwatch",
                ],
            },
        ],
    },
    "insurance": {
        "description": "Claim photos and documents: vehicles, documents, receipts, invoices, ID cards.",
        "features": ["tags", "objects", "people"],
        "ocr": "auto",
        "documentFields": {"locale": "en-GB", "model": "prebuilt-invoice"},
        "labels": [
            {
                "name": "vehicle",
                "tags": [
                    "vehicle",
                    "car",
                    "motor vehicle",
                    "truck",
                    "bus",
                    "motorcycle",
                    "sports car",
                    "convertible",
                    "minivan",
                    "pickup",
                    "cab",
                    "jeep",
                    "limousine",
                    "police van",
                    "moving van",
                    "ambulance",
                ],
            },
            {
                "name": "document",
                "tags": ["document", "text", "envelope", "menu", "book jacket", "comic book"],
                "textKeywords": ["policy", "claim", "page", "date", "signature"],
            },
            {"name": "receipt", "tags": [], "textKeywords": ["receipt", "subtotal", "total", "change", "cash", "vat"]},
            {
                "name": "invoice",
                "tags": [],
                "textKeywords": ["invoice", "amount due", "bill to", "due date", "invoice no"],
            },
            {
                "name": "id_card",
                "tags": [],
                "textKeywords": [
                    "date of birth",
                    "identity",
                    "passport",
                    "licence",
                    "license",
                    "id card",
                    "nationality",
                ],
            },
        ],
    },
    "game-telemetry": {
        "description": "Game screenshots: screenshot / menu / scoreboard.",
        "features": ["tags", "objects", "people"],
        "ocr": "auto",
        "labels": [
            {"name": "screenshot", "tags": ["screenshot", "web site", "monitor", "screen", "television"]},
            {
                "name": "menu",
                "tags": [],
                "textKeywords": ["start", "options", "settings", "quit", "continue", "new game", "load game"],
            },
            {
                "name": "scoreboard",
                "tags": ["scoreboard"],
                "textKeywords": ["score", "kills", "deaths", "rank", "points", "wins", "level"],
            },
        ],
    },
}


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Built-in profiles, updated by the JSON object in ``path`` (``{"name": {...}}``) when given."""
    raw: dict[str, Any] = dict(BUILTIN_PROFILES)
    if path:
        try:
            extra = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"PROFILES_FILE {path} cannot be read as JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise ConfigurationError(f"PROFILES_FILE {path} must hold a JSON object of profiles")
        raw.update(extra)
    return {name: _profile_from_json(name, spec) for name, spec in raw.items()}


def resolve_profile(profiles: Mapping[str, Profile], name: str | None) -> Profile:
    """The named profile (``general`` when empty); an unknown name is a 400 listing the valid ones."""
    key = (name or "general").strip()
    if key not in profiles:
        raise InvalidInputError(
            f"unknown profile '{key}'; valid profiles: {', '.join(sorted(profiles))}", code="unknown_profile"
        )
    return profiles[key]
