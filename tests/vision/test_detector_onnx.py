"""The YOLOv3-tiny ONNX graph made by ``prepare`` against the Darknet files it came from (read by OpenCV DNN),
and the detector's missing-file error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.detector import ONNX_NAME, CocoDetector, decode_heads
from imagepipe.vision.prepare import TOLERANCE, yolo_reference
from imagepipe.vision.runtime import DEFAULT_MODEL_DIR, ort_session
from tests.support.images import SAMPLES

pytestmark = pytest.mark.vision


@pytest.mark.parametrize("sample", ["motorcycle.jpg", "uniform-portrait.jpg", "game-screenshot.png"])
def test_onnx_detector_matches_darknet_reading(sample: str) -> None:
    with Image.open(SAMPLES / sample) as img:
        blob, reference = yolo_reference(img)
    rows = decode_heads(ort_session(DEFAULT_MODEL_DIR / ONNX_NAME).run(None, {"images": blob}))[0]
    assert rows.shape == reference.shape
    # boxes and objectness everywhere; class scores where OpenCV did not zero them under its own threshold
    assert float(np.abs(rows[:, :5] - reference[:, :5]).max()) < TOLERANCE
    kept = reference[:, 5:] > 0
    assert float(np.abs(np.where(kept, rows[:, 5:], 0.0) - reference[:, 5:]).max()) < TOLERANCE


def test_missing_onnx_detector_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="make models"):
        CocoDetector(tmp_path).detect(np.zeros((32, 32, 3), dtype=np.uint8))
