"""Handling one update: recognise the command (C4), answer unknown ones (C5), forward the rest
to Bot Logic (C6) and send its replies.

An update counts as handled only when its replies are with Telegram, so outages of Bot Logic are
retried here (with the same update_id: Bot Logic is idempotent by it) rather than skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from tggate.core.commands import CommandTable, OtherBot, ParsedCommand, Usage, parse_text
from tggate.core.replies import ChatReply, Reply
from tggate.core.texts import Language

from . import texts
from .base import (
    CallbackPress,
    IncomingMessage,
    LogicApi,
    LogicRejected,
    LogicUnavailable,
    TelegramApi,
    TelegramFailure,
)
from .journal import DeliveryJournal, update_key
from .retry import Backoff, OutageLog
from .sender import Sender

__all__ = ["Forwarder", "Timer"]

logger = logging.getLogger("tggate.client.forwarder")


class Timer(Protocol):
    """A callback scheduled for later (`asyncio.TimerHandle`)."""

    def cancel(self) -> object: ...


class Forwarder:
    def __init__(
        self,
        *,
        telegram: TelegramApi,
        logic: LogicApi,
        sender: Sender,
        table: CommandTable,
        bot_username: str | None = None,
        backoff: Backoff | None = None,
        notice_after_s: float = 10.0,
        journal: DeliveryJournal | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_later: Callable[[float, Callable[[], None]], Timer] | None = None,
    ) -> None:
        """`sleep` (between retries) and `call_later` (the delay notice; None: the event
        loop's) are the clock's, for tests to replace."""
        self._telegram = telegram
        self._journal = journal
        self._logic = logic
        self._sender = sender
        self._table = table
        # The bot's own name (getMe); a replica that learns it after start-up sets it here.
        self.bot_username = bot_username
        self._backoff = backoff or Backoff()
        self._notice_after_s = notice_after_s
        self._sleep = sleep
        self._call_later = call_later
        self._outage = OutageLog(logger, "Bot Logic /v1/commands")

    async def handle(self, update: IncomingMessage | CallbackPress) -> None:
        replies = await self.replies(update)
        # After a crash Telegram delivers handled updates again (see journal.py): skip the
        # replies already settled with Telegram, and write down each one settled now.
        key = update_key(update)
        already = self._journal.sent(key) if self._journal else 0
        for index, reply in enumerate(replies):
            if index < already:
                continue
            await self._sender.send(reply.chat_id, reply.reply)
            if self._journal:
                self._journal.record(key, index + 1)

    async def replies(self, update: IncomingMessage | CallbackPress) -> Sequence[ChatReply]:
        """What the update is answered with (C4–C6), a button's spinner stopped first; nothing
        is sent. The webhook intake sends them itself (src/tggate/intake/worker.py)."""
        if isinstance(update, CallbackPress):
            await self._answer_callback(update.callback_id)
            return await self._replies(update, update.data)
        return await self._replies(update, update.text)

    async def _answer_callback(self, callback_id: str) -> None:
        # Stops the button's spinner. Best effort: an old query is refused, and that is fine.
        try:
            await self._telegram.answer_callback(callback_id=callback_id)
        except TelegramFailure as error:
            logger.info("could not answer a callback query: %s", error)

    async def _replies(
        self, update: IncomingMessage | CallbackPress, text: str | None
    ) -> Sequence[ChatReply]:
        chat_id, language = update.chat_id, update.language
        parsed = parse_text(text, self._table, bot_username=self.bot_username) if text else None
        if parsed is None:
            return [ChatReply(chat_id, Reply(texts.no_such_command(language)))]  # C5
        if isinstance(parsed, OtherBot):
            return []  # `/command@other_bot` in a group: that bot's to answer (issue 9)
        if isinstance(parsed, Usage):
            return [ChatReply(chat_id, Reply(texts.usage(parsed, self._table, language)))]
        return await self._forward(update, parsed, text or "")

    async def _forward(
        self, update: IncomingMessage | CallbackPress, parsed: ParsedCommand, text: str
    ) -> Sequence[ChatReply]:
        # Not silence (docs/contract.md#reliability): once the answer is `notice_after_s` late,
        # say so, once per handling, on a timer of its own: checked only between retries, the
        # notice came as late as the back-off (up to 30 s) after that. A timer, not a task
        # sleeping beside every command: almost every answer comes first, and the task was
        # two more steps of the event loop per command (bench/README.md, "Profiles").
        notice: asyncio.Task[None] | None = None

        def start_notice() -> None:
            nonlocal notice
            notice = asyncio.create_task(
                self._notice(update.chat_id, update.language), name="tggate-delay-notice"
            )

        timer = (self._call_later or asyncio.get_running_loop().call_later)(
            self._notice_after_s, start_notice
        )
        try:
            return await self._ask(update, parsed, text)
        finally:
            timer.cancel()
            # A notice on its way is let through, so it comes before the answer, never after.
            if notice is not None:
                await asyncio.gather(notice, return_exceptions=True)

    async def _notice(self, chat_id: int, language: Language) -> None:
        try:
            await self._sender.send(chat_id, Reply(texts.unavailable(language)))
        except TelegramFailure as error:
            logger.info("could not tell chat %s its answer is delayed: %s", chat_id, error)

    async def _ask(
        self, update: IncomingMessage | CallbackPress, parsed: ParsedCommand, text: str
    ) -> Sequence[ChatReply]:
        """Bot Logic's replies, retried with the same update_id while it is unavailable."""
        update_id, chat_id, language = update.update_id, update.chat_id, update.language
        attempt = 0
        while True:
            try:
                replies = await self._logic.command(
                    update_id=update_id,
                    chat_id=chat_id,
                    command=parsed.command,
                    args=dict(parsed.args),
                    text=text,
                    language=language,
                    # Only a login shows who asks (the confirmation page): names go nowhere else.
                    telegram_user=update.sender if parsed.command == "login" else None,
                )
            except LogicUnavailable as error:
                attempt += 1
                self._outage.failed(f"update {update_id}: {error}")
                await self._sleep(self._backoff.delay(attempt))
                continue
            except LogicRejected as error:
                logger.error("Bot Logic refused update %s: %s", update_id, error)
                return [ChatReply(chat_id, Reply(texts.logic_error(language)))]
            self._outage.succeeded()
            return replies
