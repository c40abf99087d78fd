"""Helpers shared by the record stores: blob-version ordering, timestamps, continuation tokens, pHash.

Both stores (SQLite and Cosmos DB) decide "is this write older than what is stored?" with
``is_older_version`` so they agree on the rule from docs/contracts.md: compare ``blob.lastModified`` first
and, when equal, the ETag.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from imagepipe.errors import InvalidInputError

JsonDict = dict[str, Any]

MAX_LIMIT = 1000
_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------------


def parse_ts(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``...Z`` or with an offset) as an aware UTC datetime; None when unparseable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def sortable_ts(value: Any) -> str:
    """A fixed-width UTC string (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) that sorts like the instant; '' if unknown."""
    parsed = parse_ts(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if parsed else ""


# ---------------------------------------------------------------------------------------------------
# Blob versions
# ---------------------------------------------------------------------------------------------------


def blob_version(record: JsonDict) -> tuple[datetime | None, str]:
    """``(blob.lastModified, blob.etag)`` of a record (either may be missing)."""
    blob = record.get("blob") or {}
    if not isinstance(blob, dict):
        return None, ""
    etag = blob.get("etag")
    return parse_ts(blob.get("lastModified")), (etag.strip('"') if isinstance(etag, str) else "")


def is_older_version(new: JsonDict, stored: JsonDict) -> bool:
    """True when ``new`` describes an older blob version than ``stored`` (so it must not replace it).

    Rules: a strictly newer stored ``lastModified`` wins. Equal ``lastModified`` values cannot order two
    versions: Last-Modified has one-second resolution and ETags are opaque (Azurite's are random, Azure
    documents no order), so the write is allowed; every pipeline step checks that the live blob still has its
    ETag before it writes, which is what keeps a stale run of the same second out. When either side lacks
    ``lastModified`` there is nothing to compare and the write is allowed.
    """
    new_lm, _ = blob_version(new)
    old_lm, _ = blob_version(stored)
    if new_lm is None or old_lm is None:
        return False
    return new_lm < old_lm


# ---------------------------------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------------------------------


def clamp_limit(limit: int) -> int:
    """The page size, clamped to 1..1000."""
    return max(1, min(MAX_LIMIT, int(limit)))


def encode_token(payload: JsonDict) -> str:
    """An opaque continuation token: URL-safe base64 of compact JSON."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> JsonDict:
    """The payload of ``encode_token``; a malformed token raises ``InvalidInputError``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidInputError("continuation token is malformed", code="invalid_continuation") from exc
    if not isinstance(payload, dict):
        raise InvalidInputError("continuation token is malformed", code="invalid_continuation")
    return payload


# ---------------------------------------------------------------------------------------------------
# Perceptual hashes
# ---------------------------------------------------------------------------------------------------


def phash_to_int(phash: Any) -> int | None:
    """A 64-bit perceptual hash given as 16 hex digits, as an unsigned int; None when malformed."""
    if not isinstance(phash, str) or len(phash) != 16:
        return None
    try:
        return int(phash, 16)
    except ValueError:
        return None


def to_signed64(value: int) -> int:
    """An unsigned 64-bit value as SQLite's signed INTEGER."""
    return value - (1 << 64) if value >= (1 << 63) else value


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit values (signed or unsigned)."""
    return ((a ^ b) & _MASK64).bit_count()


def record_phash(record: JsonDict) -> str | None:
    image = record.get("image") or {}
    value = image.get("phash") if isinstance(image, dict) else None
    return value if isinstance(value, str) else None


def project(record: JsonDict, fields: list[str] | tuple[str, ...] | None) -> JsonDict:
    """Only the named top-level fields of a record (``id`` always kept); the whole record when None."""
    if fields is None:
        return record
    keep = set(fields) | {"id"}
    return {k: v for k, v in record.items() if k in keep}
