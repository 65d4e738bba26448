"""The few replies the Telegram Client gives by itself (C5), in Russian and English."""

from __future__ import annotations

from tggate.core.commands import CommandTable, Usage

from .base import Language

__all__ = ["language_of", "logic_error", "no_such_command", "unavailable", "usage"]

_BUILTIN_USAGE = {
    "login": "/login github | yandex | code",
    "logout": "/logout [all]",
}


def language_of(language_code: str | None) -> Language:
    """Russian by default (the seed's texts); English when the person's Telegram is English."""
    return "en" if language_code and language_code.lower().startswith("en") else "ru"


def no_such_command(language: Language) -> str:
    return "No such command" if language == "en" else "Нет такой команды"


def usage(problem: Usage, table: CommandTable, language: Language) -> str:
    spec = table.actions.get(problem.command)
    line = spec.usage(language) if spec else _BUILTIN_USAGE.get(problem.command, "/help")
    return f"Wrong arguments: {line}" if language == "en" else f"Неверные аргументы: {line}"


def logic_error(language: Language) -> str:
    """Bot Logic refused the request for good (a 4xx): not the person's fault, no stack trace."""
    if language == "en":
        return "Something went wrong. Please try again later."
    return "Что-то пошло не так. Попробуйте позже."


def unavailable(language: Language) -> str:
    """Bot Logic has not answered for a while; the command is still being retried."""
    if language == "en":
        return "The service is temporarily unavailable. The answer will come once it is back."
    return "Сервис временно недоступен. Ответ придёт, как только он заработает."
