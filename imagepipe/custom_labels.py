"""Custom labels: the math of a label set (training, threshold calibration, classification) and its limits.

A label set is a few example images per label, chosen by a user (a catalogue's ``dress``/``shoe``/``bag``).
Each example is embedded with the model we already ship (EfficientNet-Lite0's pooled 1280 features,
L2-normalised; ``imagepipe.vision.classifier``), and the classifier is **nearest centroid with cosine
similarity**: a label's centroid is the normalised mean of its examples' embeddings; an image gets the label
of the most similar centroid, or ``unknown`` when even that similarity is below the set's threshold.

Why nearest centroid: with 1 to 50 examples per label it has no hyper-parameters to tune, trains in
microseconds, cannot overfit the way a weight vector per label on 1280 dimensions can, leave-one-out has a
closed form (remove one example from its label's sum), and a version is small, inspectable data.

Threshold calibration (leave-one-out): for each example of a label with at least two examples, its
*genuine* score is its similarity to its own label's centroid computed without it, and its *impostor* score
is its best similarity to any other label's centroid (an image that is not of that label). The threshold
minimises (genuine rejected + impostors accepted) / 2 over the midpoints between scores, but is never above
``mean - TAIL_SD * sd`` of the genuine scores (other labels are near misses, and telling labels apart is the
argmax's job: the threshold only refuses what is none of them, and should refuse few of a label's own
images; with a few examples the spread is a steadier guide to the genuine tail than a percentile); with
genuine scores only (one label) it is that floor; without genuine scores (every label has a single
example) it is ``DEFAULT_THRESHOLD``. The LOO accuracy reported with a version is closed-set (argmax over
the labels) on the examples whose label has at least two examples.

Confidence: ``sigmoid((s - threshold) / scale)`` with ``s`` the best similarity and ``scale`` the spread of
the genuine scores (at least ``MIN_SCALE``), so 0.5 is the threshold; ``unknown`` reports
``1 - that``. It is a monotone score, not a calibrated probability.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imagepipe.errors import InvalidInputError
from imagepipe.label_rules import (
    CLASSIFIER,
    MAX_EXAMPLES_PER_LABEL,
    MAX_LABELS,
    MAX_TOTAL_EXAMPLES,
    MIN_EXAMPLES_PER_LABEL,
    NAME_PATTERN,
    UNKNOWN,
    check_label_counts,
    check_name,
)

JsonDict = dict[str, Any]

__all__ = [
    "CLASSIFIER",
    "MAX_EXAMPLES_PER_LABEL",
    "MAX_LABELS",
    "MAX_TOTAL_EXAMPLES",
    "MIN_EXAMPLES_PER_LABEL",
    "NAME_PATTERN",
    "UNKNOWN",
    "Calibration",
    "Centroids",
    "calibrate",
    "check_label_counts",
    "check_name",
    "decode_vector",
    "encode_vector",
    "normalise_rows",
    "train",
]

#: The threshold used when no leave-one-out score exists (every label has one example). On the benchmark
#: (bench/bench_labels.py) left-out examples score 0.52-0.9 against their label's centroid (median 0.74-0.83),
#: generated non-garment images 0.45-0.69 (median 0.56) and unrelated photos 0.15-0.36.
DEFAULT_THRESHOLD = 0.6
MIN_SCALE = 0.02
#: The threshold is never more than this many spreads (standard deviations) of the left-out genuine scores
#: below their mean. Chosen on the benchmark's generated set (bench/bench_labels.py; docs/custom-labels.md has
#: the sweep over 1.5-3): 2 keeps held-out accuracy at 95-100% while still refusing 78-100% of strangers.
TAIL_SD = 2.0
DEFAULT_SCALE = 0.05


# ---------------------------------------------------------------------------------------------------
# Vectors as JSON
# ---------------------------------------------------------------------------------------------------


def encode_vector(vector: NDArray[Any]) -> str:
    """A vector as base64 of its little-endian float32 values (exact and 4x smaller than a JSON list)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> NDArray[np.float32]:
    out: NDArray[np.float32] = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
    return out


def normalise_rows(matrix: NDArray[Any]) -> NDArray[np.float64]:
    m = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    out: NDArray[np.float64] = m / np.where(norms > 0, norms, 1.0)
    return out


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    threshold: float
    source: str
    scale: float


