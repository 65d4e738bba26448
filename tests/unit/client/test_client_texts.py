"""The client's own replies (C5) and the language choice."""

from __future__ import annotations

import pytest
from tests.unit.client.fakes import TABLE

from tggate.client import texts
from tggate.core.commands import Usage


@pytest.mark.parametrize(
    ("code", "language"),
    [(None, "ru"), ("ru", "ru"), ("en", "en"), ("en-GB", "en"), ("EN", "en"), ("de", "ru")],
)
def test_language_of(code: str | None, language: str) -> None:
    assert texts.language_of(code) == language


def test_C5_no_such_command() -> None:
    assert texts.no_such_command("ru") == "Нет такой команды"
    assert texts.no_such_command("en") == "No such command"


def test_usage_names_the_command_and_its_arguments() -> None:
    assert texts.usage(Usage("course", "missing"), TABLE, "ru") == (
        "Неверные аргументы: /course <course_id>"
    )
    assert texts.usage(Usage("login", "type=x"), TABLE, "en") == (
        "Wrong arguments: /login github | yandex | code"
    )
