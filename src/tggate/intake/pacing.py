"""Telegram's sending limits shared by every intake replica (docs/contract.md#limits,
docs/webhook.md#limits).

`PacedTelegram` wraps the Bot API port the Telegram Client's `Sender` talks to: each sendMessage
first takes the chat's turn and a permit from the `SendPace` every replica shares, and gives them
back when Telegram answered. The `Sender` keeps its own per-process limits too; with the shared
ones in front they never bind, and everything else it does (splitting, 429s, retries, dropping a
refused keyboard) stays as in polling mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from tggate.client.base import Incoming, RetryLater, TelegramApi, Unavailable
from tggate.core.replies import Keyboard

from .base import QueueUnavailable, SendPace, Ticket

__all__ = ["PacedTelegram"]

logger = logging.getLogger("tggate.intake.pacing")


class PacedTelegram:
    """A `TelegramApi` whose messages keep the limits of a `SendPace`."""

    def __init__(self, telegram: TelegramApi, pace: SendPace) -> None:
        self._telegram = telegram
        self._pace = pace

    async def send_message(
        self, *, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False
    ) -> None:
        try:
            ticket = await self._pace.reserve(chat_id)
        except QueueUnavailable as error:
            # Not sent, and worth trying again: the Sender retries it with back-off.
            raise Unavailable(f"sending limits: {error}") from None
        hold: float | None = None
        try:
            await self._telegram.send_message(
                chat_id=chat_id, text=text, buttons=buttons, paid=paid
            )
        except RetryLater as error:
            hold = error.retry_after  # for every replica, not only the Sender that got the 429
            raise
        finally:
            # Shielded: a cancelled send must still give the turn back (or it lapses by itself).
            await asyncio.shield(self._settle(ticket, hold))

    async def _settle(self, ticket: Ticket, hold: float | None) -> None:
        try:
            await self._pace.settle(ticket, hold_chat_s=hold)
        except QueueUnavailable as error:
            # The message went (or failed) already; the turn and the permit lapse by themselves.
            logger.warning("could not give back a sending turn: %s", error)

    async def get_username(self) -> str:
        return await self._telegram.get_username()

    async def answer_callback(self, *, callback_id: str) -> None:
        await self._telegram.answer_callback(callback_id=callback_id)

    async def set_commands(
        self, commands: Sequence[tuple[str, str]], *, language: str | None
    ) -> None:
        await self._telegram.set_commands(commands, language=language)

    async def get_updates(
        self, *, offset: int | None, long_poll_s: int, limit: int
    ) -> Sequence[Incoming]:
        return await self._telegram.get_updates(offset=offset, long_poll_s=long_poll_s, limit=limit)
