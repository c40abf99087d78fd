"""OCR with RapidOCR (PaddleOCR PP-OCRv4 detector + recogniser, ONNX) into the AI Vision ``readResult`` shape.

PP-OCR recognises whole lines and sometimes drops the spaces between words; we put them back from the
pixels: in the line's crop, a blank column run wider than ``SPACE_GAP`` x line height that falls between
two recognised characters (their boxes come from the CTC decoder) is a word break.
``TextDetector.evidence`` runs only the detector on a downscaled copy: the share of the image covered by text
boxes, cheap enough to decide whether an image deserves full OCR.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.runtime import LazyModel, ModelInfo, ort_threads

#: A space goes between two characters when the blank pixel run between them is at least SPACE_GAP x the
#: line box height and their CTC centres are WIDE_STEP x the line's median character step apart, or when
#: the blank run alone is at least WIDE_GAP x the line height.
SPACE_GAP = 0.18
WIDE_STEP = 1.15
WIDE_GAP = 0.35
#: Longest side of the copy the evidence detector sees.
EVIDENCE_SIDE = 640


def _engine_kwargs() -> dict[str, Any]:
    return {"intra_op_num_threads": ort_threads(), "inter_op_num_threads": 1}


class RapidOcr(LazyModel[Any]):
    """PP-OCRv4 detection + recognition (Latin and Chinese characters), angle classifier for flipped lines."""

    info = ModelInfo(
        "rapidocr-pp-ocrv4",
        "rapidocr-onnxruntime 1.4.4 (PP-OCRv4 det/rec, ppocr v2 cls)",
        "Apache-2.0",
        "https://pypi.org/project/rapidocr-onnxruntime/",
    )

    def _load(self) -> Any:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise ModelUnavailableError("rapidocr-onnxruntime is not installed (requirements-nodeps.txt)") from exc
        return RapidOCR(**_engine_kwargs())

    def lines(self, image: Image.Image) -> list[dict[str, Any]]:
        """[{text, polygon, confidence, words:[{text, polygon, confidence}]}] in reading order."""
        engine = self.get()
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        with self.call_lock:  # RapidOCR mutates its post-processing settings per call
            result, _ = engine(bgr, return_word_box=True)
        gray = np.asarray(image.convert("L"))
        return [_line(item, gray) for item in (result or [])]


class TextDetector(LazyModel[Any]):
    """The PP-OCRv4 text detector alone (for the text-region evidence)."""

    info = ModelInfo(
        "pp-ocrv4-det", "rapidocr-onnxruntime 1.4.4", "Apache-2.0", "https://pypi.org/project/rapidocr-onnxruntime/"
    )

    def _load(self) -> Any:
        try:
            from rapidocr_onnxruntime.ch_ppocr_det import TextDetector as Det
            from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
            from rapidocr_onnxruntime.utils import read_yaml, update_model_path
        except ImportError as exc:
            raise ModelUnavailableError("rapidocr-onnxruntime is not installed (requirements-nodeps.txt)") from exc
        config = copy.deepcopy(update_model_path(read_yaml(str(DEFAULT_CFG_PATH))))["Det"]
        config.update({"limit_type": "min", "limit_side_len": 32, **_engine_kwargs()})
        return Det(config)

    def evidence(self, image: Image.Image) -> dict[str, Any]:
        """{score, areaFraction, boxes}: how much of the image the detector sees as text."""
        det = self.get()
        small = image.copy()
        small.thumbnail((EVIDENCE_SIDE, EVIDENCE_SIDE), Image.Resampling.BILINEAR)
        bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        with self.call_lock:
            boxes, _ = det(bgr)
        polygons = [] if boxes is None else [np.asarray(b, dtype=np.float32) for b in boxes]
        return evidence_from_polygons(polygons, small.width, small.height)


def evidence_from_polygons(polygons: list[NDArray[Any]], width: int, height: int) -> dict[str, Any]:
    """Text-region evidence from detector boxes: area share (capped at 1) and a 0..1 score."""
    area = 0.0
    for poly in polygons:
        x, y = poly[:, 0], poly[:, 1]
        area += 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    fraction = min(1.0, area / max(1.0, float(width * height)))
    # 5% of the image covered by several text boxes, or 8 separate text lines, is plenty for "this image
    # shows text"; one or two boxes (a logo, a texture the detector mistakes for text) count a quarter or half.
    by_area = min(1.0, fraction / 0.05) * min(1.0, len(polygons) / 4.0)
    score = max(by_area, min(1.0, len(polygons) / 8.0))
    return {"score": round(score, 4), "areaFraction": round(fraction, 5), "boxes": len(polygons)}


def _poly(points: Any) -> list[dict[str, int]]:
    return [{"x": int(round(float(p[0]))), "y": int(round(float(p[1])))} for p in points]


def _merge_boxes(boxes: list[Any]) -> list[list[float]]:
    pts = np.asarray([p for b in boxes for p in b], dtype=np.float32)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def blank_runs(gray: NDArray[Any], box: Any, min_width: float) -> list[tuple[float, float]]:
    """(start x, end x) of ink-free column runs at least ``min_width`` wide inside the line box."""
    pts = np.asarray(box, dtype=np.float32)
    x0, y0 = (max(0, int(v)) for v in pts.min(axis=0))
    x1, y1 = (int(v) + 1 for v in pts.max(axis=0))
    crop = gray[y0:y1, x0:x1].astype(np.float32)
    if crop.size == 0 or crop.shape[1] < 3:
        return []
    lo, hi = float(crop.min()), float(crop.max())
    if hi - lo < 30:
        return []
    ink = crop < (lo + hi) / 2
    if ink.mean() > 0.5:  # light text on a dark background: the ink is the bright minority
        ink = ~ink
    cols = ink.any(axis=0)
    runs: list[tuple[float, float]] = []
    start: int | None = None
    for i, has_ink in enumerate([*cols.tolist(), True]):
        if not has_ink and start is None:
            start = i
        elif has_ink and start is not None:
            if i - start >= min_width:
                runs.append((x0 + start, x0 + i))
            start = None
    return runs


def _line(item: list[Any], gray: NDArray[Any]) -> dict[str, Any]:
    box, text, score = item[0], str(item[1]), float(item[2])
    words: list[dict[str, Any]] = []
    # With return_word_box, RapidOCR 1.4 gives [box, text, score, char boxes, chars, char scores].
    if len(item) >= 6 and item[3] and len(item[3]) == len(item[4]) == len(item[5]) > 0:
        char_boxes, chars, confs = item[3], item[4], item[5]
        ys = [p[1] for p in box]
        line_h = max(1.0, float(max(ys) - min(ys)))
        gaps = blank_runs(gray, box, SPACE_GAP * line_h)
        centers = [float(np.mean([p[0] for p in b])) for b in char_boxes]
        steps = [b - a for a, b in zip(centers, centers[1:], strict=False) if b > a]
        median_step = float(np.median(steps)) if steps else line_h

        def is_break(a: int, b: int) -> bool:
            for g0, g1 in gaps:
                if centers[a] < (g0 + g1) / 2 < centers[b]:
                    wide = centers[b] - centers[a] >= WIDE_STEP * median_step
                    if wide or g1 - g0 >= WIDE_GAP * line_h:
                        return True
            return False

        groups: list[list[int]] = []
        current: list[int] = []
        previous: int | None = None
        for i, ch in enumerate(chars):
            if not str(ch).strip():
                if current:
                    groups.append(current)
                current, previous = [], None
                continue
            if previous is not None and current and is_break(previous, i):
                groups.append(current)
                current = []
            current.append(i)
            previous = i
        if current:
            groups.append(current)
        for g in groups:
            words.append(
                {
                    "text": "".join(str(chars[i]) for i in g),
                    "boundingPolygon": _poly(_merge_boxes([char_boxes[i] for i in g])),
                    "confidence": round(float(np.mean([float(confs[i]) for i in g])), 4),
                }
            )
        text = " ".join(w["text"] for w in words)
    else:  # no character boxes: the line's words share the line polygon
        for part in text.split():
            words.append({"text": part, "boundingPolygon": _poly(box), "confidence": round(score, 4)})
    return {"text": text, "boundingPolygon": _poly(box), "confidence": score, "words": words}


def read_result(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The AI Vision 4.0 ``readResult``: one block holding every line (Azure also uses a single block)."""
    if not lines:
        return {"blocks": []}
    return {"blocks": [{"lines": [{k: v for k, v in line.items() if k != "confidence"} for line in lines]}]}
