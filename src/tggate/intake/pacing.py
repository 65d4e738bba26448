"""Telegram's sending limits shared by every intake replica (docs/contract.md#limits,
docs/webhook.md#limits).

`PacedTelegram` wraps the Bot API port the Telegram Client's `Sender` talks to: each sendMessage
first takes the chat's turn (a group's place in its minute) and a permit from the `SendPace` every
replica shares, and gives them back when Telegram answered. The pace decides which messages go as
paid broadcasts (those beyond the free rate of all replicas together), so the `Sender` here never
pays by itself; a paid broadcast Telegram refuses goes again within the free rate. The `Sender`
keeps its own per-process limits too; with the shared ones in front they never bind, and
everything else it does (splitting, 429s, retries, dropping a refused keyboard) stays as in
polling mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from tggate.client.base import Incoming, Rejected, RetryLater, TelegramApi, Unavailable
from tggate.client.retry import OutageLog
from tggate.core.replies import Keyboard

from .base import QueueUnavailable, SendPace, Ticket

__all__ = ["PacedTelegram"]

logger = logging.getLogger("tggate.intake.pacing")


class _PaidRefused(Exception):
    def __init__(self, error: Rejected) -> None:
        self.error = error


class PacedTelegram:
    """A `TelegramApi` whose messages keep the limits of a `SendPace`."""

    def __init__(self, telegram: TelegramApi, pace: SendPace) -> None:
        self._telegram = telegram
        self._pace = pace
        self._paid_refused = OutageLog(logger, "sending paid broadcasts")

    async def send_message(
        self, *, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False
    ) -> None:
        """`paid` is the pace's to decide here: the caller's is ignored."""
        try:
            await self._send(chat_id, text, buttons, may_pay=True)
        except _PaidRefused as refused:
            # Not allowed to pay (too few Stars, say): this one waits for the free rate.
            self._paid_refused.failed(str(refused.error))
            await self._send(chat_id, text, buttons, may_pay=False)

    async def _send(self, chat_id: int, text: str, buttons: Keyboard, *, may_pay: bool) -> None:
        try:
            ticket = await self._pace.reserve(chat_id, may_pay=may_pay)
        except QueueUnavailable as error:
            # Not sent, and worth trying again: the Sender retries it with back-off.
            raise Unavailable(f"sending limits: {error}") from None
        hold: float | None = None
        try:
            await self._telegram.send_message(
                chat_id=chat_id, text=text, buttons=buttons, paid=ticket.paid
            )
        except RetryLater as error:
            hold = error.retry_after  # for every replica, not only the Sender that got the 429
            raise
        except Rejected as error:
            if ticket.paid:
                raise _PaidRefused(error) from None
            raise
        finally:
            # Shielded: a cancelled send must still give the turn back (or it lapses by itself).
            await asyncio.shield(self._settle(ticket, hold))
        if ticket.paid:
            self._paid_refused.succeeded()

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
