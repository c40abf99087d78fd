"""Character error rate for the OCR tests: the OCR benchmark's edit distance over the reference length."""

from __future__ import annotations

from bench.bench_ocr import edit_distance


def cer(reference: str, hypothesis: str) -> float:
    return edit_distance(reference, hypothesis) / max(1, len(reference))
