"""The few replies the Telegram Client gives by itself (C5); the words live in core/texts.py."""

from __future__ import annotations

from tggate.core.commands import CommandTable, Usage, usage_line
from tggate.core.texts import Language, Text, say

__all__ = ["logic_error", "no_such_command", "unavailable", "usage"]


def no_such_command(language: Language) -> str:
    return say(Text.NO_SUCH_COMMAND, language)


def usage(problem: Usage, table: CommandTable, language: Language) -> str:
    line = usage_line(problem.command, table, language)
    return say(Text.WRONG_ARGUMENTS, language, usage=line)


def logic_error(language: Language) -> str:
    """Bot Logic refused the request for good (a 4xx): not the person's fault, no stack trace."""
    return say(Text.SOMETHING_WENT_WRONG, language)


def unavailable(language: Language) -> str:
    """Bot Logic has not answered for a while; the command is still being retried."""
    return say(Text.STILL_TRYING, language)
