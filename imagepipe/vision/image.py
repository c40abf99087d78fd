"""Decoding the uploaded bytes once: an upright RGB Pillow image, its size, and its EXIF facts."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from imagepipe.errors import PermanentImageError

#: Largest image we decode (pixels); Pillow's decompression-bomb guard turns into a permanent error.
MAX_PIXELS = 80_000_000


@dataclass
class DecodedImage:
    """The upright RGB image plus what was read from the file itself."""

    rgb: Image.Image
    format: str
    exif: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return self.rgb.width

    @property
    def height(self) -> int:
        return self.rgb.height


def decode(data: bytes) -> DecodedImage:
    """Decode ``data``; raise ``PermanentImageError`` when it is not an image Pillow can read."""
    if not data:
        raise PermanentImageError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise PermanentImageError(
                    f"the image is {image.width}x{image.height}, above the {MAX_PIXELS} pixel limit"
                )
            image.load()
            fmt = image.format or "unknown"
            exif = read_exif(image)
            upright = ImageOps.exif_transpose(image)
            rgb = upright.convert("RGB")
    except PermanentImageError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise PermanentImageError(f"the image cannot be decoded: {exc}") from exc
    return DecodedImage(rgb=rgb, format=fmt, exif=exif)


def _rational(value: Any) -> float:
    return float(value)


def _gps_degrees(dms: Any, ref: Any) -> float | None:
    try:
        deg = _rational(dms[0]) + _rational(dms[1]) / 60.0 + _rational(dms[2]) / 3600.0
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    if str(ref).upper() in ("S", "W"):
        deg = -deg
    return round(deg, 7)


def read_exif(image: Image.Image) -> dict[str, Any]:
    """Capture time, camera make/model and GPS position, each only when the file has it."""
    try:
        exif = image.getexif()
    except Exception:  # malformed EXIF blocks must not fail the analysis; they just give no facts
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
