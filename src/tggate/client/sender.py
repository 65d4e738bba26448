"""Sending messages within Telegram's limits (docs/contract.md#limits).

One chat's messages leave strictly one after another (a lock per chat); different chats go in
parallel under the global rate. A 429 pauses only the chat it names; other chats keep going.
With paid broadcasts on (`paid_per_s`), a message that finds the free rate used up goes with
allow_paid_broadcast instead of waiting (Telegram charges for those only); one that Telegram
refuses as a paid broadcast is sent again within the free rate, so the setting never costs a
message.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from tggate.core.replies import Button, Keyboard, Reply

from .base import Rejected, RetryLater, TelegramApi, Unavailable
from .metrics import ClientMetrics
from .ratelimit import GlobalPermits, SendLimiter
from .retry import Backoff, OutageLog
from .split import MAX_MESSAGE, split_text

__all__ = ["Delivery", "Sender", "usable_keyboard"]

logger = logging.getLogger("tggate.client.sender")

MAX_CALLBACK_DATA = 64  # bytes of UTF-8, the Bot API's limit for callback_data


class Delivery(enum.Enum):
    SENT = "sent"
    REJECTED = "rejected"  # Telegram refused it for good (bad request, bot blocked, no chat)
    GAVE_UP = "gave_up"  # still failing after the allowed attempts; worth trying later


def usable_keyboard(buttons: Keyboard) -> Keyboard:
    """Drop buttons Telegram would refuse (callback data over 64 bytes, neither a URL nor a
    command) and rows left empty."""
    rows: list[tuple[Button, ...]] = []
    for row in buttons:
        kept = []
        for button in row:
            if button.url is None and (
                not button.command or len(button.command.encode()) > MAX_CALLBACK_DATA
            ):
                logger.warning("dropping a button without a URL or a command of up to 64 bytes")
                continue
            kept.append(button)
        if kept:
            rows.append(tuple(kept))
    return tuple(rows)


class _ChatLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class Sender:
    def __init__(
        self,
        telegram: TelegramApi,
        *,
        global_per_s: float,
        per_chat_interval_s: float,
        paid_per_s: float = 0.0,
        group_per_minute: int = 20,
        backoff: Backoff | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: ClientMetrics | None = None,
    ) -> None:
        """`global_per_s`: the free rate overall; `paid_per_s`: the rate with paid broadcasts
        (0, or not above the free rate: none are sent)."""
        self._telegram = telegram
        self._metrics = metrics or ClientMetrics()
        self._limits = SendLimiter(
            global_per_s=max(global_per_s, paid_per_s),
            per_chat_interval_s=per_chat_interval_s,
            group_per_minute=group_per_minute,
        )
        self._permits = GlobalPermits(free_per_s=global_per_s, paid_per_s=paid_per_s)
        self._backoff = backoff or Backoff()
        self._monotonic = monotonic
        self._sleep = sleep
        self._chats: dict[int, _ChatLock] = {}
        self._outage = OutageLog(logger, "sending to Telegram")
        self._paid_refused = OutageLog(logger, "sending paid broadcasts")

    async def wait_turn(self, chat_id: int) -> None:
        """Until the chat may get its next message (its interval, a group's minute, a 429
        pause), for callers that should not hold anything meanwhile (the timers)."""
        while (wait := self._limits.chat_wait(chat_id, self._monotonic())) > 0:
            await self._sleep(wait)

    async def send(self, chat_id: int, reply: Reply, *, attempts: int | None = None) -> Delivery:
        """Send the reply to the chat: its text split if long, the buttons with the last piece.

        Network errors and 5xx are retried with back-off, forever or `attempts` times per piece.
        """
        pieces = split_text(reply.text, MAX_MESSAGE)
        if not pieces:
            logger.warning("not sending an empty message to chat %s", chat_id)
            return Delivery.REJECTED
        keyboard = usable_keyboard(reply.buttons)
        slot = self._chats.setdefault(chat_id, _ChatLock())
        slot.users += 1
        try:
            async with slot.lock:
                for index, piece in enumerate(pieces):
                    last = index == len(pieces) - 1
                    result = await self._send_piece(
                        chat_id, piece, keyboard if last else (), attempts
                    )
                    if result is not Delivery.SENT:
                        return result
                return Delivery.SENT
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._chats[chat_id]

    async def _send_piece(
        self, chat_id: int, text: str, keyboard: Keyboard, attempts: int | None
    ) -> Delivery:
        failures = 0
        may_pay = True
        while True:
            wait = self._limits.chat_wait(chat_id, self._monotonic())
            if wait > 0:
                await self._sleep(wait)
                continue
            paid = False
            try:
                async with self._permits.permit(may_pay=may_pay) as paid:
                    wait = self._limits.reserve_global(self._monotonic())
                    if wait > 0:
                        await self._sleep(wait)
                    await self._telegram.send_message(
                        chat_id=chat_id, text=text, buttons=keyboard, paid=paid
                    )
            except RetryLater as error:
                logger.info("429 for chat %s: waiting %ss", chat_id, error.retry_after)
                self._metrics.throttled.inc()
                self._limits.hold_chat(chat_id, self._monotonic() + error.retry_after)
                continue
            except Rejected as error:
                if paid:
                    # Not allowed to pay (too few Stars, say): this one waits for the free rate.
                    self._paid_refused.failed(str(error))
                    may_pay = False
                    continue
                if keyboard:
                    # A bad button (say, a URL Telegram dislikes) must not cost the text.
                    logger.warning("chat %s refused a message with buttons (%s)", chat_id, error)
                    keyboard = ()
                    continue
                logger.warning("chat %s refused a message, dropping it: %s", chat_id, error)
                return Delivery.REJECTED
            except Unavailable as error:
                failures += 1
                self._outage.failed(str(error))
                if attempts is not None and failures >= attempts:
                    return Delivery.GAVE_UP
                await self._sleep(self._backoff.delay(failures))
                continue
            self._outage.succeeded()
            if paid:
                self._paid_refused.succeeded()
            self._limits.sent(chat_id, self._monotonic())
            return Delivery.SENT
