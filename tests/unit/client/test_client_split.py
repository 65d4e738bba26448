"""Splitting texts over 4096 characters (docs/contract.md#limits)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tggate.client.split import MAX_MESSAGE, split_text, utf16_len


def test_short_text_is_one_piece() -> None:
    assert split_text("hello") == ["hello"]


def test_blank_text_is_no_piece() -> None:
    assert split_text("  \n ") == []


def test_cut_at_a_line_break() -> None:
    lines = [f"line {i:04d} " + "x" * 90 for i in range(100)]
    pieces = split_text("\n".join(lines))
    assert len(pieces) > 1
    assert all(utf16_len(p) <= MAX_MESSAGE for p in pieces)
    # Every line survives whole, in order.
    assert "\n".join(pieces).split("\n") == lines


def test_a_line_longer_than_the_limit_is_cut_at_a_space_or_anywhere() -> None:
    words = " ".join(["word"] * 2000)
    pieces = split_text(words)
    assert all(utf16_len(p) <= MAX_MESSAGE for p in pieces)
    assert " ".join(pieces) == words
    solid = "y" * 10_000
    assert split_text(solid) == ["y" * 4096, "y" * 4096, "y" * 1808]


def test_emoji_count_twice() -> None:
    text = "😀" * 3000  # 6000 UTF-16 code units
    pieces = split_text(text)
    assert [len(p) for p in pieces] == [2048, 952]


@given(st.text(alphabet=st.sampled_from("ab \n😀й"), max_size=400), st.integers(2, 50))
def test_pieces_fit_and_keep_every_visible_character(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(utf16_len(p) <= limit and p.strip() for p in pieces)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", text)
