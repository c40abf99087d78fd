"""The custom labels math: nearest-centroid training, leave-one-out accuracy and threshold, confidence, limits.

Synthetic embeddings (clusters around random unit directions in 1280 dimensions) make every expectation
checkable by hand; the leave-one-out numbers are compared with a brute-force retraining without each example.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from imagepipe import custom_labels as cl
from imagepipe.errors import InvalidInputError

pytestmark = pytest.mark.unit

DIM = 1280


def clusters(
    sizes: dict[str, int], spread: float, seed: int = 0
) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]]]:
    """Examples around one random direction per label, and those directions."""
    rng = np.random.default_rng(seed)
    centres = {name: cl.normalise_rows(rng.normal(size=DIM)) for name in sizes}
    return {
        name: centres[name] + spread * rng.normal(size=(n, DIM)) / np.sqrt(DIM) for name, n in sizes.items()
    }, centres


def brute_force_loo(examples: dict[str, NDArray[Any]]) -> tuple[int, int]:
    """(correct, evaluated) by retraining without each example and classifying it closed-set."""
    correct = evaluated = 0
    for name, rows in examples.items():
        if len(rows) < 2:
            continue
        for i in range(len(rows)):
            rest = {n: (np.delete(r, i, axis=0) if n == name else r) for n, r in examples.items()}
            model = cl.Centroids.of(cl.train(rest))
            sims = model.matrix @ cl.normalise_rows(rows[i])
            evaluated += 1
            correct += int(model.names[int(np.argmax(sims))] == name)
    return correct, evaluated


def test_separated_clusters_classify_and_reject_a_stranger() -> None:
    examples, centres = clusters({"dress": 6, "shoe": 5, "bag": 4}, spread=0.6)
    model = cl.train(examples)
    assert model["classifier"] == cl.CLASSIFIER
    assert model["loo"] == {"accuracy": 1.0, "evaluated": 15, "correct": 15, "belowThreshold": 0}
    assert model["thresholdSource"] == "loo-balanced-error"
    ready = cl.Centroids.of(model)
    for name, centre in centres.items():
        verdict = ready.classify(centre + 0.3 * np.random.default_rng(9).normal(size=DIM) / np.sqrt(DIM))
        assert verdict["name"] == name and verdict["confidence"] > 0.5
    stranger = cl.normalise_rows(np.random.default_rng(42).normal(size=DIM))
    verdict = ready.classify(stranger)
    assert verdict["name"] == cl.UNKNOWN and verdict["confidence"] > 0.5
    assert verdict["similarity"] < model["threshold"]


def test_loo_accuracy_matches_retraining_without_each_example() -> None:
    # overlapping clusters so that some leave-one-out predictions are wrong
    examples, _ = clusters({"a": 5, "b": 4, "c": 3, "single": 1}, spread=8.0, seed=3)
    model = cl.train(examples)
    correct, evaluated = brute_force_loo(examples)
    assert (model["loo"]["correct"], model["loo"]["evaluated"]) == (correct, evaluated)
    assert evaluated == 12  # the single-example label cannot be left out
    assert 0 < correct < evaluated  # the case is not trivial
    assert model["loo"]["accuracy"] == round(correct / evaluated, 4)


def test_threshold_separates_genuine_from_impostor_scores() -> None:
    calibration = cl.calibrate([0.8, 0.85, 0.9], [0.3, 0.4, 0.5])
    assert 0.5 < calibration.threshold < 0.8
    assert calibration.source == "loo-balanced-error"
    # overlapping scores: the threshold minimises rejected genuine + accepted impostors (one error here)
    genuine = [0.7, 0.71, 0.72, 0.73, 0.74] * 4
    impostor = [0.3, 0.5, 0.75]
    overlap = cl.calibrate(genuine, impostor)
    g, imp = np.array(genuine), np.array(impostor)
    errors = (g < overlap.threshold).mean() + (imp >= overlap.threshold).mean()
    assert errors == pytest.approx(1 / 3)
    assert overlap.threshold == pytest.approx(0.6)  # the lowest of the best: between 0.5 and 0.7
    assert overlap.source == "loo-balanced-error"
    assert overlap.scale == cl.MIN_SCALE  # their spread (0.014) is below the minimum


def test_threshold_stays_below_the_genuine_tail() -> None:
    # impostors as high as most genuine scores (other labels are near misses): balanced error would put the
    # threshold at 0.85 and refuse most of the label's own images; the floor is mean - 2 sd of the genuine
    genuine = list(np.linspace(0.6, 0.9, 21))
    capped = cl.calibrate(genuine, [0.84] * 10)
    assert capped.source == "loo-genuine-tail"
    assert capped.threshold == pytest.approx(float(np.mean(genuine) - cl.TAIL_SD * np.std(genuine)))
    assert capped.threshold < min(genuine)


def test_threshold_without_impostors_or_without_genuine_scores() -> None:
    one_label = cl.calibrate([0.8, 0.9], [])
    assert one_label.source == "loo-genuine-tail"
    assert one_label.threshold == pytest.approx(0.85 - cl.TAIL_SD * 0.05)
    single = cl.calibrate([0.8], [])
    assert single.threshold == pytest.approx(0.8 - cl.TAIL_SD * cl.DEFAULT_SCALE)
    tight = cl.calibrate([0.8, 0.8001], [])
    assert tight.scale == cl.MIN_SCALE
    singletons = cl.train(clusters({"a": 1, "b": 1}, spread=0.5)[0])
    assert singletons["thresholdSource"] == "default"
    assert singletons["threshold"] == cl.DEFAULT_THRESHOLD
    assert singletons["loo"]["accuracy"] is None


def test_confidence_is_one_half_at_the_threshold_and_monotone() -> None:
    model = cl.Centroids(["x"], cl.normalise_rows(np.eye(2)[:1]), threshold=0.5, scale=0.1)
    at = model.classify(np.array([0.5, np.sqrt(0.75)]))
    assert at["name"] == "x" and at["confidence"] == pytest.approx(0.5, abs=1e-3)
    confidences = [model.classify(np.array([c, np.sqrt(1 - c * c)]))["confidence"] for c in (0.6, 0.7, 0.9)]
    assert confidences == sorted(confidences) and confidences[-1] > 0.95
    low = model.classify(np.array([0.1, np.sqrt(0.99)]))
    assert low["name"] == cl.UNKNOWN and low["confidence"] > 0.95


def test_wrong_embedding_length_is_refused() -> None:
    model = cl.Centroids.of(cl.train(clusters({"a": 2}, spread=0.5)[0]))
    with pytest.raises(InvalidInputError, match="1280"):
        model.classify(np.ones(10))


def test_vectors_round_trip_exactly_as_base64_float32() -> None:
    v = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
    assert np.array_equal(cl.decode_vector(cl.encode_vector(v)), v)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({}, "at least one label"),
        ({f"l{i}": 1 for i in range(cl.MAX_LABELS + 1)}, "at most 50 labels"),
        ({"dress": 0}, "1 to 50"),
        ({"dress": cl.MAX_EXAMPLES_PER_LABEL + 1}, "1 to 50"),
        ({"unknown": 2}, "reserved"),
        ({"Dress": 2}, "label 'Dress' is invalid"),
        ({"a b": 2}, "invalid"),
        ({f"l{i}": 50 for i in range(7)}, "at most 300 examples"),
    ],
)
def test_limits_name_the_problem(counts: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        cl.check_label_counts(counts)


def test_names() -> None:
    assert cl.check_name("red-dress_2", "label") == "red-dress_2"
    for bad in ("", "-x", "x" * 49, "Ü", "a:b", 3):
        with pytest.raises(InvalidInputError):
            cl.check_name(bad, "label")
