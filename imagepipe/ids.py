"""Identifiers: image ids, blob names and the durable instance id derived from a blob version.

Image ids are time-ordered, lowercase Crockford base32 (26 characters, like a ULID) so that they sort by
upload time and can never carry path tricks. The orchestration instance id is a pure function of the image
id and the blob's ETag, so duplicate Event Grid deliveries of one blob version map to one instance.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from imagepipe.errors import InvalidInputError

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_IMAGE_ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")
_BLOB_NAME = re.compile(r"^(?P<id>[0-9a-hjkmnp-tv-z]{26})\.(?P<ext>[a-z0-9]{2,5})$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_image_id(now_ms: int | None = None) -> str:
    """A new, time-ordered image id: 48-bit millisecond time + 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return _encode(ms, 10) + _encode(secrets.randbits(80), 16)


def is_image_id(value: str) -> bool:
    return bool(_IMAGE_ID.match(value))


def require_image_id(value: str) -> str:
    """``value`` if it is a well-formed image id, else a 400 naming the problem."""
    if not is_image_id(value):
        raise InvalidInputError(
            f"'{value[:64]}' is not an image id (26 characters, 0-9 and lowercase letters)", code="invalid_id"
        )
    return value


def blob_name(image_id: str, extension: str) -> str:
    return f"{image_id}.{extension}"


def image_id_from_blob_name(name: str) -> str | None:
    """The image id of a blob we wrote (``<id>.<ext>``), or None for any other name."""
    match = _BLOB_NAME.match(name)
    return match.group("id") if match else None


def version_key(etag: str) -> str:
    """A short stable key for one blob version (its ETag, quotes ignored)."""
    return hashlib.sha256(etag.strip('"').encode()).hexdigest()[:12]


def instance_id(image_id: str, etag: str) -> str:
    """The orchestration instance id for one version of one image."""
    return f"{image_id}-{version_key(etag)}"


def image_id_from_instance_id(value: str) -> str | None:
    head, _, tail = value.rpartition("-")
    return head if is_image_id(head) and len(tail) == 12 else None
