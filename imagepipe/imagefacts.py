"""Image validation and decoded facts, shared by the upload API and the ``fetch_image_metadata`` activity.

Accepts JPEG (multi-picture JPEG too), PNG, GIF, BMP, WEBP and TIFF (the formats of Azure AI Vision 4.0),
recognised by magic bytes, walked to the true end of their image data (``imageformats``: anything appended is a
polyglot and refused) and confirmed by a full decode (at reduced scale where the codec allows), so truncated
files, polyglots, decompression bombs and out-of-range dimensions are rejected with a clear error before
anything is stored. The limits (``MAX_BYTES``, ``MIN_SIDE_PX``/``MAX_SIDE_PX``, ``MAX_PIXELS``) are defined here
once. Also computes the facts kept on the record: sha256, a 64-bit difference hash for near-duplicate search,
and EXIF capture time, camera and GPS position.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from imagepipe.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from imagepipe.imageformats import HiddenData, MalformedImage, image_end, is_padding

#: magic prefix -> (format name as Pillow reports it, MIME type, file extension)
_MAGIC: tuple[tuple[bytes, str, str, str], ...] = (
    (b"\xff\xd8\xff", "JPEG", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "PNG", "image/png", "png"),
    (b"GIF87a", "GIF", "image/gif", "gif"),
    (b"GIF89a", "GIF", "image/gif", "gif"),
    (b"BM", "BMP", "image/bmp", "bmp"),
    (b"II*\x00", "TIFF", "image/tiff", "tiff"),
    (b"MM\x00*", "TIFF", "image/tiff", "tiff"),
)
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")

# The one set of image limits (settings may lower them, never raise them; see docs/image-validation.md).
#: Azure AI Vision 4.0 refuses bodies "larger than 20971520 bytes".
MAX_BYTES = 20 * 1024 * 1024
#: Azure AI Vision 4.0 refuses sides "smaller than 50 and larger than 16000" px.
MIN_SIDE_PX, MAX_SIDE_PX = 50, 16_000
#: The most pixels any image may have. AI Vision's side limit alone would allow 256 Mpx, but the local analyzer
#: holds the decoded RGB image and its upright copy in memory (about 1.2 GB peak at 100 Mpx), so 100 Mpx it is.
MAX_PIXELS = 100_000_000
# Pillow's own decompression-bomb guard (a warning above its limit, an error above twice it) is set to the same
# number, so that it never refuses an image our limit accepts; our explicit check runs first and names the limit.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    min_dimension: int
    max_dimension: int
    max_pixels: int


@dataclass(frozen=True)
class ImageFacts:
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    size: int
    sha256: str
    phash: str
    exif: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sniff_format(data: bytes) -> tuple[str, str, str]:
    """(format, MIME type, extension) from the magic bytes, or 415 naming what is accepted."""
    for magic, fmt, mime, ext in _MAGIC:
        if data.startswith(magic):
            return fmt, mime, ext
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", "image/webp", "webp"
    raise UnsupportedMediaTypeError(
        "the body is not a supported image (JPEG, PNG, GIF, BMP, WEBP or TIFF, recognised by its first bytes)"
    )


@dataclass(frozen=True)
class ValidImage:
    """What validation learns about an accepted image: its format and dimensions."""

    format: str
    content_type: str
    extension: str
    width: int
    height: int


def inspect_image(data: bytes, limits: Limits, declared_type: str | None = None) -> ImageFacts:
    """Validate ``data`` as an acceptable image and return its facts; raise a 4xx error otherwise.

    One decode serves the validation, the difference hash and the EXIF facts: a JPEG is decoded at the scale
    the hash wants (``HASH_DRAFT``; still every byte of its entropy-coded data), and the hash and EXIF are read
    from that decoded image, so they equal ``difference_hash`` and ``exif_facts`` of the same bytes."""
    facts: dict[str, Any] = {}

    def hash_and_exif(image: Image.Image) -> None:
        facts["phash"] = _dhash_of(image)
        facts["exif"] = exif_of_image(image)

    valid = _validated(data, limits, declared_type, draft=HASH_DRAFT, then=hash_and_exif)
    return ImageFacts(
        format=valid.format,
        content_type=valid.content_type,
        extension=valid.extension,
        width=valid.width,
        height=valid.height,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        phash=facts["phash"],
        exif=facts["exif"],
    )


def validate_image(data: bytes, limits: Limits, declared_type: str | None = None) -> ValidImage:
    """Every check of ``inspect_image`` (structure walk and one full decode), without the facts it computes
    from the decoded image (hashes, EXIF): what the upload API needs before it stores an image. Raises a 4xx
    error."""
    return _validated(data, limits, declared_type, draft=VALIDATION_DRAFT, then=None)


#: How a JPEG is drafted for a decode: (mode, size wanted) from the image's (width, height). Drafting makes
#: libjpeg scale the DCT down (1/2 .. 1/8) but it still reads all the entropy-coded data, so truncation and
#: corruption are found at any scale; other formats ignore drafts and decode whole.
Draft = Callable[[int, int], tuple[str, tuple[int, int]]]
VALIDATION_DRAFT: Draft = lambda width, height: ("RGB", (max(1, width // 8), max(1, height // 8)))  # noqa: E731
HASH_DRAFT: Draft = lambda width, height: ("L", (64, 64))  # noqa: E731 - what the difference hash reads


def _validated(
    data: bytes,
    limits: Limits,
    declared_type: str | None,
    *,
    draft: Draft,
    then: Callable[[Image.Image], None] | None,
) -> ValidImage:
    if not data:
        raise InvalidInputError("the request body is empty; send the image bytes", code="empty_body")
    if len(data) > limits.max_bytes:
        raise PayloadTooLargeError(
            f"the image is {len(data)} bytes; the limit is {limits.max_bytes} bytes "
            "(use POST /api/uploads for direct uploads up to that size)"
        )
    fmt, mime, ext = sniff_format(data)
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared not in _GENERIC_TYPES and not declared.startswith("multipart/") and declared != mime:
        if not (declared == "image/jpg" and mime == "image/jpeg"):
            raise UnsupportedMediaTypeError(
                f"the declared content type {declared} does not match the image's bytes ({mime})",
                code="content_type_mismatch",
            )
    _refuse_trailing_payload(data, fmt)
    width, height = _decode_checked(data, fmt, limits, draft, then)
    return ValidImage(format=fmt, content_type=mime, extension=ext, width=width, height=height)


def _refuse_trailing_payload(data: bytes, fmt: str) -> None:
    """Refuse bytes after the image data (polyglots), found by walking the format's structure."""
    try:
        end = image_end(data, fmt)
    except HiddenData as exc:
        raise UnsupportedMediaTypeError(
            f"the {fmt} file carries data that is not part of the image ({exc}); files with data appended or "
            "hidden in them (polyglots) are refused",
            code="trailing_payload",
        ) from exc
    except MalformedImage as exc:
        raise InvalidInputError(f"the {fmt} image is truncated or corrupt: {exc}", code="undecodable_image") from exc
    tail = data[end:]
    if tail and not is_padding(tail):
        raise UnsupportedMediaTypeError(
            f"the {fmt} image data ends at byte {end}, but the file has {len(tail)} more bytes appended "
            f"(starting {tail[:8]!r}); files with data appended (polyglots) are refused — send the image alone",
            code="trailing_payload",
        )


