"""Every text the bot says, in Russian (the seed's wording) and English."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

__all__ = ["Language", "Text", "language_of", "say"]

Language = Literal["ru", "en"]


class Text(StrEnum):
    NO_SUCH_COMMAND = "no_such_command"
    NOT_LOGGED_IN = "not_logged_in"
    LOGIN_OFFER = "login_offer"
    LOGIN_FAILED = "login_failed"
    LOGIN_NOT_FINISHED = "login_not_finished"
    LOGGED_IN = "logged_in"
    ALREADY_LOGGED_IN = "already_logged_in"
    SESSION_ENDED = "session_ended"
    SESSION_ENDED_EVERYWHERE = "session_ended_everywhere"
    SESSION_LOST = "session_lost"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    ACTION_FAILED = "action_failed"
    USAGE = "usage"
    HELP = "help"
    HELP_COMMANDS = "help_commands"
    NOTIFICATION = "notification"
    BUTTON_CODE = "button_code"
    BUTTON_OPEN = "button_open"
    WRONG_ARGUMENTS = "wrong_arguments"
    SOMETHING_WENT_WRONG = "something_went_wrong"
    STILL_TRYING = "still_trying"


_TEXTS: Mapping[Text, Mapping[str, str]] = {
    Text.NO_SUCH_COMMAND: {"ru": "Нет такой команды", "en": "No such command"},
    Text.NOT_LOGGED_IN: {"ru": "Вы не залогинены.", "en": "You are not logged in."},
    Text.LOGIN_OFFER: {
        "ru": "Войдите через GitHub, Яндекс ID или по коду:",
        "en": "Log in with GitHub, Yandex ID or a one-time code:",
    },
    Text.LOGIN_FAILED: {"ru": "Неудачная авторизация.", "en": "Login failed."},
    Text.LOGIN_NOT_FINISHED: {
        "ru": "Вход ещё не завершён.",
        "en": "Your login is not finished yet.",
    },
    Text.LOGGED_IN: {"ru": "Успешная авторизация.", "en": "You are logged in."},
    Text.ALREADY_LOGGED_IN: {"ru": "Вы уже авторизованы.", "en": "You are already logged in."},
    Text.SESSION_ENDED: {"ru": "Сеанс завершён.", "en": "Session ended."},
    Text.SESSION_ENDED_EVERYWHERE: {
        "ru": "Сеанс завершён на всех устройствах.",
        "en": "Session ended on all devices.",
    },
    Text.SESSION_LOST: {
        "ru": "Не удалось восстановить ваш сеанс, войдите снова.",
        "en": "Your session could not be restored, please log in again.",
    },
    Text.FORBIDDEN: {
        "ru": "Недостаточно прав для этого действия.",
        "en": "Not enough rights for this action.",
    },
    Text.NOT_FOUND: {"ru": "Не найдено.", "en": "Not found."},
    Text.UNAVAILABLE: {
        "ru": "Сервис временно недоступен, попробуйте позже.",
        "en": "The service is temporarily unavailable, please try again later.",
    },
    Text.ACTION_FAILED: {
        "ru": "Не удалось выполнить действие.",
        "en": "The action could not be completed.",
    },
    Text.USAGE: {"ru": "Использование: {usage}", "en": "Usage: {usage}"},
    Text.HELP: {
        "ru": "Я — вход в систему через Telegram: войдите, и я выполню ваши команды "
        "и пришлю уведомления.",
        "en": "I am the system's front door in Telegram: log in, and I will run your "
        "commands and send you notifications.",
    },
    Text.HELP_COMMANDS: {"ru": "Команды:", "en": "Commands:"},
    Text.NOTIFICATION: {"ru": "🔔 {text}", "en": "🔔 {text}"},
    Text.BUTTON_CODE: {"ru": "По коду", "en": "One-time code"},
    Text.BUTTON_OPEN: {"ru": "Открыть страницу входа", "en": "Open the login page"},
    # Said by the Telegram Client itself:
    Text.WRONG_ARGUMENTS: {"ru": "Неверные аргументы: {usage}", "en": "Wrong arguments: {usage}"},
    Text.SOMETHING_WENT_WRONG: {
        "ru": "Что-то пошло не так. Попробуйте позже.",
        "en": "Something went wrong. Please try again later.",
    },
    Text.STILL_TRYING: {
        "ru": "Сервис временно недоступен. Ответ придёт, как только он заработает.",
        "en": "The service is temporarily unavailable. The answer will come once it is back.",
    },
}


def language_of(code: str | None) -> Language:
    """Telegram's `language_code` → the language we answer in: English or Russian, the default
    (the seed's texts)."""
    return "en" if code and code.lower().startswith("en") else "ru"


def say(key: Text, language: str, /, **values: str) -> str:
    template = _TEXTS[key]["en" if language == "en" else "ru"]
    return template.format(**values) if values else template
