"""The command menu (docs/scenarios.md#commands: setMyCommands)."""

from __future__ import annotations

from tests.support.commands import TABLE
from tests.unit.client.fakes import FakeTelegram

from tggate.client.menu import menu_commands, publish_menu


def test_menu_lists_builtins_then_actions() -> None:
    ru = menu_commands(TABLE, "ru")
    assert [name for name, _ in ru] == ["start", "help", "login", "logout", "me", "course"]
    assert dict(ru)["course"] == "Курс"
    assert dict(menu_commands(TABLE, "en"))["course"] == "Course"


async def test_publish_sets_default_russian_and_english() -> None:
    telegram = FakeTelegram()
    await publish_menu(telegram, TABLE)
    assert [language for language, _ in telegram.menus] == [None, "ru", "en"]
    assert telegram.menus[0][1] == telegram.menus[1][1] == menu_commands(TABLE, "ru")
    assert telegram.menus[2][1] == menu_commands(TABLE, "en")
