"""OCR with RapidOCR's models (PaddleOCR PP-OCRv4 detector + recogniser, ONNX) into the AI Vision ``readResult`` shape.

We drive the three models ourselves rather than through ``RapidOCR.__call__``: the page is padded with its own
edge pixels before detection (a line running to the image border keeps its full box and its crop a margin);
a line the angle classifier calls upside down is read both ways and the surer reading wins (the classifier
sees long lines squashed to 192 px and flipped upright ones, which then vanished below the score threshold);
words come from the recogniser's own CTC output (``ocr_words``), not from pixel gaps.
``RapidOcr.detect`` returns the line polygons alone, which ``lines`` accepts to skip a second detection.
``TextDetector.evidence`` runs only the detector on a downscaled copy: the share of the image covered by text
boxes, cheap enough to decide whether an image deserves full OCR.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.ocr_words import Word, decode, ink_columns, place
from imagepipe.vision.runtime import LazyModel, ModelInfo, ort_threads

#: Lines whose mean character probability is below this are dropped (RapidOCR's text_score).
TEXT_SCORE = 0.5
#: Angle-classifier score from which a line is also read upside down (RapidOCR's cls_thresh).
CLS_THRESH = 0.9
#: Pixels of edge padding around the page before detection.
PAD = 16
#: Pages are scaled down to this longest side, and flatter than MAX_ASPECT or lower than MIN_HEIGHT padded.
MAX_SIDE = 2000
MAX_ASPECT = 8
MIN_HEIGHT = 32
#: Lines per recogniser batch (padded to the widest of the batch) and the narrowest input (320 / 48 px).
REC_BATCH = 6
REC_MIN_RATIO = 320 / 48
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

    def detect(self, image: Image.Image) -> list[NDArray[np.float32]]:
        """Text line polygons (4 x 2 float32, image pixels) in reading order: the detector alone."""
        page = _Page(image)
        return [page.to_image(b) for b in self._boxes(page)]

    def lines(self, image: Image.Image, polygons: list[NDArray[Any]] | None = None) -> list[dict[str, Any]]:
        """[{text, polygon, confidence, words:[{text, polygon, confidence}]}] in reading order.

        ``polygons`` (from ``detect`` on the same image) skips the detector."""
        engine = self.get()
        page = _Page(image)
        boxes = self._boxes(page) if polygons is None else [page.from_image(p) for p in polygons]
        if not boxes:
            return []
        crops = engine.get_crop_img_list(page.bgr, boxes)
        _, orientation, _ = engine.text_cls(crops)
        # The angle classifier sees a line squashed to 192 x 48 px and sometimes calls a long upright line
        # upside down; for those, read both ways and keep the surer reading.
        flagged = [i for i, (label, score) in enumerate(orientation) if "180" in label and score > CLS_THRESH]
        readings = self._recognise([*crops, *(np.ascontiguousarray(crops[i][::-1, ::-1]) for i in flagged)])
        out: list[dict[str, Any]] = []
        for i, box in enumerate(boxes):
            reading, flipped = readings[i], False
            if i in flagged:
                other = readings[len(crops) + flagged.index(i)]
                if other[1] > reading[1]:
                    reading, flipped = other, True
            words, confidence = reading
            if not words or confidence < TEXT_SCORE:
                continue
            out.append(_line(page, box, crops[i], words, confidence, flipped))
        return out

    def _boxes(self, page: _Page) -> list[NDArray[np.float32]]:
        engine = self.get()
        boxes = detect_boxes(engine.text_det, page.bgr)
        if boxes is None or len(boxes) == 0:
            return []
        return [np.asarray(b, dtype=np.float32) for b in engine.sorted_boxes(boxes)]

    def _recognise(self, crops: list[NDArray[Any]]) -> list[tuple[list[Word], float]]:
        """(words, mean character probability) per crop; crops of similar shape share a batch."""
        rec = self.get().text_rec
        charset: list[str] = rec.postprocess_op.character
        height = int(rec.rec_image_shape[1])
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        results: list[tuple[list[Word], float]] = [([], 0.0)] * len(crops)
        for start in range(0, len(order), REC_BATCH):
            batch = order[start : start + REC_BATCH]
            ratio = max(REC_MIN_RATIO, *(crops[i].shape[1] / max(1, crops[i].shape[0]) for i in batch))
            tensor = np.concatenate([rec.resize_norm_img(crops[i], ratio)[np.newaxis] for i in batch])
            probs = rec.session(tensor.astype(np.float32))[0]
            input_width = int(height * ratio)
            for row, i in enumerate(batch):
                crop_h, crop_w = crops[i].shape[:2]
                resized = min(input_width, int(np.ceil(height * crop_w / max(1, crop_h))))
                step_px = input_width / probs.shape[1] * crop_w / max(1, resized)
                cols = ink_columns(cv2.cvtColor(crops[i], cv2.COLOR_BGR2GRAY))
                glyph_words = decode(probs[row], charset, step_px, cols, crop_h)
                confs = [g.confidence for w in glyph_words for g in w]
                results[i] = (place(glyph_words, crop_w), float(np.mean(confs)) if confs else 0.0)
        return results


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
        boxes = detect_boxes(det, bgr)
        polygons = [] if boxes is None else [np.asarray(b, dtype=np.float32) for b in boxes]
        return evidence_from_polygons(polygons, small.width, small.height)


def detect_boxes(det: Any, bgr: NDArray[Any]) -> NDArray[Any] | None:
    """RapidOCR's ``TextDetector.__call__`` without its one piece of shared state (it stores each page's resize
    rule on the detector, then uses it): the rule is built per call. With that, and ONNX Runtime sessions running
    calls from several threads at once, no lock makes OCR one page at a time, which left a core idle while
    read_text activities queued behind the lock."""
    shape = bgr.shape[0], bgr.shape[1]
    tensor = det.get_preprocess(max(shape))(bgr)
    if tensor is None:
        return None
    boxes, _ = det.postprocess_op(det.infer(tensor)[0], shape)
    return det.filter_tag_det_res(boxes, shape)  # type: ignore[no-any-return]


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


class _Page:
    """The image as the detector sees it: BGR, scaled down past ``MAX_SIDE`` and padded with its own edge
    pixels, so lines that touch the border get a full box and their crops a margin on every side."""

    def __init__(self, image: Image.Image) -> None:
        rgb = np.asarray(image.convert("RGB"))
        h, w = rgb.shape[:2]
        self.scale = min(1.0, MAX_SIDE / max(h, w))
        if self.scale < 1.0:
            rgb = cv2.resize(rgb, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA)
            h, w = rgb.shape[:2]
        # very flat images also get height, as the detector wants a page rather than a strip
        self.left = PAD
        self.top = max(PAD, int((w / MAX_ASPECT - h) / 2) + 1, int((MIN_HEIGHT - h) / 2) + 1)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        self.bgr = cv2.copyMakeBorder(bgr, self.top, self.top, self.left, self.left, cv2.BORDER_REPLICATE)
        self.width, self.height = image.width, image.height

    def to_image(self, points: NDArray[Any]) -> NDArray[np.float32]:
        pts = (np.asarray(points, dtype=np.float32) - (self.left, self.top)) / self.scale
        pts[:, 0] = pts[:, 0].clip(0, self.width)
        pts[:, 1] = pts[:, 1].clip(0, self.height)
        return pts

    def from_image(self, points: NDArray[Any]) -> NDArray[np.float32]:
        offset = np.asarray((self.left, self.top), dtype=np.float32)
        pts: NDArray[np.float32] = np.asarray(points, dtype=np.float32) * np.float32(self.scale) + offset
        return pts


def _line(
    page: _Page, box: NDArray[np.float32], crop: NDArray[Any], words: list[Word], confidence: float, flipped: bool
) -> dict[str, Any]:
    """A readResult line; each word's polygon is its stretch of the line box (the crop maps onto the box)."""
    width = float(crop.shape[1])
    turned = crop.shape[0] != int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    tl, tr, br, bl = box

    def span(left: float, right: float) -> list[dict[str, int]]:
        if turned:  # a vertical line (the crop was rotated): the words share the line box
            return _poly(page.to_image(box))
        u0, u1 = left / width, right / width
        if flipped:
            u0, u1 = 1 - u1, 1 - u0
        pts = [tl + (tr - tl) * u0, tl + (tr - tl) * u1, bl + (br - bl) * u1, bl + (br - bl) * u0]
        return _poly(page.to_image(np.asarray(pts)))

    json_words = [
        {"text": w.text, "boundingPolygon": span(w.left, w.right), "confidence": round(w.confidence, 4)} for w in words
    ]
    return {
        "text": " ".join(w.text for w in words),
        "boundingPolygon": _poly(page.to_image(box)),
        "confidence": round(confidence, 4),
        "words": json_words,
    }


def read_result(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The AI Vision 4.0 ``readResult``: one block holding every line (Azure also uses a single block)."""
    if not lines:
        return {"blocks": []}
    return {"blocks": [{"lines": [{k: v for k, v in line.items() if k != "confidence"} for line in lines]}]}
