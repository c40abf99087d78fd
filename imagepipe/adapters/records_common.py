"""Helpers shared by the record stores: blob-version ordering, timestamps, continuation tokens, pHash bands,
text-search words.

Both stores (SQLite and Cosmos DB) decide "is this write older than what is stored?" with
``is_older_version`` so they agree on the rule from docs/contracts.md: compare ``blob.lastModified`` first
and, when equal, the ETag. They normalise stored timestamps and time filters to UTC the same way
(``normalize_timestamps``, ``filter_bounds``), band perceptual hashes the same way (``phash_bands``,
``probe_bands``) and split search text into the same words (``search_words``); docs/records.md explains why.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import combinations
from typing import Any

from imagepipe.errors import InvalidInputError
from imagepipe.phash import phash_to_int
from imagepipe.timeutil import iso, parse_time

JsonDict = dict[str, Any]

MAX_LIMIT = 1000


# ---------------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------------


def sortable_ts(value: Any) -> str:
    """A fixed-width UTC string (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) that sorts like the instant; '' if unknown."""
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if parsed else ""


#: The record fields holding timestamps (dotted paths), normalised on every write.
TIMESTAMP_FIELDS = ("createdAt", "updatedAt", "blob.lastModified")


def normalize_timestamps(record: JsonDict) -> JsonDict:
    """A copy of ``record`` whose timestamps are in the records' form (UTC, milliseconds, ``Z``).

    Offsets such as ``+02:00`` become ``Z`` and fractions are cut to milliseconds, so string order equals
    instant order (Cosmos DB compares them as strings). A value that does not parse is kept as it is.
    """
    out = dict(record)
    for name in ("createdAt", "updatedAt"):
        parsed = parse_time(out.get(name))
        if parsed is not None:
            out[name] = iso(parsed)
    blob = out.get("blob")
    if isinstance(blob, dict):
        parsed = parse_time(blob.get("lastModified"))
        if parsed is not None:
            out["blob"] = {**blob, "lastModified": iso(parsed)}
    return out


def filter_bounds(created_from: Any, created_to: Any) -> tuple[str | None, str | None]:
    """Inclusive ``createdAt`` bounds in the records' form, from datetimes with any UTC offset.

    Stored timestamps have millisecond resolution, so the lower bound rounds up and the upper bound rounds
    down to a whole millisecond: ``from=…00.0005`` excludes a record at ``…00.000``.
    """

    def bound(value: Any, *, up: bool) -> str | None:
        if value is None:
            return None
        parsed = parse_time(value)
        if parsed is None:
            raise InvalidInputError("created_from/created_to must be ISO-8601 times", code="invalid_time")
        extra = parsed.microsecond % 1000
        if up and extra:
            parsed += timedelta(microseconds=1000 - extra)
        return iso(parsed - timedelta(microseconds=parsed.microsecond % 1000))

    return bound(created_from, up=True), bound(created_to, up=False)


# ---------------------------------------------------------------------------------------------------
# Blob versions
# ---------------------------------------------------------------------------------------------------


def blob_version(record: JsonDict) -> tuple[datetime | None, str]:
    """``(blob.lastModified, blob.etag)`` of a record (either may be missing)."""
    blob = record.get("blob") or {}
    if not isinstance(blob, dict):
        return None, ""
    etag = blob.get("etag")
    return parse_time(blob.get("lastModified")), (etag.strip('"') if isinstance(etag, str) else "")


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


def to_signed64(value: int) -> int:
    """An unsigned 64-bit value as SQLite's signed INTEGER."""
    return value - (1 << 64) if value >= (1 << 63) else value


def record_phash(record: JsonDict) -> str | None:
    image = record.get("image") or {}
    value = image.get("phash") if isinstance(image, dict) else None
    return value if isinstance(value, str) else None


#: Multi-index hashing: the 64-bit pHash is cut into two 32-bit halves (``h0`` = high, ``h1`` = low).
PHASH_HALVES = 2
HALF_BITS = 64 // PHASH_HALVES
_HALF_MASK = (1 << HALF_BITS) - 1
_MASK64 = (1 << 64) - 1
#: Write-side radius: each record stores, per half, the key of the half and of every value this many bits
#: away (1 + 32 = 33 keys per half, 66 in all), whatever the lookup distance.
WRITE_RADIUS = 1
#: The keys one record stores (``phash_bands``).
KEYS_PER_RECORD = PHASH_HALVES * (1 + HALF_BITS)
#: The most keys one lookup probes; beyond it (max distance >= 10: 82,898 keys) the stores scan instead.
#: Distance 8-9 probes 10,978 keys, 6-7 probes 1,058, 0-5 at most 66.
MAX_PROBES = 12_000


def band_key(half: int, value: int) -> str:
    """The exact-match key of one 32-bit half value: ``h<half>:<8 hex digits>`` (Cosmos DB ``phashBands``)."""
    return f"h{half}:{value:08x}"


