"""One pixel limit, enforced once at upload: the settings default, Pillow's decompression-bomb limit and the local
analyzer's decoder agree, and settings cannot be raised past what Azure AI Vision 4.0 accepts (20 MB, 50..16,000 px
per side) or what the local analyzer decodes (MAX_PIXELS)."""

from __future__ import annotations

import pytest
from PIL import Image

from imagepipe import imagefacts
from imagepipe.errors import ConfigurationError, PermanentImageError
from imagepipe.settings import Settings, load_settings
from imagepipe.vision import image as vision_image
from tests.support import images

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def local_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    for name in ("MAX_UPLOAD_BYTES", "MIN_DIMENSION_PX", "MAX_DIMENSION_PX", "MAX_PIXELS"):
        monkeypatch.delenv(name, raising=False)


def test_one_pixel_limit_for_upload_settings_pillow_and_the_analyzer() -> None:
    limit = imagefacts.MAX_PIXELS
    assert Settings.model_fields["max_pixels"].default == limit
    assert load_settings().max_pixels == limit
    assert vision_image.MAX_PIXELS == limit
    assert Image.MAX_IMAGE_PIXELS == limit  # Pillow warns (and our decoders refuse) only above our own limit
    assert limit <= imagefacts.MAX_SIDE_PX**2  # never more than AI Vision's side limit allows


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_PIXELS", str(100_000_001)),
        ("MAX_DIMENSION_PX", "16001"),
        ("MIN_DIMENSION_PX", "49"),
        ("MAX_UPLOAD_BYTES", str(20 * 1024 * 1024 + 1)),
    ],
)
def test_limits_cannot_exceed_what_ai_vision_and_the_analyzer_accept(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert name in error.value.message


def test_limits_can_be_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_PIXELS", "1000000")
    monkeypatch.setenv("MAX_DIMENSION_PX", "4000")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000000")
    s = load_settings()
    assert (s.max_pixels, s.max_dimension_px, s.max_upload_bytes) == (1_000_000, 4000, 1_000_000)


def test_the_analyzer_decodes_an_image_at_the_upload_limit() -> None:
    """An image the upload accepts (here exactly MAX_PIXELS) must not fail the run at a lower decoder limit."""
    side = 10_000
    assert side * side == imagefacts.MAX_PIXELS
    decoded = vision_image.decode(images.png_canvas(side, side))
    assert (decoded.width, decoded.height) == (side, side)


def test_the_analyzer_refuses_above_the_limit_naming_it() -> None:
    with pytest.raises(PermanentImageError) as error:
        vision_image.decode(images.png_canvas(10_000, 10_001))
    assert f"{imagefacts.MAX_PIXELS:,}" in error.value.message and "MAX_PIXELS" in error.value.message
