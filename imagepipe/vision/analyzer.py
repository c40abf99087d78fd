"""``LocalAnalyzer``: the ``VisionAnalyzer`` port on local, offline models, in the AI Vision 4.0 JSON shape.

What it computes per requested feature (see README "Local analyzer" for each model and its limits):
``tags`` (ImageNet classes + WordNet general tags + COCO objects + "text" from the text detector),
``objects``/``people`` (YOLOv3-tiny), ``read`` (PP-OCRv4). ``caption``/``denseCaptions``/``smartCrops``
have no local model: they stay absent and are listed under ``imagepipe.notComputed``. Extras under
``imagepipe``: adult, faces, barcodes, colors, phash, exif, textEvidence (always), models.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from imagepipe.ports import AnalysisRequest, JsonDict
from imagepipe.vision import extras as ex
from imagepipe.vision.classifier import ImageNetClassifier
from imagepipe.vision.detector import COCO_GENERAL, CocoDetector, azure_name, box_json
from imagepipe.vision.image import DecodedImage, decode
from imagepipe.vision.ocr import RapidOcr, TextDetector, evidence_from_polygons, read_result
from imagepipe.vision.runtime import DEFAULT_MODEL_DIR, ModelInfo, analysis_slot, release_memory, shared

MODEL_VERSION = "imagepipe-local-2026-11"
#: Text evidence score from which the "text" tag is added (with that score as its confidence).
TEXT_TAG_MIN = 0.5
#: Detected objects give tags from this confidence on (objectsResult keeps the less sure ones too).
OBJECT_TAG_MIN = 0.5
LOCAL_FEATURES = ("tags", "objects", "people", "read")


class LocalAnalyzer:
    """Offline image analysis; models load lazily, once per process, shared by all instances."""

    provider = "local"

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
        self.classifier = shared(ImageNetClassifier, self.model_dir)
        self.detector = shared(CocoDetector, self.model_dir)
        self.ocr = shared(RapidOcr, self.model_dir)
        self.text_detector = shared(TextDetector, self.model_dir)
        self.nsfw = shared(ex.NsfwScorer, self.model_dir)
        self.face_detector = shared(ex.FaceDetector, self.model_dir)
        #: Milliseconds per step of the last ``analyze`` call in this thread-unsafe field (bench/diagnostics).
        self.last_timings_ms: dict[str, float] = {}

    # -----------------------------------------------------------------------------------------------
    # The port
    # -----------------------------------------------------------------------------------------------

    def analyze(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        timings: dict[str, float] = {}
        with analysis_slot():  # CPU-bound: no more at once than the process has cores for
            t0 = time.perf_counter()
            try:
                decoded = decode(image)
                timings["decode"] = _ms(t0)
                return self.analyze_decoded(decoded, request, timings)
            finally:
                release_memory()

    def read_text(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        with analysis_slot():
            try:
                decoded = decode(image)
                lines = self.ocr.lines(decoded.rgb)
                return {"readResult": read_result(lines), "modelVersion": MODEL_VERSION}
            finally:
                release_memory()

    # -----------------------------------------------------------------------------------------------
    # Internals
    # -----------------------------------------------------------------------------------------------

    def analyze_decoded(
        self, decoded: DecodedImage, request: AnalysisRequest, timings: dict[str, float] | None = None
    ) -> JsonDict:
        timings = {} if timings is None else timings
        features, extras = set(request.features), set(request.extras)
        rgb = decoded.rgb
        pixels = decoded.array  # one H x W x 3 uint8 copy for every model that reads arrays
        used: list[ModelInfo] = []
        result: JsonDict = {
            "modelVersion": MODEL_VERSION,
            "metadata": {"width": decoded.width, "height": decoded.height},
        }
        extra: JsonDict = {}

        detections: list[dict[str, Any]] = []
        if features & {"objects", "people", "tags"}:
            t = time.perf_counter()
            detections = self.detector.detect(pixels)
            timings["objects"] = _ms(t)
            used.append(self.detector.info)
        if "objects" in features:
            result["objectsResult"] = {
                "values": [
                    {
                        "boundingBox": box_json(d["box"]),
                        "tags": [{"name": azure_name(d["name"]), "confidence": round(d["confidence"], 4)}],
                    }
                    for d in detections
                ]
            }
        if "people" in features:
            result["peopleResult"] = {
                "values": [
                    {"boundingBox": box_json(d["box"]), "confidence": round(d["confidence"], 4)}
                    for d in detections
                    if d["name"] == "person"
                ]
            }

        if "read" in features:
            t = time.perf_counter()
            lines = self.ocr.lines(rgb)
            timings["read"] = _ms(t)
            used.append(self.ocr.info)
            result["readResult"] = read_result(lines)
            polygons = [_np_poly(line["boundingPolygon"]) for line in lines]
            extra["textEvidence"] = evidence_from_polygons(polygons, decoded.width, decoded.height)
        else:
            t = time.perf_counter()
            extra["textEvidence"] = self.text_detector.evidence(rgb)
            timings["textEvidence"] = _ms(t)
            used.append(self.text_detector.info)

        if "tags" in features:
            t = time.perf_counter()
            tags = self.classifier.tags(rgb)
            timings["tags"] = _ms(t)
            used.append(self.classifier.info)
            result["tagsResult"] = {"values": merge_tags(tags, detections, extra["textEvidence"])}

        missing = sorted(f for f in features if f not in LOCAL_FEATURES)
        if missing:
            extra["notComputed"] = missing

        self._extras(decoded, extras, extra, used, timings)
        extra["models"] = [m.to_json() for m in _unique(used)]
        result["imagepipe"] = extra
        self.last_timings_ms = timings
        return result

    def _extras(
        self,
        decoded: DecodedImage,
        extras: set[str],
        extra: JsonDict,
        used: list[ModelInfo],
        timings: dict[str, float],
    ) -> None:
        rgb = decoded.rgb
        steps: list[tuple[str, Any, ModelInfo | None]] = [
            ("adult", lambda: self.nsfw.adult(rgb), self.nsfw.info),
            ("faces", lambda: self.face_detector.faces(decoded.array), self.face_detector.info),
            ("barcodes", lambda: ex.barcodes(rgb), ex.BARCODE_INFO),
            ("colors", lambda: ex.colors(rgb), None),
            ("phash", lambda: ex.phash(rgb), ex.PHASH_INFO),
            ("exif", lambda: decoded.exif, None),
        ]
        for name, run, info in steps:
            if name in extras:
                t = time.perf_counter()
                extra[name] = run()
                timings[name] = _ms(t)
                if info is not None:
                    used.append(info)

    def warm_up(self) -> None:
        """Load every model now (so the first request does not pay for it); raises ModelUnavailableError."""
        for model in (self.classifier, self.detector, self.ocr, self.text_detector, self.nsfw, self.face_detector):
            model.get()


def merge_tags(
    classifier_tags: list[dict[str, Any]], detections: list[dict[str, Any]], evidence: dict[str, Any]
) -> list[dict[str, Any]]:
    """One tag list, best confidence per name: classifier tags, detected objects (+ their general tags)
    and "text" when the text detector is confident."""
    best: dict[str, float] = {t["name"]: float(t["confidence"]) for t in classifier_tags}

    def add(name: str, confidence: float) -> None:
        best[name] = max(best.get(name, 0.0), round(confidence, 4))

    for d in detections:
        if d["confidence"] < OBJECT_TAG_MIN:
            continue
        add(azure_name(d["name"]), d["confidence"])
        for general in COCO_GENERAL.get(d["name"], ()):
            add(general, d["confidence"])
    if evidence.get("score", 0.0) >= TEXT_TAG_MIN:
        add("text", float(evidence["score"]))
    return [{"name": n, "confidence": c} for n, c in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))]


def _np_poly(points: list[dict[str, int]]) -> Any:
    import numpy as np

    return np.asarray([[p["x"], p["y"]] for p in points], dtype=np.float32)


def _unique(infos: list[ModelInfo]) -> list[ModelInfo]:
    seen: dict[str, ModelInfo] = {}
    for info in infos:
        seen.setdefault(info.name, info)
    return list(seen.values())


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)
