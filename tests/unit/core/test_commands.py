"""Command parsing (C4) and the command table loader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.commands import TABLE

from tggate.core.commands import (
    CommandTableError,
    ParsedCommand,
    Usage,
    load_command_table,
    parse_command_table,
    parse_text,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/login", ParsedCommand("login", {})),
        ("/login github", ParsedCommand("login", {"type": "github"})),
        ("/login type=yandex", ParsedCommand("login", {"type": "yandex"})),
        ("/LOGIN@tggate_bot Code", ParsedCommand("login", {"type": "code"})),
        ("/logout", ParsedCommand("logout", {})),
        ("/logout all", ParsedCommand("logout", {"all": "true"})),
        ("/logout all=true", ParsedCommand("logout", {"all": "true"})),
        ("/course py101", ParsedCommand("course", {"course_id": "py101"})),
        ("/course course_id=py101", ParsedCommand("course", {"course_id": "py101"})),
        ("/start", ParsedCommand("start", {})),
    ],
)
def test_known_commands_parse(text: str, expected: ParsedCommand) -> None:
    assert parse_text(text, TABLE) == expected


@pytest.mark.parametrize("text", ["hello", "/nosuch", "", "/", "/Привет", "login github"])
def test_C5_not_a_known_command(text: str) -> None:
    assert parse_text(text, TABLE) is None


@pytest.mark.parametrize("text", ["/course", "/course ../x", "/course a b", "/login facebook"])
def test_bad_arguments_give_usage(text: str) -> None:
    assert isinstance(parse_text(text, TABLE), Usage)


@given(st.text(max_size=300))
def test_parsing_never_raises(text: str) -> None:
    parse_text(text, TABLE)


def test_bundled_table_loads() -> None:
    table = load_command_table()
    assert table.actions, "the bundled table declares actions"


def test_bad_table_names_the_problem() -> None:
    with pytest.raises(CommandTableError, match="path"):
        parse_command_table('[[actions]]\ncommand = "x"\npath = "nope"\n')
    with pytest.raises(CommandTableError, match="not an argument"):
        parse_command_table('[[actions]]\ncommand = "x"\npath = "/a/{id}"\n')
