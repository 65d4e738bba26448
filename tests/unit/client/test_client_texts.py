"""The client's own replies (C5)."""

from __future__ import annotations

from tests.support.commands import TABLE

from tggate.client import texts
from tggate.core.commands import Usage


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
