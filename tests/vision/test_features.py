"""Each local model on real images with known content: tags, objects, people, faces, barcodes, adult score,
colours, perceptual hash, EXIF; plus the ONNX export check and the missing-model error."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.ports import AnalysisRequest
from imagepipe.vision import LocalAnalyzer, phash_distance
from imagepipe.vision.classifier import ONNX_NAME, class_names, tags_from_probabilities
from imagepipe.vision.prepare import REF_INPUT, REF_OUTPUT, TOLERANCE
from imagepipe.vision.runtime import DEFAULT_MODEL_DIR, ort_session
from tests.support.analysis import tag_names
from tests.support.images import SAMPLES, png_bytes

pytestmark = pytest.mark.vision


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("cat.jpg", {"cat", "animal", "mammal"}),
        ("coffee.jpg", {"espresso", "drink"}),
        ("motorcycle.jpg", {"motorcycle", "vehicle"}),
        ("uniform-portrait.jpg", {"person", "clothing"}),
        ("astronaut.jpg", {"person"}),
        ("game-screenshot.png", {"text"}),
        ("insurance-claim.png", {"text"}),
    ],
)
def test_expected_tags_in_top_results(analyzed: Callable[[str], dict], sample: str, expected: set[str]) -> None:
    assert expected <= set(tag_names(analyzed(sample), 8)), tag_names(analyzed(sample), 8)


def test_objects_and_people(analyzed: Callable[[str], dict]) -> None:
    moto = analyzed("motorcycle.jpg")
    names = [o["tags"][0]["name"] for o in moto["objectsResult"]["values"]]
    assert names and names[0] == "motorcycle"
    box = moto["objectsResult"]["values"][0]["boundingBox"]
    assert box["w"] > 0.4 * 741 and box["h"] > 0.4 * 500  # the bike fills most of the frame
    assert moto["peopleResult"]["values"] == []
    people = analyzed("astronaut.jpg")["peopleResult"]["values"]
    assert len(people) >= 1 and people[0]["confidence"] > 0.5


def test_faces(analyzed: Callable[[str], dict]) -> None:
    faces = analyzed("astronaut.jpg")["imagepipe"]["faces"]
    assert len(faces) == 1
    box = faces[0]["boundingBox"]
    # Eileen Collins' face sits in the upper middle of the 512 x 512 photo.
    assert 130 < box["x"] + box["w"] / 2 < 300 and 50 < box["y"] + box["h"] / 2 < 200
    assert analyzed("motorcycle.jpg")["imagepipe"]["faces"] == []
    assert analyzed("cat.jpg")["imagepipe"]["faces"] == []


def test_qr_code_decodes(analyzed: Callable[[str], dict]) -> None:
    codes = analyzed("qr-code.png")["imagepipe"]["barcodes"]
    assert [(c["format"], c["text"]) for c in codes] == [("QRCode", "https://example.com/claims/PX-20391-77")]
    assert len(codes[0]["boundingPolygon"]) == 4
    assert analyzed("cat.jpg")["imagepipe"]["barcodes"] == []


def test_adult_scores_are_low_on_safe_samples(analyzed: Callable[[str], dict]) -> None:
    for sample in ("cat.jpg", "astronaut.jpg", "uniform-portrait.jpg"):
        adult = analyzed(sample)["imagepipe"]["adult"]
        assert adult["isAdultContent"] is False and adult["isRacyContent"] is False
        assert 0.0 <= adult["adultScore"] < 0.2


def test_colors(analyzed: Callable[[str], dict], analyzer: LocalAnalyzer) -> None:
    claim = analyzed("insurance-claim.png")["imagepipe"]["colors"]
    assert claim["dominantColors"][0] == "White" and claim["isBWImg"] is True
    coffee = analyzed("coffee.jpg")["imagepipe"]["colors"]
    assert coffee["isBWImg"] is False and "Brown" in coffee["dominantColors"]
    red = analyzer.analyze(png_bytes(Image.new("RGB", (64, 64), (210, 20, 25))), AnalysisRequest((), ("colors",)))
    assert red["imagepipe"]["colors"]["dominantColors"] == ["Red"]
    assert len(red["imagepipe"]["colors"]["accentColor"]) == 6


def test_text_evidence_separates_documents_from_photos(analyzed: Callable[[str], dict]) -> None:
    for sample in ("insurance-claim.png", "game-screenshot.png"):
        assert analyzed(sample)["imagepipe"]["textEvidence"]["score"] >= 0.5
    for sample in ("cat.jpg", "coffee.jpg", "motorcycle.jpg", "astronaut.jpg"):
        assert analyzed(sample)["imagepipe"]["textEvidence"]["score"] < 0.5


def test_detector_only_text_evidence(analyzer: LocalAnalyzer, sample_bytes: Callable[[str], bytes]) -> None:
    """Without "read" the evidence comes from the text detector alone (what the pipeline decides on)."""
    tags_only = AnalysisRequest(features=("tags",))
    for sample in ("insurance-claim.png", "game-screenshot.png"):
        assert analyzer.analyze(sample_bytes(sample), tags_only)["imagepipe"]["textEvidence"]["score"] >= 0.5
    for sample in ("cat.jpg", "coffee.jpg", "motorcycle.jpg", "astronaut.jpg", "uniform-portrait.jpg"):
        assert analyzer.analyze(sample_bytes(sample), tags_only)["imagepipe"]["textEvidence"]["score"] < 0.5


def test_phash_near_duplicates(analyzer: LocalAnalyzer) -> None:
    request = AnalysisRequest((), ("phash",))
    original = Image.open(SAMPLES / "cat.jpg").convert("RGB")
    copy = png_bytes(original.resize((300, 200)), "JPEG", quality=60)
    h_orig = analyzer.analyze((SAMPLES / "cat.jpg").read_bytes(), request)["imagepipe"]["phash"]
    h_copy = analyzer.analyze(copy, request)["imagepipe"]["phash"]
    h_other = analyzer.analyze((SAMPLES / "coffee.jpg").read_bytes(), request)["imagepipe"]["phash"]
    assert len(h_orig) == 16 and int(h_orig, 16) >= 0
    assert phash_distance(h_orig, h_copy) <= 6
    assert phash_distance(h_orig, h_other) >= 20
    assert phash_distance(h_orig, h_orig) == 0


def test_exif_capture_time_camera_and_gps(analyzer: LocalAnalyzer) -> None:
    img = Image.open(SAMPLES / "cat.jpg")
    exif = Image.Exif()
    exif[271], exif[272] = "Contoso", "Lens 9"
    exif.get_ifd(0x8769)[36867] = "2026:03:14 09:26:53"
    exif.get_ifd(0x8825).update({1: "N", 2: (47.0, 36.0, 36.0), 3: "W", 4: (122.0, 19.0, 48.0)})
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    out = analyzer.analyze(buf.getvalue(), AnalysisRequest((), ("exif",)))["imagepipe"]["exif"]
    assert out["captureTime"] == "2026-03-14T09:26:53"
    assert (out["cameraMake"], out["cameraModel"]) == ("Contoso", "Lens 9")
    assert out["gps"] == pytest.approx({"lat": 47.61, "lon": -122.33})
    plain = analyzer.analyze((SAMPLES / "cat.jpg").read_bytes(), AnalysisRequest((), ("exif",)))
    assert plain["imagepipe"]["exif"] == {}


def test_onnx_export_matches_torch_reference() -> None:
    """prepare saved torch's logits for a real photo; the ONNX model must reproduce them."""
    session = ort_session(DEFAULT_MODEL_DIR / ONNX_NAME)
    ref_in = np.load(DEFAULT_MODEL_DIR / REF_INPUT)
    torch_logits = np.load(DEFAULT_MODEL_DIR / REF_OUTPUT)
    onnx_logits = session.run(None, {"input": ref_in})[0]
    assert float(np.abs(onnx_logits - torch_logits).max()) < TOLERANCE
    assert class_names()[int(onnx_logits[0].argmax())] in {"egyptian mau", "tabby cat", "tiger cat"}


