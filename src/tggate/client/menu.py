"""The bot's command menu (docs/scenarios.md#commands: setMyCommands): Russian by default,
English for "en"."""

from __future__ import annotations

import asyncio
import logging

from tggate.core.commands import BUILTIN_COMMANDS, CommandTable
from tggate.core.texts import Language

from .base import TelegramApi, TelegramFailure
from .retry import Backoff, OutageLog, sleep_or_stop

__all__ = ["menu_commands", "publish_menu", "publish_menu_until"]

logger = logging.getLogger("tggate.client.menu")

MAX_COMMANDS = 100  # Bot API limits for setMyCommands
MAX_DESCRIPTION = 256


def _description(text: str, command: str) -> str:
    text = " ".join(text.split()) or command
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def menu_commands(table: CommandTable, language: Language) -> list[tuple[str, str]]:
    """(command, description) pairs: the built-ins first, then the action table's commands."""
    pairs = [
        (name, _description(text.get(language), name)) for name, text in BUILTIN_COMMANDS.items()
    ]
    pairs += [
        (name, _description(spec.description.get(language), name))
        for name, spec in table.actions.items()
    ]
    if len(pairs) > MAX_COMMANDS:
        logger.warning("the menu shows only the first %d of %d commands", MAX_COMMANDS, len(pairs))
    return pairs[:MAX_COMMANDS]


async def publish_menu(telegram: TelegramApi, table: CommandTable) -> None:
    """setMyCommands for the default (Russian), "ru" and "en"; raises `TelegramFailure`."""
    await telegram.set_commands(menu_commands(table, "ru"), language=None)
    await telegram.set_commands(menu_commands(table, "ru"), language="ru")
    await telegram.set_commands(menu_commands(table, "en"), language="en")


async def publish_menu_until(
    telegram: TelegramApi, table: CommandTable, stop: asyncio.Event, backoff: Backoff
) -> bool:
    """`publish_menu`, retried with back-off while Telegram refuses or is away, until `stop`;
    True once published."""
    outage = OutageLog(logger, "publishing the command menu (setMyCommands)")
    attempt = 0
    while not stop.is_set():
        try:
            await publish_menu(telegram, table)
        except TelegramFailure as error:
            attempt += 1
            outage.failed(str(error))
            await sleep_or_stop(stop, backoff.delay(attempt))
            continue
        outage.succeeded()
        logger.info("command menu published")
        return True
    return False
