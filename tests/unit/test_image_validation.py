"""Image validation on its own (no storage): every accepted format as real encoders write it passes, the same
file with a payload appended (ZIP, HTML, a ZIP that ends like the format's own end marker) is refused as a
polyglot, multi-picture JPEGs (MPO) pass as JPEG, and broken structures are a clear 400."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from PIL import Image

from imagepipe.errors import ImagepipeError
from imagepipe.imagefacts import Limits, inspect_image
from imagepipe.imageformats import PADDING_TOLERANCE, image_end
from tests.support import images

pytestmark = pytest.mark.unit

LIMITS = Limits(max_bytes=20 * 1024 * 1024, min_dimension=50, max_dimension=16000, max_pixels=100_000_000)
MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
}


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Imagepipe Test Camera"
    exif[0x0132] = "2026:12:02 10:11:12"
    return exif


def _clean_files() -> list[tuple[str, str, bytes]]:
    """(case, format, bytes): what Pillow writes for each format, across the options that change the structure."""
    frames = [images.scene().rotate(a) for a in (10, 20, 30)]
    animated: dict[str, Any] = {"save_all": True, "append_images": frames, "duration": 80, "loop": 0}
    icc = b"\x00" * 70_000  # large enough to span two APP2 segments in a JPEG
    cases: list[tuple[str, str, bytes]] = [
        ("jpeg baseline", "JPEG", images.encode("JPEG", quality=90)),
        ("jpeg progressive", "JPEG", images.encode("JPEG", progressive=True, quality=80)),
        ("jpeg optimized 4:4:4", "JPEG", images.encode("JPEG", optimize=True, subsampling=0, quality=95)),
        ("jpeg restart markers", "JPEG", images.encode("JPEG", restart_marker_blocks=1)),
        ("jpeg exif + icc", "JPEG", images.encode("JPEG", exif=_exif(), icc_profile=icc)),
        ("jpeg grayscale", "JPEG", images.encode("JPEG", images.scene(mode="L"))),
        ("jpeg cmyk", "JPEG", images.encode("JPEG", images.scene(mode="CMYK"))),
        ("png rgb", "PNG", images.encode("PNG")),
        ("png rgba optimized", "PNG", images.encode("PNG", images.scene(mode="RGBA"), optimize=True)),
        ("png palette", "PNG", images.encode("PNG", images.scene(mode="P"))),
        ("png 1-bit", "PNG", images.encode("PNG", images.scene(mode="1"))),
        ("png animated", "PNG", images.encode("PNG", **animated)),
        ("gif", "GIF", images.encode("GIF")),
        ("gif animated + comment", "GIF", images.encode("GIF", comment=b"made by a test", **animated)),
        ("gif transparent", "GIF", images.encode("GIF", images.scene(mode="P"), transparency=0)),
        ("bmp 24-bit", "BMP", images.encode("BMP")),
        ("bmp odd width", "BMP", images.encode("BMP", images.scene(151, 99))),
        ("bmp 8-bit palette", "BMP", images.encode("BMP", images.scene(mode="P"))),
        ("bmp 1-bit", "BMP", images.encode("BMP", images.scene(mode="1"))),
        ("bmp 32-bit", "BMP", images.encode("BMP", images.scene(mode="RGBA"))),
        ("bmp rle8", "BMP", images.bmp_rle8()),
        ("bmp v5 + icc profile", "BMP", images.bmp_v5_with_profile()),
        ("webp lossy", "WEBP", images.encode("WEBP", quality=80)),
        ("webp lossless", "WEBP", images.encode("WEBP", lossless=True)),
        (
            "webp alpha + exif + icc",
            "WEBP",
            images.encode("WEBP", images.scene(mode="RGBA"), exif=_exif(), icc_profile=icc),
        ),
        ("webp animated", "WEBP", images.encode("WEBP", **animated)),
        ("tiff raw", "TIFF", images.encode("TIFF")),
        ("tiff lzw", "TIFF", images.encode("TIFF", compression="tiff_lzw")),
        ("tiff deflate", "TIFF", images.encode("TIFF", compression="tiff_adobe_deflate")),
        ("tiff jpeg", "TIFF", images.encode("TIFF", compression="jpeg")),
        ("tiff packbits + exif", "TIFF", images.encode("TIFF", compression="packbits", exif=_exif())),
        ("tiff multi-page", "TIFF", images.encode("TIFF", save_all=True, append_images=frames)),
        ("tiff big-endian", "TIFF", _big_endian_tiff()),
    ]
    return cases


def _big_endian_tiff() -> bytes:
    """A hand-written big-endian (MM) uncompressed RGB TIFF, 64x64, strips in two parts, IFD at the end."""
    width = height = 64
    pixels = bytes((x * 4) % 256 for x in range(width * height * 3))
    half = len(pixels) // 2
    entries = [
        (256, 3, 1, width << 16),
        (257, 3, 1, height << 16),
        (258, 3, 1, 8 << 16),  # one value for all samples (enough for Pillow)
        (259, 3, 1, 1 << 16),
        (262, 3, 1, 2 << 16),
        (273, 4, 2, 8 + len(pixels)),  # -> the two offsets stored after the pixels
        (277, 3, 1, 3 << 16),
        (278, 3, 1, 32 << 16),
        (279, 4, 2, 8 + len(pixels) + 8),
    ]
    arrays = struct.pack(">II", 8, 8 + half) + struct.pack(">II", half, len(pixels) - half)
    ifd_at = 8 + len(pixels) + len(arrays)
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHII", *e) for e in entries) + b"\x00" * 4
    return b"MM\x00*" + struct.pack(">I", ifd_at) + pixels + arrays + ifd


CLEAN = _clean_files()
FORMATS = ["JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"]


def refusal(data: bytes, fmt: str) -> ImagepipeError:
    with pytest.raises(ImagepipeError) as caught:
        inspect_image(data, LIMITS, MIME[fmt])
    return caught.value


@pytest.mark.parametrize(("case", "fmt", "data"), CLEAN, ids=[c[0] for c in CLEAN])
def test_what_real_encoders_write_is_accepted_whole(case: str, fmt: str, data: bytes) -> None:
    end = image_end(data, fmt)
    assert end == len(data) or (end > len(data) - 16 and not data[end:].strip(b"\x00")), case  # at most alignment
    facts = inspect_image(data, LIMITS, MIME[fmt])
    assert facts.format == fmt and facts.size == len(data)


@pytest.mark.parametrize("sample", sorted(p.name for p in images.SAMPLES.glob("*.*g")))
def test_bundled_samples_are_accepted(sample: str) -> None:
    data = (images.SAMPLES / sample).read_bytes()
    assert inspect_image(data, LIMITS).size == len(data)


def _payloads() -> list[tuple[str, str, bytes]]:
    clean = {fmt: data for _case, fmt, data in CLEAN if _case.split()[0].upper() == fmt}  # first case per format
    out = []
    for fmt in FORMATS:
        base = clean[fmt]
        out.append((f"{fmt} + zip", fmt, base + images.zip_archive()))
        out.append((f"{fmt} + html", fmt, base + images.HTML_PAYLOAD))
        out.append((f"{fmt} + zip ending like {fmt}", fmt, base + images.zip_archive() + images.END_MIMICS[fmt]))
    for case, data in (("rle8", images.bmp_rle8()), ("v5 + icc profile", images.bmp_v5_with_profile())):
        out.append((f"BMP {case} + zip", "BMP", data + images.zip_archive()))
    return out


PAYLOADS = _payloads()


@pytest.mark.parametrize(("case", "fmt", "data"), PAYLOADS, ids=[c[0] for c in PAYLOADS])
def test_appended_payload_is_refused_as_polyglot(case: str, fmt: str, data: bytes) -> None:
    error = refusal(data, fmt)
    assert (error.http_status, error.code) == (415, "trailing_payload"), (case, error.message)
    assert "appended" in error.message and fmt in error.message


def _size_field_covering(fmt: str) -> bytes:
    """A file whose own size field was rewritten to cover the ZIP appended to it."""
    if fmt == "BMP":
        data = bytearray(images.encode("BMP") + images.zip_archive())
        struct.pack_into("<I", data, 2, len(data))
    else:
        payload = images.zip_archive()
        payload += b"\x00" * (len(payload) & 1)
        data = bytearray(images.encode("WEBP") + payload)
        struct.pack_into("<I", data, 4, len(data) - 8)
    return bytes(data)


@pytest.mark.parametrize("fmt", ["BMP", "WEBP"])
def test_a_size_field_rewritten_to_cover_a_payload_does_not_hide_it(fmt: str) -> None:
    error = refusal(_size_field_covering(fmt), fmt)
    assert (error.http_status, error.code) == (415, "trailing_payload"), error.message


def test_padding_after_the_image_is_tolerated_within_a_small_limit() -> None:
    jpeg = images.encode("JPEG")
    assert inspect_image(jpeg + b"\x00" * 512, LIMITS).size == len(jpeg) + 512
    assert inspect_image(jpeg + b"\xff" * 16, LIMITS).size == len(jpeg) + 16
    assert refusal(jpeg + b"\x00" * (PADDING_TOLERANCE + 1), "JPEG").code == "trailing_payload"
    assert refusal(jpeg + b"\x00" * 64 + b"<", "JPEG").code == "trailing_payload"


BROKEN = [
    ("jpeg without end-of-image", "JPEG", images.encode("JPEG")[:-2]),
    ("jpeg cut in a segment", "JPEG", images.encode("JPEG")[:40]),
    ("png without IEND", "PNG", images.encode("PNG")[:-12]),
    ("png with a bad CRC", "PNG", images.encode("PNG")[:-1] + b"\x00"),
    ("gif cut in a block", "GIF", images.encode("GIF")[:-40]),
    ("bmp cut in its pixels", "BMP", images.encode("BMP")[:-100]),
    ("webp cut short", "WEBP", images.encode("WEBP")[:-10]),
    ("tiff cut in its IFD", "TIFF", images.encode("TIFF")[:-20]),
]


@pytest.mark.parametrize(("case", "fmt", "data"), BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_structure_is_a_clear_400(case: str, fmt: str, data: bytes) -> None:
    error = refusal(data, fmt)
    assert (error.http_status, error.code) == (400, "undecodable_image"), (case, error.message)


# ---------------------------------------------------------------------------------------------------
# Multi-picture JPEG (MPO)
# ---------------------------------------------------------------------------------------------------


def test_mpo_is_accepted_as_jpeg_first_frame() -> None:
    data = images.mpo(frames=3, width=200, height=150)
    with Image.open(__import__("io").BytesIO(data)) as probe:
        assert probe.format == "MPO" and getattr(probe, "n_frames", 1) == 3
    facts = inspect_image(data, LIMITS, "image/jpeg")
    assert (facts.format, facts.content_type, facts.extension) == ("JPEG", "image/jpeg", "jpg")
    assert (facts.width, facts.height, facts.size) == (200, 150, len(data))


@pytest.mark.parametrize("payload", [images.zip_archive(), images.zip_archive() + b"\xff\xd9"], ids=["zip", "zip+EOI"])
def test_mpo_with_a_payload_after_its_last_frame_is_refused(payload: bytes) -> None:
    error = refusal(images.mpo() + payload, "JPEG")
    assert (error.http_status, error.code) == (415, "trailing_payload"), error.message


def test_mpo_with_data_hidden_between_frames_is_refused() -> None:
    data = images.mpo()
    header = data.index(b"MPF\x00") + 4  # the MP header (offsets count from here), little-endian from Pillow
    assert data[header : header + 4] == b"II*\x00"
    second = data.index(b"\xff\xd8\xff", 2)
    hidden = images.zip_archive()
    patched = bytearray(data[:second] + hidden + data[second:])
    # point the second frame's MP entry past the hidden bytes, so the index still finds the frame
    entry = data.index(struct.pack("<I", second - header), header)
    struct.pack_into("<I", patched, entry, second - header + len(hidden))
    error = refusal(bytes(patched), "JPEG")
    assert (error.http_status, error.code) == (415, "trailing_payload"), error.message
    assert "belong to none" in error.message


# ---------------------------------------------------------------------------------------------------
# What phones append after EOI, declared by the file itself
# ---------------------------------------------------------------------------------------------------

PHONE_FILES = [
    ("google motion photo", images.motion_photo()),
    ("google micro video (legacy)", images.micro_video()),
    ("samsung sef trailer", images.samsung_sef(images.encode("JPEG"))),
    ("samsung motion photo (video in the SEF trailer)", images.samsung_motion_photo()),
]


@pytest.mark.parametrize(("case", "data"), PHONE_FILES, ids=[c[0] for c in PHONE_FILES])
def test_declared_phone_trailers_are_accepted(case: str, data: bytes) -> None:
    assert image_end(data, "JPEG") == len(data), case
    assert inspect_image(data, LIMITS, "image/jpeg").format == "JPEG"


PHONE_POLYGLOTS = [
    ("motion photo + zip", images.motion_photo() + images.zip_archive()),
    ("motion photo declaring a zip as its video", images.motion_photo(video=images.zip_archive())),
    ("motion photo declaring a zip item", images.motion_photo(video=images.zip_archive(), mime="application/zip")),
    ("motion photo declaring too little", images.motion_photo(declared=len(images.mp4_stand_in()) - 8)),
    (
        "motion photo with html before its video",
        images.motion_photo(video=images.HTML_PAYLOAD + images.mp4_stand_in(), declared=len(images.mp4_stand_in())),
    ),
    ("samsung trailer + zip", images.samsung_sef(images.encode("JPEG")) + images.zip_archive()),
    ("zip before a samsung trailer", images.samsung_sef(images.encode("JPEG"), gap=images.zip_archive())),
    ("zip ending in SEFT", images.encode("JPEG") + images.zip_archive() + b"\x00\x00\x00\x00SEFT"),
]


@pytest.mark.parametrize(("case", "data"), PHONE_POLYGLOTS, ids=[c[0] for c in PHONE_POLYGLOTS])
def test_payloads_disguised_as_phone_trailers_are_refused(case: str, data: bytes) -> None:
    error = refusal(data, "JPEG")
    assert (error.http_status, error.code) == (415, "trailing_payload"), (case, error.message)


# ---------------------------------------------------------------------------------------------------
# One decode for validation, hash and EXIF
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "fmt", "data"), CLEAN, ids=[c[0] for c in CLEAN])
def test_facts_come_from_one_decode_and_equal_the_separate_functions(
    case: str, fmt: str, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageFile, TiffImagePlugin

    from imagepipe.imagefacts import difference_hash, exif_facts

    expected = (difference_hash(data), exif_facts(data))  # each opens and decodes the file on its own
    decoded: dict[int, str] = {}  # id of each image object whose pixel data was decoded

    def counting(real: Any) -> Any:
        def load(self: ImageFile.ImageFile) -> Any:
            if self.tile:  # pixel data still to decode (TIFF's own load bypasses ImageFile's for libtiff)
                decoded[id(self)] = self.format or "?"
            return real(self)

        return load

    for cls in (ImageFile.ImageFile, TiffImagePlugin.TiffImageFile):
        monkeypatch.setattr(cls, "load", counting(cls.load))
    facts = inspect_image(data, LIMITS, MIME[fmt])
    assert len(decoded) == 1, f"{case}: the image was decoded {len(decoded)} times ({list(decoded.values())})"
    assert (facts.phash, facts.exif) == expected, case
