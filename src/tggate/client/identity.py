"""Who the bot is: its username from getMe, asked once per process and retried while Telegram
is away. `/command@name` in a group is this bot's only when `name` is its own (issue 9)."""

from __future__ import annotations

import asyncio
import logging

from .base import InvalidToken, TelegramApi, TelegramFailure
from .retry import Backoff, OutageLog, sleep_or_stop

__all__ = ["learn_bot_username"]

logger = logging.getLogger("tggate.client.identity")


async def learn_bot_username(
    telegram: TelegramApi, stop: asyncio.Event, backoff: Backoff
) -> str | None:
    """getMe until it answers; None if `stop` is set first. A refused token (401) is raised."""
    outage = OutageLog(logger, "asking Telegram who the bot is (getMe)")
    attempt = 0
    while not stop.is_set():
        try:
            username = await telegram.get_username()
        except InvalidToken:
            raise
        except TelegramFailure as error:
            attempt += 1
            outage.failed(str(error))
            await sleep_or_stop(stop, backoff.delay(attempt))
            continue
        outage.succeeded()
        logger.info("Telegram knows this bot as @%s", username)
        return username
    return None
