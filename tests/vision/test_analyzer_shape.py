"""The Azure AI Vision 4.0 result shape and the port's error contract, on real sample images."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from imagepipe.errors import PermanentImageError
from imagepipe.ports import AnalysisRequest
from imagepipe.vision import MODEL_VERSION, LocalAnalyzer
from tests.support.analysis import tag_names
from tests.support.images import png_bytes

pytestmark = pytest.mark.vision


def _polygon_ok(poly: list[dict[str, int]]) -> bool:
    return len(poly) == 4 and all(set(p) == {"x", "y"} and isinstance(p["x"], int) for p in poly)


def test_cat_photo_full_shape(analyzed: Callable[[str], dict]) -> None:
    result = analyzed("cat.jpg")
    assert result["modelVersion"] == MODEL_VERSION
    assert result["metadata"] == {"width": 451, "height": 300}
    assert {"cat", "animal"} <= set(tag_names(result, 6))
    for tag in result["tagsResult"]["values"]:
        assert set(tag) == {"name", "confidence"} and 0.0 < tag["confidence"] <= 1.0
    confidences = [t["confidence"] for t in result["tagsResult"]["values"]]
    assert confidences == sorted(confidences, reverse=True)
    for obj in result["objectsResult"]["values"]:
        assert set(obj["boundingBox"]) == {"x", "y", "w", "h"}
        assert obj["tags"][0]["name"] and 0 < obj["tags"][0]["confidence"] <= 1
    assert "captionResult" not in result and "denseCaptionsResult" not in result
    extras = result["imagepipe"]
    assert set(extras) >= {"adult", "faces", "barcodes", "colors", "phash", "exif", "textEvidence", "models"}
    assert {m["name"] for m in extras["models"]} >= {"efficientnet-lite0", "yolov3-tiny-coco", "rapidocr-pp-ocrv4"}
    assert all(set(m) == {"name", "version", "licence", "source"} for m in extras["models"])


def test_read_result_shape(analyzed: Callable[[str], dict]) -> None:
    read = analyzed("insurance-claim.png")["readResult"]
    assert len(read["blocks"]) == 1
    for line in read["blocks"][0]["lines"]:
        assert set(line) == {"text", "boundingPolygon", "words"}
        assert _polygon_ok(line["boundingPolygon"])
        assert " ".join(w["text"] for w in line["words"]) == line["text"]
        for word in line["words"]:
            assert _polygon_ok(word["boundingPolygon"]) and 0 < word["confidence"] <= 1


def test_read_only_when_requested(analyzer: LocalAnalyzer, sample_bytes: Callable[[str], bytes]) -> None:
    result = analyzer.analyze(sample_bytes("insurance-claim.png"), AnalysisRequest(features=("tags",)))
    assert "readResult" not in result and "objectsResult" not in result and "peopleResult" not in result
    assert result["imagepipe"]["textEvidence"]["score"] >= 0.9
    assert "text" in tag_names(result, 3)


def test_unavailable_features_are_absent_and_listed(
    analyzer: LocalAnalyzer, sample_bytes: Callable[[str], bytes]
) -> None:
    result = analyzer.analyze(sample_bytes("coffee.jpg"), AnalysisRequest(features=("caption", "smartCrops")))
    assert "captionResult" not in result and "smartCropsResult" not in result
    assert result["imagepipe"]["notComputed"] == ["caption", "smartCrops"]


def test_read_text_port(analyzer: LocalAnalyzer, sample_bytes: Callable[[str], bytes]) -> None:
    out = analyzer.read_text(sample_bytes("game-screenshot.png"), AnalysisRequest(features=("read",)))
    assert set(out) == {"readResult", "modelVersion"}
    lines = [ln["text"] for ln in out["readResult"]["blocks"][0]["lines"]]
    assert "QUIT" in lines and "OPTIONS" in lines


@pytest.mark.parametrize("payload", [b"", b"not an image at all", png_bytes(Image.new("RGB", (8, 8)))[:40]])
def test_undecodable_image_is_permanent(analyzer: LocalAnalyzer, payload: bytes) -> None:
    with pytest.raises(PermanentImageError):
        analyzer.analyze(payload, AnalysisRequest(features=("tags",)))
