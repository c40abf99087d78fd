"""Decoding the uploaded bytes once: an upright RGB Pillow image (and its pixel array), its size, its EXIF facts."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from imagepipe.errors import PermanentImageError
from imagepipe.imagefacts import MAX_PIXELS
from imagepipe.imagefacts import exif_of_image as read_exif

__all__ = ["MAX_PIXELS", "DecodedImage", "decode"]


@dataclass
class DecodedImage:
    """The upright RGB image plus what was read from the file itself."""

    rgb: Image.Image
    format: str
    exif: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def array(self) -> NDArray[np.uint8]:
        """The pixels as one read-only H x W x 3 uint8 array, made on first use and shared by the models."""
        pixels: NDArray[np.uint8] = np.asarray(self.rgb)
        return pixels

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
            if image.width * image.height > MAX_PIXELS:  # the upload's limit: what it accepted decodes here
                raise PermanentImageError(
                    f"the image is {image.width}x{image.height} = {image.width * image.height:,} pixels, "
                    f"above the {MAX_PIXELS:,} pixel limit (MAX_PIXELS)"
                )
            image.load()
            fmt = image.format or "unknown"
            exif = read_exif(image)
            upright = ImageOps.exif_transpose(image)
            rgb = upright.convert("RGB")
    except PermanentImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentImageError(
            f"the image has more than the {MAX_PIXELS:,} pixel limit (MAX_PIXELS): {exc}"
        ) from exc
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
    ) as exc:
        raise PermanentImageError(f"the image cannot be decoded: {exc}") from exc
    return DecodedImage(rgb=rgb, format=fmt, exif=exif)