def test_hypernym_probabilities_sum_over_classes() -> None:
    probs = np.zeros(1000, dtype=np.float32)
    names = class_names()
    probs[names.index("tabby cat")], probs[names.index("egyptian mau")], probs[names.index("chihuahua")] = 0.3, 0.3, 0.4
    tags = {t["name"]: t["confidence"] for t in tags_from_probabilities(probs)}
    assert tags["cat"] == pytest.approx(0.6) and tags["dog"] == pytest.approx(0.4)
    assert tags["animal"] == pytest.approx(1.0) and tags["chihuahua"] == pytest.approx(0.4)


def test_missing_model_raises_model_unavailable(tmp_path: Path) -> None:
    empty = LocalAnalyzer(tmp_path / "no-models")
    with pytest.raises(ModelUnavailableError, match="make models"):
        empty.analyze((SAMPLES / "cat.jpg").read_bytes(), AnalysisRequest(features=("tags",)))


def test_large_image_boxes_map_back(analyzer: LocalAnalyzer) -> None:
    """A 3x upscaled photo is detected on a shrunk copy; boxes come back in the original's pixels."""
    big = Image.open(SAMPLES / "motorcycle.jpg").convert("RGB").resize((2223, 1500))
    result = analyzer.analyze(png_bytes(big, "JPEG", quality=85), AnalysisRequest(("objects",), ("faces",)))
    box = result["objectsResult"]["values"][0]["boundingBox"]
    assert result["objectsResult"]["values"][0]["tags"][0]["name"] == "motorcycle"
    assert box["w"] > 0.4 * 2223 and box["x"] + box["w"] <= 2223 and box["y"] + box["h"] <= 1500


def test_concurrent_calls_share_models(analyzer: LocalAnalyzer, sample_bytes: Callable[[str], bytes]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    request = AnalysisRequest(features=("tags", "objects", "read"), extras=("faces", "adult"))
    names = ["cat.jpg", "game-screenshot.png", "astronaut.jpg", "motorcycle.jpg"] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: analyzer.analyze(sample_bytes(n), request), names))
    for name, result in zip(names, results, strict=True):
        assert result == results[names.index(name)]  # same answer whichever thread ran it
    assert LocalAnalyzer().classifier is analyzer.classifier  # one session per process