def calibrate(genuine: list[float], impostor: list[float]) -> Calibration:
    """The unknown threshold from leave-one-out scores (see the module docstring)."""
    if not genuine:
        return Calibration(DEFAULT_THRESHOLD, "default", DEFAULT_SCALE)
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    spread = max(MIN_SCALE, float(np.std(g))) if len(g) >= 2 else DEFAULT_SCALE
    # A label's own images: never refuse those more than TAIL_SD spreads below the left-out mean. With a
    # few examples the empirical tail is too short to read a percentile from; the spread is steadier.
    floor = float(np.mean(g)) - TAIL_SD * spread
    if not impostor:
        return Calibration(floor, "loo-genuine-tail", spread)
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    scores = np.unique(np.concatenate([g, imp]))
    candidates = np.concatenate([[scores[0] - 1e-6], (scores[:-1] + scores[1:]) / 2, [scores[-1] + 1e-6]])
    # rejected genuine: g < t; accepted impostors: imp >= t
    frr = np.searchsorted(g, candidates, side="left") / len(g)
    far = 1.0 - np.searchsorted(imp, candidates, side="left") / len(imp)
    cost = frr + far
    best = float(candidates[int(np.flatnonzero(cost <= cost.min() + 1e-12)[0])])  # the lowest of the best
    # Other labels' examples are near misses (a dress is more like a shirt than an unrelated photo is), and
    # choosing between labels is the argmax's job: the threshold only has to refuse what is none of them.
    if floor < best:
        return Calibration(floor, "loo-genuine-tail", spread)
    return Calibration(best, "loo-balanced-error", spread)


def train(examples: Mapping[str, ArrayLike]) -> JsonDict:
    """The trained model of a label set from each label's example embeddings (rows; normalised here).

    Returns JSON-native data: ``labels`` ([{name, examples, centroid}], centroid = ``encode_vector``),
    ``threshold``, ``thresholdSource``, ``scale`` and ``loo`` ({accuracy, evaluated, correct,
    belowThreshold}); accuracy is None when no example could be left out.
    """
    names = list(examples)
    arrays = {n: np.asarray(examples[n], dtype=np.float64) for n in names}
    # one row per example (a single 1-d vector counts as one example)
    check_label_counts({n: a.shape[0] if a.ndim == 2 else int(a.size > 0) for n, a in arrays.items()})
    rows = {n: normalise_rows(np.atleast_2d(a)) for n, a in arrays.items()}
    sums = {n: rows[n].sum(axis=0) for n in names}
    centroids = normalise_rows(np.stack([sums[n] for n in names]))
    genuine: list[float] = []
    impostor: list[float] = []
    correct = evaluated = 0
    for k, name in enumerate(names):
        others = [j for j in range(len(names)) if j != k]
        for x in rows[name]:
            best_other = max((float(centroids[j] @ x) for j in others), default=None)
            if best_other is not None:
                impostor.append(best_other)
            if len(rows[name]) < 2:
                continue
            own = normalise_rows(sums[name] - x)
            score = float(own @ x)
            genuine.append(score)
            evaluated += 1
            correct += int(best_other is None or score > best_other)
    calibration = calibrate(genuine, impostor)
    below = sum(1 for s in genuine if s < calibration.threshold)
    return {
        "classifier": CLASSIFIER,
        "labels": [
            {"name": n, "examples": len(rows[n]), "centroid": encode_vector(centroids[k])} for k, n in enumerate(names)
        ],
        "threshold": round(calibration.threshold, 6),
        "thresholdSource": calibration.source,
        "scale": round(calibration.scale, 6),
        "loo": {
            "accuracy": round(correct / evaluated, 4) if evaluated else None,
            "evaluated": evaluated,
            "correct": correct,
            "belowThreshold": below,
        },
    }


# ---------------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Centroids:
    """A trained version ready to classify: label names, their centroid matrix, threshold and scale."""

    names: list[str]
    matrix: NDArray[np.float64]
    threshold: float
    scale: float

    @classmethod
    def of(cls, model: JsonDict) -> Centroids:
        labels = model["labels"]
        matrix = normalise_rows(np.stack([decode_vector(label["centroid"]) for label in labels]))
        return cls([str(label["name"]) for label in labels], matrix, float(model["threshold"]), float(model["scale"]))

    def classify(self, embedding: ArrayLike) -> JsonDict:
        """``{name, confidence, similarity}``: the best label, or ``unknown`` below the threshold."""
        x = normalise_rows(np.asarray(embedding).reshape(-1))
        if x.shape[0] != self.matrix.shape[1]:
            raise InvalidInputError(
                f"embedding has {x.shape[0]} values but this label set was trained on {self.matrix.shape[1]}",
                code="embedding_mismatch",
            )
        sims = self.matrix @ x
        best = int(np.argmax(sims))
        similarity = float(sims[best])
        z = (similarity - self.threshold) / self.scale
        accept = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
        if similarity < self.threshold:
            return {"name": UNKNOWN, "confidence": round(1.0 - accept, 4), "similarity": round(similarity, 4)}
        return {"name": self.names[best], "confidence": round(accept, 4), "similarity": round(similarity, 4)}
