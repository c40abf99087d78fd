"""Word rebuilding from CTC output (``imagepipe.vision.ocr_words``) on hand-made probability tables."""

from __future__ import annotations

import numpy as np
import pytest

from imagepipe.vision.ocr_words import decode, ink_columns, place, tidy

CHARSET = ["blank", "a", "b", "c", "1", "0", "l", "o", " "]


def _probs(steps: list[tuple[str, float]]) -> np.ndarray:
    """One row per step: the named class gets most of the mass; ``space`` is the space class's share."""
    table = np.zeros((len(steps), len(CHARSET)), dtype=np.float32)
    for row, (name, space) in enumerate(steps):
        table[row, CHARSET.index(name)] = 1.0 - space
        table[row, -1] += space
    return table


def _texts(words: list) -> list[str]:
    return ["".join(g.text for g in w) for w in words]


def test_a_weak_space_between_characters_splits_words() -> None:
    probs = _probs([("a", 0), ("blank", 0), ("blank", 0.03), ("b", 0), ("blank", 0.0001), ("c", 0)])
    assert _texts(decode(probs, CHARSET, 8.0)) == ["a", "bc"]


def test_a_faint_space_needs_a_wide_ink_gap() -> None:
    probs = _probs([("a", 0), ("blank", 0.002), ("b", 0)])
    narrow = np.array([True] * 10 + [False] * 2 + [True] * 12)
    wide = np.array([True] * 6 + [False] * 12 + [True] * 6)
    assert _texts(decode(probs, CHARSET, 8.0, narrow, 24)) == ["ab"]
    assert _texts(decode(probs, CHARSET, 8.0, wide, 24)) == ["a", "b"]


def test_no_weak_space_before_closing_punctuation_or_inside_numbers() -> None:
    charset = ["blank", "a", "1", ":", ",", " "]
    blank = np.zeros(40, dtype=bool)  # every gap between characters is wide
    for text, words in (("a:", ["a:"]), ("1,1", ["1,1"]), ("a,1", ["a,", "1"])):
        steps = []
        for ch in text:
            steps += [(ch, 0.0), ("blank", 0.002)]
        table = np.zeros((len(steps), len(charset)), dtype=np.float32)
        for row, (name, space) in enumerate(steps):
            table[row, charset.index(name)] = 1.0 - space
            table[row, -1] = space
        assert _texts(decode(table, charset, 6.0, blank, 24)) == words, text


def test_emitted_spaces_and_repeats() -> None:
    probs = _probs([("a", 0), ("a", 0), (" ", 0), ("b", 0), ("blank", 0), ("b", 0)])
    assert _texts(decode(probs, CHARSET, 8.0)) == ["a", "bb"]


def test_words_are_placed_in_order_inside_the_crop() -> None:
    probs = _probs([("a", 0), ("b", 0), (" ", 0), ("c", 0), ("a", 0)])
    words = place(decode(probs, CHARSET, 10.0), 50.0)
    assert [w.text for w in words] == ["ab", "ca"]
    assert 0 <= words[0].left < words[0].right <= words[1].left < words[1].right <= 50


def test_ink_columns_of_light_text_on_dark() -> None:
    gray = np.full((10, 6), 20, dtype=np.uint8)
    gray[2:8, 1] = 230
    assert ink_columns(gray).tolist() == [False, True, False, False, False, False]


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [("l66", "166"), ("1oo", "100"), ("8364o", "83640"), ("1oss", "loss"), ("am0unt", "amount"), ("B10", "B10")],
)
def test_look_alike_letters_and_digits(raw: str, fixed: str) -> None:
    assert tidy(raw, latin=True) == fixed


def test_full_width_punctuation_only_on_latin_lines() -> None:
    assert tidy("Kowalski\uff0c", latin=True) == "Kowalski,"
    assert tidy("\u4f60\u597d\uff0c", latin=False) == "\u4f60\u597d\uff0c"
