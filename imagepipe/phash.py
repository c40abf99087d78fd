"""Perceptual-hash arithmetic, defined once: a 64-bit hash as 16 hex digits, and the Hamming distance.

The record stores (near-duplicate lookups), the local analyzer (its ``imagepipe.phash`` extra) and the tests
compare hashes with these functions; ``imagefacts.inspect_image`` makes the record's hash (equal to ``difference_hash``
of the same bytes).
"""

from __future__ import annotations

from typing import Any

_MASK64 = (1 << 64) - 1


def phash_to_int(phash: Any) -> int | None:
    """A 64-bit perceptual hash given as 16 hex digits, as an unsigned int; None when malformed."""
    if not isinstance(phash, str) or len(phash) != 16:
        return None
    try:
        return int(phash, 16)
    except ValueError:
        return None


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit values (signed or unsigned)."""
    return ((a ^ b) & _MASK64).bit_count()


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two 16-hex perceptual hashes (0 = same picture, > ~20 = unrelated)."""
    left, right = phash_to_int(a), phash_to_int(b)
    if left is None or right is None:
        raise ValueError("a perceptual hash is 16 hex digits")
    return hamming(left, right)
