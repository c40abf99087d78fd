"""Custom label sets: names and limits (no numpy, so the API and the pipeline import it in every deployment).

The math (training, thresholds, classification) is ``imagepipe.custom_labels``; docs/custom-labels.md.
"""

from __future__ import annotations

import re
from typing import Any

from imagepipe.errors import InvalidInputError

UNKNOWN = "unknown"
CLASSIFIER = "nearest-centroid-cosine"
#: Limits of one label set (docs/custom-labels.md).
MAX_LABELS = 50
MIN_EXAMPLES_PER_LABEL = 1
MAX_EXAMPLES_PER_LABEL = 50
MAX_TOTAL_EXAMPLES = 300
#: Label set and label names: lower-case letters, digits, '-' and '_', starting with a letter or digit.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def check_name(value: Any, what: str) -> str:
    """``value`` when it is a valid label set or label name, else a 400 naming ``what``."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        shown = value[:60] if isinstance(value, str) else type(value).__name__
        raise InvalidInputError(
            f"{what} '{shown}' is invalid: use 1-48 characters a-z, 0-9, '-' or '_', starting with a letter or digit",
            code="invalid_label_name",
        )
    return value


def check_label_counts(counts: dict[str, int]) -> None:
    """400 unless the labels and their example counts are within the limits (``unknown`` is reserved)."""
    if not counts:
        raise InvalidInputError("a label set needs at least one label", code="invalid_label_set")
    if len(counts) > MAX_LABELS:
        raise InvalidInputError(
            f"a label set has at most {MAX_LABELS} labels, got {len(counts)}", code="too_many_labels"
        )
    for label, count in counts.items():
        check_name(label, "label")
        if label == UNKNOWN:
            raise InvalidInputError(
                f"'{UNKNOWN}' is reserved for images that match no label", code="invalid_label_name"
            )
        if not MIN_EXAMPLES_PER_LABEL <= count <= MAX_EXAMPLES_PER_LABEL:
            raise InvalidInputError(
                f"label '{label}' has {count} examples; each label needs "
                f"{MIN_EXAMPLES_PER_LABEL} to {MAX_EXAMPLES_PER_LABEL}",
                code="invalid_example_count",
            )
    total = sum(counts.values())
    if total > MAX_TOTAL_EXAMPLES:
        raise InvalidInputError(
            f"a label set has at most {MAX_TOTAL_EXAMPLES} examples in all, got {total}", code="too_many_examples"
        )
