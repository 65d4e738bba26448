"""Command parsing (C4) and the command table loader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.commands import TABLE

from tggate.core.commands import (
    CommandTableError,
    OtherBot,
    ParsedCommand,
    Usage,
    load_command_table,
    parse_command_table,
    parse_text,
    usage_line,
    validate_args,
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
        # Issue 9, finding 6: an argument's case does not matter, for /logout as for /login.
        ("/logout ALL", ParsedCommand("logout", {"all": "true"})),
        ("/Logout All", ParsedCommand("logout", {"all": "true"})),
        ("/logout ALL=TRUE", ParsedCommand("logout", {"all": "true"})),
        ("/logout all=false", ParsedCommand("logout", {})),
        ("/login GITHUB", ParsedCommand("login", {"type": "github"})),
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


@pytest.mark.parametrize(
    "text",
    [
        "/course",
        "/course ../x",
        "/course a b",
        "/login facebook",
        "/login github yandex",
        # Never a silent local logout for what the person meant otherwise (issue 9).
        "/logout everywhere",
        "/logout all=maybe",
        "/logout all now",
    ],
)
def test_bad_arguments_give_usage(text: str) -> None:
    assert isinstance(parse_text(text, TABLE), Usage)


# A custom table whose argument has the default pattern (any word): issue 9, finding 5.
OPEN_TABLE = parse_command_table(
    """
[[actions]]
command = "tasks"
path = "/api/courses/{course_id}/tasks"
[[actions.args]]
name = "course_id"
"""
)


@pytest.mark.parametrize("value", [".", ".."])
def test_a_dot_segment_is_never_a_path_argument(value: str) -> None:
    assert parse_text(f"/tasks {value}", OPEN_TABLE) == Usage("tasks", "bad course_id")
    assert parse_text(f"/tasks course_id={value}", OPEN_TABLE) == Usage("tasks", "bad course_id")
    assert validate_args("tasks", {"course_id": value}, OPEN_TABLE) == Usage(
        "tasks", "bad course_id"
    )
    # The last guard, where the path is built: such a path is never made.
    with pytest.raises(ValueError, match="dot segment"):
        OPEN_TABLE.actions["tasks"].path_for({"course_id": value})


def test_other_path_arguments_are_quoted_into_one_segment() -> None:
    spec = OPEN_TABLE.actions["tasks"]
    assert parse_text("/tasks ...", OPEN_TABLE) == ParsedCommand("tasks", {"course_id": "..."})
    assert spec.path_for({"course_id": "a/../b"}) == "/api/courses/a%2F..%2Fb/tasks"
    assert spec.path_for({"course_id": "%2e%2e"}) == "/api/courses/%252e%252e/tasks"


def test_a_command_for_another_bot_is_not_ours() -> None:
    """Issue 9, finding 6: `/course@other_bot` in a group is that bot's, not even C5 here."""
    assert parse_text("/course@other_bot py101", TABLE, bot_username="tggate_bot") == OtherBot(
        "other_bot"
    )
    assert parse_text("/nosuch@other_bot", TABLE, bot_username="tggate_bot") == OtherBot(
        "other_bot"
    )
    assert parse_text("/course@TGGATE_BOT py101", TABLE, bot_username="tggate_bot") == (
        ParsedCommand("course", {"course_id": "py101"})
    )
    assert parse_text("/course py101", TABLE, bot_username="tggate_bot") == (
        ParsedCommand("course", {"course_id": "py101"})
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"type": "GITHUB"}, ParsedCommand("login", {"type": "github"})),
        ({"type": "bogus"}, Usage("login", "type=bogus")),
        ({"kind": "code"}, Usage("login", "unknown argument")),
    ],
)
def test_login_arguments_that_arrive_named_follow_the_same_rules(
    args: dict[str, str], expected: ParsedCommand | Usage
) -> None:
    assert validate_args("login", args, TABLE) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"all": "TRUE"}, ParsedCommand("logout", {"all": "true"})),
        ({"all": "false"}, ParsedCommand("logout", {})),
        ({}, ParsedCommand("logout", {})),
        ({"all": "maybe"}, Usage("logout", "all=maybe")),
    ],
)
def test_logout_arguments_that_arrive_named_follow_the_same_rules(
    args: dict[str, str], expected: ParsedCommand | Usage
) -> None:
    assert validate_args("logout", args, TABLE) == expected


def test_every_command_has_a_usage_line() -> None:
    assert usage_line("login", TABLE, "en") == "/login github | yandex | code"
    assert usage_line("logout", TABLE, "en") == "/logout [all]"
    assert usage_line("course", TABLE, "en") == "/course <course_id>"


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
