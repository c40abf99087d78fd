"""The upload API's image validation end to end (real Azurite + SQLite): the pixel limit at its boundary,
multi-picture JPEGs (MPO) accepted as JPEG, and a polyglot of every accepted format refused with nothing stored."""

from __future__ import annotations

import pytest

from imagepipe.composition import services
from imagepipe.imagefacts import MAX_PIXELS
from imagepipe.ports import SearchQuery
from tests.support import images
from tests.support.inprocess import body_json, call_http

pytestmark = pytest.mark.integration


def upload(body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    response = call_http("upload_image", "POST", "/api/images", body=body, headers={"content-type": content_type})
    return response.status_code, body_json(response)


def nothing_stored() -> bool:
    return not list(services().blobs.list()) and not services().records.search(SearchQuery()).items


@pytest.mark.parametrize(
    ("width", "height"),
    [(9_500, 10_000), (10_000, 10_000)],
    ids=["95 Mpx (Pillow's own bomb limit refused it)", "exactly MAX_PIXELS"],
)
def test_images_up_to_the_pixel_limit_are_accepted(app_env: dict[str, str], width: int, height: int) -> None:
    assert width * height <= MAX_PIXELS
    status, body = upload(images.png_canvas(width, height), "image/png")
    assert status == 202, body
    assert [b.name for b in services().blobs.list()] == [f"{body['id']}.png"]


@pytest.mark.parametrize(
    ("width", "height"), [(10_000, 10_001), (16_000, 16_000)], ids=["one row over", "beyond Pillow's bomb error"]
)
def test_images_over_the_pixel_limit_are_refused_naming_it(app_env: dict[str, str], width: int, height: int) -> None:
    status, body = upload(images.png_canvas(width, height), "image/png")
    error = body["error"]
    assert isinstance(error, dict)
    assert (status, error["code"]) == (413, "too_many_pixels"), body
    assert f"{MAX_PIXELS:,}" in error["message"] and "MAX_PIXELS" in error["message"]
    assert nothing_stored()


def test_mpo_upload_is_accepted_as_jpeg(app_env: dict[str, str]) -> None:
    data = images.mpo(frames=2, width=320, height=240)
    status, body = upload(data, "image/jpeg")
    assert status == 202, body
    info = services().blobs.get_properties(f"{body['id']}.jpg")
    assert (info.content_type, info.size) == ("image/jpeg", len(data))


POLYGLOTS = [
    ("jpeg", images.encode("JPEG") + images.zip_archive() + images.END_MIMICS["JPEG"], "image/jpeg"),
    ("mpo", images.mpo() + images.zip_archive(), "image/jpeg"),
    ("png", images.encode("PNG") + images.zip_archive() + images.END_MIMICS["PNG"], "image/png"),
    ("gif", images.encode("GIF") + images.HTML_PAYLOAD, "image/gif"),
    ("bmp", images.encode("BMP") + images.zip_archive(), "image/bmp"),
    ("webp", images.encode("WEBP") + images.HTML_PAYLOAD, "image/webp"),
    ("tiff", images.encode("TIFF") + images.zip_archive(), "image/tiff"),
]


@pytest.mark.parametrize(("case", "data", "content_type"), POLYGLOTS, ids=[p[0] for p in POLYGLOTS])
def test_polyglot_of_every_format_is_refused(
    app_env: dict[str, str], case: str, data: bytes, content_type: str
) -> None:
    status, body = upload(data, content_type)
    error = body["error"]
    assert isinstance(error, dict)
    assert (status, error["code"]) == (415, "trailing_payload"), body
    assert nothing_stored()
