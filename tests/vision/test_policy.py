"""``imagepipe.policy``: the text-heavy decision and profile labels, on hand-written results."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from imagepipe.policy import derive_labels, is_text_heavy
from imagepipe.profiles import LabelRule, load_profiles

pytestmark = pytest.mark.unit
PROFILES = load_profiles()


def result(
    tags: dict[str, float] | None = None,
    objects: dict[str, float] | None = None,
    evidence: float | None = None,
    barcodes: int = 0,
    lines: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tagsResult": {"values": [{"name": n, "confidence": c} for n, c in (tags or {}).items()]},
        "objectsResult": {
            "values": [
                {"boundingBox": {"x": 0, "y": 0, "w": 5, "h": 5}, "tags": [{"name": n, "confidence": c}]}
                for n, c in (objects or {}).items()
            ]
        },
        "imagepipe": {"barcodes": [{"format": "QRCode", "text": "x"}] * barcodes},
    }
    if evidence is not None:
        out["imagepipe"]["textEvidence"] = {"score": evidence, "areaFraction": 0.0, "boxes": 0}
    if lines is not None:
        out["readResult"] = {
            "blocks": [
                {"lines": [{"text": t, "words": [{"text": w, "confidence": 0.9} for w in t.split()]} for t in lines]}
            ]
        }
    return out


@pytest.mark.parametrize(
    ("analysis", "expected"),
    [
        (result(tags={"cat": 0.9}, evidence=0.1), False),
        (result(tags={"cat": 0.9}, evidence=0.8), True),
        (result(tags={"document": 0.7}), True),
        (result(tags={"screenshot": 0.3}), False),  # too unsure
        (result(tags={"cat": 0.9}, barcodes=1), True),
        (result(tags={"web site": 0.6}), True),
        (result(), False),
    ],
)
def test_auto_policy(analysis: dict[str, Any], expected: bool) -> None:
    assert is_text_heavy(analysis, PROFILES["general"]) is expected


def test_always_and_never_override_the_evidence() -> None:
    text = result(tags={"document": 0.99}, evidence=1.0)
    photo = result(tags={"cat": 0.99}, evidence=0.0)
    assert is_text_heavy(text, PROFILES["fashion"]) is False  # fashion: ocr never
    assert is_text_heavy(photo, replace(PROFILES["general"], ocr="always")) is True


def test_insurance_vehicle_from_tag_and_object() -> None:
    labels = derive_labels(result(tags={"car": 0.8}, objects={"truck": 0.6}), None, PROFILES["insurance"])
    assert labels[0]["name"] == "vehicle"
    assert labels[0]["evidence"] == "tag:car"
    assert labels[0]["confidence"] == pytest.approx(1 - 0.2 * 0.4)  # two pieces of evidence reinforce


def test_insurance_receipt_from_ocr_keywords_even_without_spaces() -> None:
    read = result(lines=["ACME STORE", "SUBTOTAL 12.00", "TOTAL 14.40"])["readResult"]
    labels = derive_labels(result(tags={"text": 0.9}), read, PROFILES["insurance"])
    names = [lab["name"] for lab in labels]
    assert "receipt" in names and "document" in names
    receipt = next(lab for lab in labels if lab["name"] == "receipt")
    assert receipt["evidence"].startswith("text:")
    squashed = result(lines=["Amountdue: 312.40"])["readResult"]
    invoice = derive_labels(result(), squashed, PROFILES["insurance"])
    assert [lab["name"] for lab in invoice] == ["invoice"]


def test_keywords_match_whole_words_only() -> None:
    read = result(lines=["totally unrelated words"])["readResult"]
    assert derive_labels(result(), read, PROFILES["insurance"]) == []


def test_read_result_falls_back_to_the_analysis() -> None:
    analysis = result(lines=["NEW GAME", "OPTIONS", "QUIT"])
    labels = derive_labels(analysis, None, PROFILES["game-telemetry"])
    assert [lab["name"] for lab in labels] == ["menu"]


def test_min_confidence_filters() -> None:
    profile = replace(PROFILES["general"], labels=(LabelRule("pet", tags=("cat", "dog"), min_confidence=0.6),))
    assert derive_labels(result(tags={"cat": 0.5}), None, profile) == []
    assert derive_labels(result(tags={"dog": 0.7}), None, profile) == [
        {"name": "pet", "confidence": 0.7, "evidence": "tag:dog"}
    ]


def test_fashion_labels_from_local_tags() -> None:
    labels = derive_labels(result(tags={"clothing": 0.77, "tie": 0.87, "sneaker": 0.4}), None, PROFILES["fashion"])
    assert {lab["name"] for lab in labels} == {"garment", "accessory", "footwear"}