def band_int(half: int, value: int) -> int:
    """The same key as an integer, ``half << 32 | value`` (SQLite ``record_phash_keys.key``)."""
    return (half << HALF_BITS) | value


def _halves(value: int) -> tuple[int, ...]:
    return tuple((value >> (HALF_BITS * (PHASH_HALVES - 1 - i))) & _HALF_MASK for i in range(PHASH_HALVES))


@lru_cache(maxsize=8)
def _masks(radius: int) -> tuple[int, ...]:
    """Every 32-bit XOR mask with at most ``radius`` bits set, fewest bits first."""
    return tuple(sum(1 << b for b in bits) for r in range(radius + 1) for bits in combinations(range(HALF_BITS), r))


#: The XOR masks of the write side (0 and the 32 single bits): a record stores ``half ^ m`` for each.
WRITE_MASKS = list(_masks(WRITE_RADIUS))


def probe_radius(max_distance: int) -> int:
    """Bits flipped per half on the query side: ``max(0, floor(d / 2) - WRITE_RADIUS)``."""
    return max(0, max(0, max_distance) // PHASH_HALVES - WRITE_RADIUS)


def phash_key_ints(value: int) -> list[int]:
    """The keys stored with a record whose pHash is ``value`` (signed or unsigned), as integers: the same
    keys as ``phash_bands``."""
    value &= _MASK64
    masks = _masks(WRITE_RADIUS)
    high, low = band_int(0, value >> HALF_BITS), band_int(1, value & _HALF_MASK)
    return [high ^ m for m in masks] + [low ^ m for m in masks]


def phash_bands(phash: Any) -> list[str]:
    """The keys stored with a record (``phashBands``): per 32-bit half, the half itself and every value one
    bit away (66 keys, ``h0:…`` then ``h1:…``); [] without a valid pHash."""
    value = phash_to_int(phash)
    if value is None:
        return []
    masks = _masks(WRITE_RADIUS)
    return [band_key(i, half ^ m) for i, half in enumerate(_halves(value)) for m in masks]


def probe_key_ints(phash: int, max_distance: int) -> list[int] | None:
    """The keys a lookup within ``max_distance`` bits probes, as integers; None when a scan is cheaper.

    Pigeonhole: two hashes within distance d differ in at most ``d // 2`` bits in one of the two halves.
    A record whose half differs from the target's in k <= d // 2 bits stores (write side) that half with
    any one of those k bits flipped, which lies within k - 1 bits of the target's half: so probing every
    value within ``probe_radius(d) = max(0, d // 2 - 1)`` bits of each target half finds it (k = 0: the
    exact key). d <= 3: 2 keys; d <= 5: 66; d <= 7: 1,058; d <= 9: 10,978; beyond: None (``MAX_PROBES``).
    """
    masks = _masks_for(max_distance)
    if masks is None:
        return None
    return [band_int(i, half ^ m) for i, half in enumerate(_halves(phash & _MASK64)) for m in masks]


def probe_bands(phash: int, max_distance: int) -> list[str] | None:
    """The same probe keys as ``probe_key_ints``, in the stored string form (``h0:…``/``h1:…``)."""
    masks = _masks_for(max_distance)
    if masks is None:
        return None
    return [band_key(i, half ^ m) for i, half in enumerate(_halves(phash & _MASK64)) for m in masks]


def probe_count(max_distance: int) -> int:
    """How many keys a lookup within ``max_distance`` bits probes (it may exceed ``MAX_PROBES``)."""
    radius = probe_radius(max_distance)
    return PHASH_HALVES * sum(_comb(HALF_BITS, r) for r in range(radius + 1))


def _masks_for(max_distance: int) -> tuple[int, ...] | None:
    if probe_count(max_distance) > MAX_PROBES:
        return None
    return _masks(probe_radius(max_distance))


def _comb(n: int, k: int) -> int:
    out = 1
    for i in range(k):
        out = out * (n - i) // (i + 1)
    return out


# ---------------------------------------------------------------------------------------------------
# Text search
# ---------------------------------------------------------------------------------------------------

#: A word: a run of letters and digits (Unicode); everything else separates words.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: The most words one text query may hold.
MAX_SEARCH_WORDS = 16


def search_words(text: str) -> list[str]:
    """The distinct lower-case words of a text query, in order; every one must occur in a matching record."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    if len(words) > MAX_SEARCH_WORDS:
        raise InvalidInputError(f"text search takes at most {MAX_SEARCH_WORDS} words", code="invalid_text")
    return words


def project(record: JsonDict, fields: list[str] | tuple[str, ...] | None) -> JsonDict:
    """Only the named top-level fields of a record (``id`` always kept); the whole record when None."""
    if fields is None:
        return record
    keep = set(fields) | {"id"}
    return {k: v for k, v in record.items() if k in keep}
