"""Words from a CTC line recogniser's output: greedy decoding that keeps each character's time step.

PP-OCR's recogniser reads a whole line and emits a probability per character class (class 0 the CTC blank,
the last class the space) at each horizontal step of its input. Greedy decoding keeps the best class per step
and drops blanks and repeats. The recogniser sometimes loses a space that it clearly saw: between two words the
space class rises well above its near-zero level inside a word, yet stays below the blank. So a word break is
either an emitted space or a space probability of at least ``SPACE_PROB`` somewhere between two characters;
a weaker space probability counts when a wide ink-free gap backs it. Pixel gaps alone are not enough (letter
gaps of narrow glyphs such as "1" or of monospaced text look like spaces).
Each character's position is its time step mapped back to the line crop, which places the words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Space-class probability between two characters from which they belong to different words ...
SPACE_PROB = 0.01
#: ... or from which they do when an ink-free column run at least GAP x the crop height separates them.
#: (Measured on the bench corpus: inside words the space class stays below 0.001 and letter gaps below
#: 0.35 x height, but for monospaced punctuation; between words the lowest were ~0.001 and 0.36.)
#: The weak evidence never puts a space before closing punctuation ("amount :" in monospaced text, where ":"
#: sits mid-cell) nor inside a number ("45, 159.81").
WEAK_SPACE_PROB = 0.0008
GAP = 0.35
CLOSING = set(":;,.)]}%!?")


#: Letters the recogniser (trained mostly on Chinese and mixed text) reads in place of digits, and back.
AS_DIGIT = str.maketrans("lIioO", "11100")
AS_LETTER = str.maketrans("01", "ol")
_RUN = re.compile(r"[0-9A-Za-z]+")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff]")


@dataclass(frozen=True)
class Glyph:
    """One decoded character: its text, centre x in the line crop (pixels) and probability."""

    text: str
    x: float
    confidence: float


@dataclass(frozen=True)
class Word:
    """A word of a line: its text, left and right x in the line crop (pixels) and mean probability."""

    text: str
    left: float
    right: float
    confidence: float


def ink_columns(gray: NDArray[Any]) -> NDArray[np.bool_]:
    """Which columns of a grayscale line crop hold ink (dark on light or light on dark); all, if flat."""
    lo, hi = int(gray.min()), int(gray.max())
    if hi - lo < 30:
        return np.ones(gray.shape[1], dtype=bool)
    ink = gray < (lo + hi) / 2
    if ink.mean() > 0.5:  # light text on a dark background: the ink is the bright minority
        ink = ~ink
    cols: NDArray[np.bool_] = ink.any(axis=0)
    return cols


def widest_gap(cols: NDArray[np.bool_], start: float, end: float) -> int:
    """The longest run of ink-free columns between x ``start`` and ``end``."""
    seg = cols[max(0, int(start)) : max(0, int(end))]
    if seg.size == 0 or seg.all():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([1], seg.astype(np.int8), [1]))))
    return int((edges[1::2] - edges[0::2]).max())


def _may_space(before: list[Glyph], after: str) -> bool:
    if after in CLOSING:
        return False
    last = before[-1].text
    return not (last in ",." and after.isdigit() and len(before) > 1 and before[-2].text.isdigit())


def decode(
    probs: NDArray[Any],
    charset: Sequence[str],
    step_px: float,
    cols: NDArray[np.bool_] | None = None,
    height: float = 0.0,
) -> list[list[Glyph]]:
    """Greedy CTC decoding of one line (``probs``: steps x classes) into words of glyphs.

    ``charset[i]`` is class ``i``'s text (0 the blank, a ``" "`` the space); ``step_px`` is the width of one
    step in the line crop's pixels; ``cols`` the crop's ``ink_columns`` and ``height`` its height in pixels
    (without them, only the space class separates words)."""
    best = probs.argmax(axis=1)
    best_p = probs.max(axis=1)
    space = len(charset) - 1
    space_p = probs[:, space]
    words: list[list[Glyph]] = []
    current: list[Glyph] = []
    last_step: int | None = None
    previous = 0
    for step, cls in enumerate(best.tolist()):
        if cls == previous or cls == 0:
            previous = cls
            continue
        previous = cls
        if cls == space or not charset[cls].strip():
            if current:
                words.append(current)
            current, last_step = [], None
            continue
        if current and last_step is not None and step - last_step > 1:
            p = float(space_p[last_step + 1 : step].max())
            wide = (
                cols is not None
                and p >= WEAK_SPACE_PROB
                and _may_space(current, charset[cls])
                and widest_gap(cols, (last_step + 0.5) * step_px, (step + 0.5) * step_px) >= GAP * height
            )
            if p >= SPACE_PROB or wide:
                words.append(current)
                current = []
        current.append(Glyph(charset[cls], (step + 0.5) * step_px, float(best_p[step])))
        last_step = step
    if current:
        words.append(current)
    return words


def _fix_run(match: re.Match[str]) -> str:
    run = match.group(0)
    letters = [c for c in run if c.isalpha()]
    digits = sum(c.isdigit() for c in run)
    if digits and letters and all(c in "lIioO" for c in letters):
        return run.translate(AS_DIGIT)  # "l66" -> "166", "1oo" -> "100"
    lower = sum(c.islower() for c in letters)
    if digits and lower >= 2 and lower == len(letters) and all(c in "01" for c in run if c.isdigit()):
        return run.translate(AS_LETTER)  # "1oss" -> "loss", "am0unt" -> "amount"
    return run


def tidy(text: str, latin: bool) -> str:
    """Undo the recogniser's look-alike confusions inside alphanumeric runs; on Latin lines (``latin``), also
    its full-width punctuation ("，" for ",")."""
    if latin:
        text = "".join(unicodedata.normalize("NFKC", c) if "\uff01" <= c <= "\uff5e" else c for c in text)
    return _RUN.sub(_fix_run, text)


def place(words: list[list[Glyph]], crop_width: float) -> list[Word]:
    """Words with their horizontal extent: half a character pitch beyond their first and last glyphs."""
    xs = [g.x for w in words for g in w]
    steps = [b - a for a, b in zip(xs, xs[1:], strict=False) if b > a]
    half = 0.5 * (float(np.median(steps)) if steps else crop_width / max(1, len(xs)))
    latin = not any(_CJK.search(g.text) for w in words for g in w)
    placed = []
    for w in words:
        placed.append(
            Word(
                tidy("".join(g.text for g in w), latin),
                max(0.0, w[0].x - half),
                min(crop_width, w[-1].x + half),
                float(np.mean([g.confidence for g in w])),
            )
        )
    return placed