def _too_many_pixels(declared: str, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the image declares {declared}; the limit is {limit:,} pixels (MAX_PIXELS), and larger images "
        "(decompression bombs among them) are refused before decoding",
        code="too_many_pixels",
    )


def _decode_checked(
    data: bytes, fmt: str, limits: Limits, draft: Draft, then: Callable[[Image.Image], None] | None
) -> tuple[int, int]:
    """Header checks, then one full decode (``draft`` for a JPEG); ``then`` gets the decoded image."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            decoded_format = probe.format
    except Image.DecompressionBombError as exc:  # only above twice Pillow's limit, which is MAX_PIXELS
        raise _too_many_pixels(f"more than {2 * MAX_PIXELS:,} pixels", limits.max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise InvalidInputError(f"the {fmt} image cannot be decoded: {exc}", code="undecodable_image") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(f"the {fmt} image header is corrupt: {exc}", code="undecodable_image") from exc
    if decoded_format != fmt and not (fmt == "JPEG" and decoded_format == "MPO"):
        raise UnsupportedMediaTypeError(
            f"the file starts like {fmt} but decodes as {decoded_format}; polyglot files are refused",
            code="format_mismatch",
        )
    if width * height > limits.max_pixels:
        raise _too_many_pixels(f"{width}x{height} = {width * height:,} pixels", limits.max_pixels)
    if min(width, height) < limits.min_dimension or max(width, height) > limits.max_dimension:
        raise InvalidInputError(
            f"the image is {width}x{height} px; each side must be between {limits.min_dimension} and "
            f"{limits.max_dimension} px",
            code="invalid_dimensions",
        )
    with Image.open(io.BytesIO(data)) as image:
        try:
            if fmt == "JPEG":
                image.draft(*draft(width, height))
            image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InvalidInputError(
                f"the {fmt} image is truncated or corrupt and cannot be fully decoded: {exc}",
                code="undecodable_image",
            ) from exc
        if then is not None:
            then(image)
    return width, height


def difference_hash(data: bytes) -> str:
    """64-bit difference hash (16 hex digits): robust to resizing and recompression, cheap to compare."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft(*HASH_DRAFT(*image.size))
        return _dhash_of(image)


def _dhash_of(image: Image.Image) -> str:
    """``difference_hash`` of an opened image (drafted by ``HASH_DRAFT`` when a JPEG)."""
    small = ImageOps.exif_transpose(image).convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    pixels = list(small.tobytes())
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            bits = (bits << 1) | (1 if left > right else 0)
    return f"{bits:016x}"


def _gps_degrees(dms: Any, ref: Any) -> float | None:
    try:
        deg = float(dms[0]) + float(dms[1]) / 60.0 + float(dms[2]) / 3600.0
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    return round(-deg if str(ref).upper() in ("S", "W") else deg, 7)


def exif_of_image(image: Image.Image) -> dict[str, Any]:
    """Capture time (ISO 8601), camera make/model and GPS position, each only when the file has it."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - malformed EXIF blocks must not fail anything; they just give no facts
        return {}
    out: dict[str, Any] = {}
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    when = ifd.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    if when:
        text = str(when).strip().replace("\x00", "")
        if len(text) >= 19 and text[4] == ":" and text[7] == ":":
            text = f"{text[0:4]}-{text[5:7]}-{text[8:10]}T{text[11:19]}"
        out["captureTime"] = text
    for key, tag in (("cameraMake", ExifTags.Base.Make), ("cameraModel", ExifTags.Base.Model)):
        value = exif.get(tag)
        if value:
            out[key] = str(value).strip().replace("\x00", "")
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if gps:
        lat = _gps_degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef))
        lon = _gps_degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef))
        if lat is not None and lon is not None:
            out["gps"] = {"lat": lat, "lon": lon}
    return out


def exif_facts(data: bytes) -> dict[str, Any]:
    """``exif_of_image`` of encoded image bytes ({} when they cannot be opened)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return exif_of_image(image)
    except (OSError, ValueError, SyntaxError):
        return {}
