"""The bot's texts and the one choice of language (core/texts.py)."""

from __future__ import annotations

import pytest

from tggate.core.texts import Text, language_of, say


@pytest.mark.parametrize(
    ("code", "language"),
    [(None, "ru"), ("ru", "ru"), ("en", "en"), ("en-GB", "en"), ("EN", "en"), ("de", "ru")],
)
def test_language_of(code: str | None, language: str) -> None:
    assert language_of(code) == language


def test_say_falls_back_to_russian() -> None:
    assert say(Text.NO_SUCH_COMMAND, "de") == say(Text.NO_SUCH_COMMAND, "ru")
