"""The Telegram Client's ports: what it needs from Telegram and from Bot Logic, as Protocols.

The real implementations are `telegram.HttpTelegramApi` and `logic_api.HttpLogicApi`; unit tests
use hand-written fakes. Both sides speak in plain values (the updates below, the core's
`ChatReply`, `Keyboard` and `OutboxMessage`), never in aiohttp types, and raise only the errors
below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tggate.core.ports import OutboxKind, OutboxMessage, TelegramUser
from tggate.core.replies import ChatReply, Keyboard
from tggate.core.texts import Language

__all__ = [
    "CallbackPress",
    "Incoming",
    "IncomingMessage",
    "InvalidToken",
    "LogicApi",
    "LogicRejected",
    "LogicUnavailable",
    "OtherUpdate",
    "PollingConflict",
    "Rejected",
    "RetryLater",
    "TelegramApi",
    "TelegramFailure",
    "Unavailable",
]


# ---- what arrives from Telegram ----


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message in a chat; `text` is None for stickers, photos and the like."""

    update_id: int
    chat_id: int
    text: str | None
    language: Language
    # When the person sent it (Unix time). With update_id it tells an update Telegram delivers
    # again from a new one that reuses the id (see journal.py); not part of equality.
    date: int = field(default=0, compare=False)
    # Who sent it, for the login confirmation page (issue 9, finding 8); None when unknown.
    sender: TelegramUser | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CallbackPress:
    """A press on one of the bot's inline buttons; `data` is the command the button carries."""

    update_id: int
    chat_id: int
    callback_id: str
    data: str | None
    language: Language
    sender: TelegramUser | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OtherUpdate:
    """Anything else (an edited message, a chat member change…): confirmed without handling."""

    update_id: int


Incoming = IncomingMessage | CallbackPress | OtherUpdate


# ---- errors of the Telegram side ----


class TelegramFailure(Exception):
    """Base of every error `TelegramApi` raises; messages never contain the bot token."""


class RetryLater(TelegramFailure):
    """429: flood control; wait `retry_after` seconds before the next message to that chat."""

    def __init__(self, retry_after: float, message: str = "flood control") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PollingConflict(TelegramFailure):
    """409: another getUpdates poller (or a webhook) is active for this bot token."""


class Rejected(TelegramFailure):
    """A permanent refusal of this one request (400 bad request, 403 blocked, 404 not found)."""


class Unavailable(TelegramFailure):
    """A network error, a timeout, a 5xx or an unreadable answer: worth retrying."""


class InvalidToken(TelegramFailure):
    """401: the bot token is wrong. Nothing will work; the client stops."""


class TelegramApi(Protocol):
    """The part of the Bot API the client uses."""

    async def get_username(self) -> str:
        """The bot's own username (getMe), without '@'."""
        ...

    async def get_updates(
        self, *, offset: int | None, long_poll_s: int, limit: int
    ) -> Sequence[Incoming]: ...

    async def send_message(
        self, *, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False
    ) -> None:
        """Send plain text (no parse mode, so nothing needs escaping). `paid`: as a paid
        broadcast (allow_paid_broadcast), which Telegram lets past its overall limit for a fee."""
        ...

    async def answer_callback(self, *, callback_id: str) -> None: ...

    async def set_commands(
        self, commands: Sequence[tuple[str, str]], *, language: str | None
    ) -> None: ...


# ---- errors and port of Bot Logic (docs/contract.md#bot-logic) ----


class LogicUnavailable(Exception):
    """5xx, 409 (update in progress), 429, a timeout or a connection error: retry later."""


class LogicRejected(Exception):
    """A 4xx (or an unreadable 200): retrying the same request will not help."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"Bot Logic answered {status}{': ' + detail if detail else ''}")
        self.status = status


class LogicApi(Protocol):
    """Bot Logic's internal HTTP API (docs/contract.md#bot-logic, tggate.contract.logic)."""

    async def command(
        self,
        *,
        update_id: int,
        chat_id: int,
        command: str,
        args: dict[str, str],
        text: str,
        language: Language,
        telegram_user: TelegramUser | None = None,
    ) -> Sequence[ChatReply]:
        """The replies to the command, in order, each to the chat Bot Logic names."""
        ...

    async def cycle(self, kind: OutboxKind, *, shard: int, shards: int) -> Sequence[OutboxMessage]:
        """One tick of the timer whose messages are of `kind`: every undelivered one."""
        ...

    async def ack(self, ids: Sequence[str]) -> None: ...

    async def lease(self, *, instance: str, ttl_s: float) -> bool: ...
