"""Local analyzer benchmark: milliseconds per image for each feature and for each whole profile, images/s.

Runs on the sample images (``samples/``) after one warm-up pass (model loading is reported separately),
``--repeat`` times each. Per-feature times are medians of the analyzer's own step timings; per-profile
times are the wall time of what the pipeline does for that profile (analyze, then read_text when the
profile's OCR policy says the image is text-heavy). Writes ``bench/results/analyzer.json``.
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

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else 0.0


def run(repeat: int, samples: Path) -> dict[str, Any]:
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
        "note": "medians over the sample images; 'read' and 'textEvidence' depend strongly on how much text "
        "an image holds; 'objects' is two YOLOv3-tiny passes (as-is and zoomed out)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "analyzer.json")
    args = parser.parse_args(argv)
    result = run(args.repeat, args.samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(json.dumps({"features": result["msPerImageByFeature"], "profiles": result["profiles"]}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
