"""Local analyzer benchmark: milliseconds per image for each feature and for each whole profile, images/s.

Runs on the sample images (``samples/``) after one warm-up pass (model loading is reported separately),
``--repeat`` times each. Per-feature times are medians of the analyzer's own step timings; per-profile
times are the wall time of what the pipeline does for that profile (analyze, then read_text when the
profile's OCR policy says the image is text-heavy).

Target 1 of issue 11 (``bench.analyzer_ratio``): the general profile without OCR against the bare runtime
of each model it uses, on the same images in the same run, interleaved image by image. Quality
(``bench.analyzer_quality``): the general profile's tags and boxes per sample against
``bench/results/analyzer-baseline.json`` (recorded once from the analyzer before its speed work; rewrite it
with ``--write-baseline`` only on purpose). Writes ``bench/results/analyzer.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench.analyzer_memory import devhost_peak_rss
from bench.analyzer_quality import BASELINE, compare, snapshot
from bench.analyzer_ratio import general_ratio
from bench.common import target

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else 0.0


def run(repeat: int, samples: Path, memory_rounds: int) -> dict[str, Any]:
    from imagepipe import policy
    from imagepipe.ports import EXTRA_FEATURES, AnalysisRequest
    from imagepipe.profiles import load_profiles
    from imagepipe.vision import MODEL_VERSION, LocalAnalyzer
    from imagepipe.vision.image import decode

    images = {p.name: p.read_bytes() for p in sorted(samples.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    analyzer = LocalAnalyzer()
    t0 = time.perf_counter()
    analyzer.warm_up()
    load_ms = (time.perf_counter() - t0) * 1000

    everything = AnalysisRequest(features=("tags", "objects", "people", "read"), extras=EXTRA_FEATURES)
    analyzer.analyze(next(iter(images.values())), everything)  # first-call costs (lazy imports)
    per_feature: dict[str, list[float]] = {}
    per_image_all: dict[str, list[float]] = {}
    for _ in range(repeat):
        for name, data in images.items():
            t = time.perf_counter()
            analyzer.analyze(data, everything)
            per_image_all.setdefault(name, []).append((time.perf_counter() - t) * 1000)
            for step, ms in analyzer.last_timings_ms.items():
                per_feature.setdefault(step, []).append(ms)
            # text evidence is skipped when "read" runs; time it on its own
            t = time.perf_counter()
            analyzer.text_detector.evidence(decode(data).rgb)
            per_feature.setdefault("textEvidence", []).append((time.perf_counter() - t) * 1000)

    profiles: dict[str, Any] = {}
    for profile in load_profiles().values():
        request = AnalysisRequest(features=profile.features, extras=profile.extras, profile=profile.name)
        times: list[float] = []
        ocr_runs = 0
        for _ in range(repeat):
            for data in images.values():
                t = time.perf_counter()
                analysis = analyzer.analyze(data, request)
                if policy.is_text_heavy(analysis, profile) and "readResult" not in analysis:
                    analyzer.read_text(data, request)
                    ocr_runs += 1
                times.append((time.perf_counter() - t) * 1000)
        total_s = sum(times) / 1000
        profiles[profile.name] = {
            "msPerImageMedian": _median(times),
            "msPerImageMean": round(statistics.fmean(times), 2),
            "imagesPerSecond": round(len(times) / total_s, 2),
            "ocrRunsPerPass": ocr_runs // repeat,
        }
    ratio = general_ratio(analyzer, images, repeat)
    quality = compare(snapshot(analyzer, images), BASELINE)
    memory = devhost_peak_rss(samples, memory_rounds) if memory_rounds else {"peakRssMiB": None}
    return {
        "benchmark": "local-analyzer",
        "modelVersion": MODEL_VERSION,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "ortThreads": int(os.environ.get("IMAGEPIPE_ORT_THREADS", "1")),
        },
        "images": {name: len(data) for name, data in images.items()},
        "repeat": repeat,
        "modelLoadMs": round(load_ms, 1),
        "msPerImageByFeature": {k: _median(v) for k, v in sorted(per_feature.items())},
        "msPerImageAllFeatures": {k: _median(v) for k, v in per_image_all.items()},
        "profiles": profiles,
        "generalWithoutOcr": ratio,
        "quality": quality,
        "targets": [
            target("analyzer / bare models ratio (general, no OCR)", ratio["ratio"], 2.0, "x"),
            target("devhost peak RSS, every model loaded", memory["peakRssMiB"], 1228.8, "MiB"),
        ],
        "devhostMemory": memory,
        "note": "medians over the sample images; 'read' and 'textEvidence' depend strongly on how much text "
        "an image holds; 'objects' is two YOLOv3-tiny passes (as-is and zoomed out)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "analyzer.json")
    parser.add_argument(
        "--memory-rounds", type=int, default=2, help="passes of the samples through the devhost (0: skip memory)"
    )
    parser.add_argument(
        "--write-baseline", action="store_true", help=f"only record tags and boxes per sample into {BASELINE.name}"
    )
    args = parser.parse_args(argv)
    if args.write_baseline:
        from imagepipe.vision import LocalAnalyzer

        images = {p.name: p.read_bytes() for p in sorted(args.samples.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        BASELINE.write_text(json.dumps(snapshot(LocalAnalyzer(), images), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {BASELINE}")
        return 0
    result = run(args.repeat, args.samples, args.memory_rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    summary = {k: result[k] for k in ("msPerImageByFeature", "profiles", "targets")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
