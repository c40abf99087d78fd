"""Profile policy over an analysis result: is the image text-heavy (run OCR?), and which profile labels hold.

Both functions read only the JSON result (Azure AI Vision 4.0 shape + our ``imagepipe`` extras), so they
work the same for the Azure and the local provider. With Azure, ``imagepipe.textEvidence`` and
``imagepipe.barcodes`` are absent; the decision then rests on the tags alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from imagepipe.profiles import LabelRule, Profile
from imagepipe.records import tag_entries

#: Tags that say "this picture is mostly text" (AI Vision's and the local classifier's names).
DOCUMENT_TAGS = frozenset(
    {
        "text",
        "document",
        "menu",
        "screenshot",
        "web site",
        "website",
        "envelope",
        "book jacket",
        "receipt",
        "font",
        "handwriting",
        "paper",
        "letter",
        "poster",
        "comic book",
        "crossword",
        "scoreboard",
        "screen",
        "book",
        "sign",
        "number",
    }
)
#: Confidence from which a document-like tag alone makes an image text-heavy.
DOCUMENT_TAG_MIN = 0.5
#: ``imagepipe.textEvidence.score`` from which an image is text-heavy.
TEXT_EVIDENCE_MIN = 0.5


def is_text_heavy(analysis: Mapping[str, Any], profile: Profile) -> bool:
    """Whether to run OCR: the profile's ``ocr`` policy, and for ``auto`` the text evidence, a
    document-like tag or a barcode."""
    if profile.ocr == "always":
        return True
    if profile.ocr == "never":
        return False
    extras = analysis.get("imagepipe") or {}
    evidence = extras.get("textEvidence") or {}
    if float(evidence.get("score", 0.0)) >= TEXT_EVIDENCE_MIN:
        return True
    if extras.get("barcodes"):
        return True
    return any(name in DOCUMENT_TAGS and conf >= DOCUMENT_TAG_MIN for name, conf, _ in tag_entries(analysis))


def _ocr_lines(read_result: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """(lower-case line text, mean word confidence) of every OCR line."""
    lines = []
    for block in (read_result or {}).get("blocks", ()):
        for line in block.get("lines", ()):
            words = line.get("words", ())
            conf = sum(float(w.get("confidence", 0.0)) for w in words) / len(words) if words else 0.9
            lines.append((" ".join(str(line.get("text", "")).lower().split()), conf))
    return lines


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # OCR may drop the spaces between words ("amountdue"), so a space in a keyword matches zero or more.
    parts = [re.escape(p) for p in keyword.lower().split()]
    return re.compile(r"(?<![a-z0-9])" + r"\s*".join(parts) + r"(?![a-z0-9])")


def _score_rule(
    rule: LabelRule, tags: list[tuple[str, float, str]], lines: list[tuple[str, float]]
) -> tuple[float, str] | None:
    wanted = {t.lower() for t in rule.tags}
    evidence: list[tuple[float, str]] = [(conf, f"{kind}:{name}") for name, conf, kind in tags if name in wanted]
    for keyword in rule.text_keywords:
        pattern = _keyword_pattern(keyword)
        hits = [conf for text, conf in lines if pattern.search(text)]
        if hits:
            evidence.append((max(hits), f"text:{keyword.lower()}"))
    if not evidence:
        return None
    evidence.sort(key=lambda e: -e[0])
    best, why = evidence[0]
    distinct = {e[1] for e in evidence}
    if len(distinct) > 1:  # independent pieces of evidence reinforce each other (noisy-OR of the top two)
        second = next(c for c, w in evidence if w != why)
        best = 1.0 - (1.0 - best) * (1.0 - second)
    return min(1.0, best), why


def derive_labels(
    analysis: Mapping[str, Any], read_result: Mapping[str, Any] | None, profile: Profile
) -> list[dict[str, Any]]:
    """[{name, confidence, evidence}] for each of the profile's labels that reaches its min confidence,
    best first; ``evidence`` names the strongest support, e.g. ``tag:car``, ``object:car``, ``text:total``."""
    tags = list(tag_entries(analysis))
    lines = _ocr_lines(read_result if read_result is not None else analysis.get("readResult"))
    labels: list[dict[str, Any]] = []
    for rule in profile.labels:
        scored = _score_rule(rule, tags, lines)
        if scored is not None and scored[0] >= rule.min_confidence:
            labels.append({"name": rule.name, "confidence": round(scored[0], 4), "evidence": scored[1]})
    labels.sort(key=lambda lab: (-float(lab["confidence"]), str(lab["name"])))
    return labels
