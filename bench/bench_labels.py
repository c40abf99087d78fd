"""Custom labels benchmark: accuracy, unknown rejection and speed of a label set trained from a few examples.

Data: procedurally generated garment-like images (``bench.label_images``: tshirt, dress, trousers, shoe, bag;
colour, pattern, size, position and rotation random within every class) plus ``stranger`` images that are
none of them. For each examples-per-label count (``--shots``, default 3, 5 and 10) a label set is trained on
that many images per class and scored on held-out images (different seeds) of every class, and on strangers:

- held-out accuracy: the label given equals the class (``unknown`` counts as wrong);
- closed-set held-out accuracy: the nearest centroid equals the class, whatever the threshold;
- LOO accuracy: what training reports (``imagepipe.custom_labels``);
- unknown rate on strangers: the share of strangers answered ``unknown`` (higher is better);
- training time (embedding the examples, and fitting) and the per-image classify time (embed + classify),
  as wall and process CPU time in this run (one onnxruntime thread; the machine is shared, so CPU time is
  the steadier figure).

Writes ``bench/results/labels.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, machine_facts, target, write_result
from bench.label_images import CLASSES, image

#: Seeds of the examples start here; held-out seeds start at HELD_OUT_SEED (never overlapping).
HELD_OUT_SEED = 10_000
HELD_OUT_ACCURACY_TARGET = 0.9
STRANGER_UNKNOWN_TARGET = 0.5
TRAIN_SECONDS_TARGET = 10.0
CLASSIFY_MS_TARGET = 200.0


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def run(shots: list[int], held_out: int, strangers: int) -> dict[str, Any]:
    from imagepipe import custom_labels as cl
    from imagepipe.vision.embedding import OnnxImageEmbedder

    embedder = OnnxImageEmbedder()
    embedder.embed(image("bag", 0))  # model loading and first-call costs
    test_set = [(c, image(c, HELD_OUT_SEED + i)) for c in CLASSES for i in range(held_out)]
    stranger_set = [image("stranger", i) for i in range(strangers)]
    classify_wall: list[float] = []
    classify_cpu: list[float] = []
    test_vectors = []
    for _, data in test_set:
        vector, wall, cpu = _timed(embedder.embed, data)
        test_vectors.append(np.asarray(vector))
        classify_wall.append(wall)
        classify_cpu.append(cpu)
    stranger_vectors = [np.asarray(embedder.embed(d)) for d in stranger_set]
    by_shots: dict[str, Any] = {}
    for k in shots:
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        examples = {c: np.asarray([embedder.embed(image(c, i)) for i in range(k)]) for c in CLASSES}
        embed_wall, embed_cpu = (time.perf_counter() - t_wall) * 1000, (time.process_time() - t_cpu) * 1000
        model, fit_wall, _ = _timed(cl.train, examples)
        ready = cl.Centroids.of(model)
        correct = closed = 0
        confusion: dict[str, dict[str, int]] = {c: {} for c in CLASSES}
        for (truth, _), vector in zip(test_set, test_vectors, strict=True):
            verdict = ready.classify(vector)
            correct += int(verdict["name"] == truth)
            nearest = ready.names[int(np.argmax(ready.matrix @ cl.normalise_rows(vector)))]
            closed += int(nearest == truth)
            confusion[truth][verdict["name"]] = confusion[truth].get(verdict["name"], 0) + 1
        unknown = sum(1 for v in stranger_vectors if ready.classify(v)["name"] == cl.UNKNOWN)
        by_shots[str(k)] = {
            "examplesPerLabel": k,
            "heldOutAccuracy": round(correct / len(test_set), 4),
            "closedSetHeldOutAccuracy": round(closed / len(test_set), 4),
            "looAccuracy": model["loo"]["accuracy"],
            "threshold": model["threshold"],
            "thresholdSource": model["thresholdSource"],
            "strangerUnknownRate": round(unknown / max(1, len(stranger_vectors)), 4),
            "trainMs": {"embedWall": round(embed_wall, 1), "embedCpu": round(embed_cpu, 1), "fit": round(fit_wall, 3)},
            "confusion": confusion,
        }
    biggest = by_shots[str(max(shots))]
    smallest = by_shots[str(min(shots))]
    rows = [
        target(
            f"held-out accuracy, {max(shots)} examples/label",
            biggest["heldOutAccuracy"],
            HELD_OUT_ACCURACY_TARGET,
            "",
            higher_is_better=True,
        ),
        target(
            f"held-out accuracy, {min(shots)} examples/label",
            smallest["heldOutAccuracy"],
            HELD_OUT_ACCURACY_TARGET,
            "",
            higher_is_better=True,
        ),
        target(
            f"strangers answered unknown, {max(shots)} ex/label",
            biggest["strangerUnknownRate"],
            STRANGER_UNKNOWN_TARGET,
            "",
            higher_is_better=True,
        ),
        target(
            f"training time, {len(CLASSES)} labels x {max(shots)} examples (CPU)",
            round(biggest["trainMs"]["embedCpu"] / 1000 + biggest["trainMs"]["fit"] / 1000, 2),
            TRAIN_SECONDS_TARGET,
            "s",
        ),
        target(
            "classify one image (embed + classify, CPU median)",
            round(statistics.median(classify_cpu), 1),
            CLASSIFY_MS_TARGET,
            "ms",
        ),
    ]
    return {
        "benchmark": "labels",
        "machine": machine_facts(),
        "data": {
            "classes": list(CLASSES),
            "heldOutPerClass": held_out,
            "strangers": strangers,
            "generator": "bench/label_images.py (procedural, seeds: examples 0.., held-out 10000..)",
        },
        "byExamplesPerLabel": by_shots,
        "classifyMsPerImage": {
            "wallMedian": round(statistics.median(classify_wall), 1),
            "cpuMedian": round(statistics.median(classify_cpu), 1),
            "cpuMean": round(statistics.fmean(classify_cpu), 1),
        },
        "targets": rows,
        "note": "classifier: nearest centroid, cosine, LOO-calibrated unknown threshold; embeddings: "
        "EfficientNet-Lite0 pooled 1280 features (1 onnxruntime thread)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shots", type=int, nargs="+", default=[3, 5, 10], help="examples per label")
    parser.add_argument("--held-out", type=int, default=20, help="held-out images per class")
    parser.add_argument("--strangers", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS / "labels.json")
    args = parser.parse_args(argv)
    result = run(sorted(set(args.shots)), args.held_out, args.strangers)
    write_result(args.out, result)
    for k, row in result["byExamplesPerLabel"].items():
        print(
            f"{k:>3} ex/label: held-out {row['heldOutAccuracy']:.3f} (closed-set {row['closedSetHeldOutAccuracy']:.3f})"
            f"  LOO {row['looAccuracy']}  strangers->unknown {row['strangerUnknownRate']:.2f}"
            f"  threshold {row['threshold']:.3f}  train CPU {row['trainMs']['embedCpu'] / 1000:.2f} s"
        )
    print(f"classify per image {result['classifyMsPerImage']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
