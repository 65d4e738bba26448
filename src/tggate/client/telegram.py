"""`TelegramApi` over aiogram's `Bot`, used only as a typed Bot API client (no Dispatcher).

aiogram's own polling confirms updates before handlers finish; here aiogram only makes requests.
Errors become the `TelegramFailure` family with the bot token scrubbed from their text (the token
is part of every Bot API URL, and an aiohttp error may quote the URL); the original exception is
not chained, so a logged traceback cannot leak it either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.methods.base import Response
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from tggate.contract.auth import TELEGRAM_NAME_MAX
from tggate.core.ports import TelegramUser
from tggate.core.replies import Keyboard
from tggate.core.texts import language_of

from .base import (
    CallbackPress,
    Incoming,
    IncomingMessage,
    InvalidToken,
    OtherUpdate,
    PollingConflict,
    Rejected,
    RetryLater,
    Unavailable,
)

__all__ = ["ALLOWED_UPDATES", "AiogramTelegram", "incoming_from_json", "to_incoming"]

ALLOWED_UPDATES = ["message", "callback_query"]

T = TypeVar("T")

_PERMANENT = (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramEntityTooLarge,
    TelegramMigrateToChat,
)


def to_incoming(update: Update) -> Incoming:
    if update.message is not None:
        message = update.message
        user = message.from_user
        return IncomingMessage(
            update_id=update.update_id,
            chat_id=message.chat.id,
            text=message.text,
            language=language_of(user.language_code if user else None),
            date=int(message.date.timestamp()),
            sender=None if user is None else _sender(user.model_dump()),
        )
    if update.callback_query is not None:
        query = update.callback_query
        return CallbackPress(
            update_id=update.update_id,
            # The message may be gone (too old); in a private chat the chat id is the user id.
            chat_id=query.message.chat.id if query.message else query.from_user.id,
            callback_id=query.id,
            data=query.data,
            language=language_of(query.from_user.language_code),
            sender=_sender(query.from_user.model_dump()),
        )
    return OtherUpdate(update_id=update.update_id)


def _sender(user: Mapping[str, Any]) -> TelegramUser | None:
    """Telegram's `User` as the names a person recognises, cut to Telegram's own limits (a
    longer one is not Telegram's); None when there is no first name to show."""
    first = _name(user.get("first_name"))
    if first is None:
        return None
    return TelegramUser(
        first_name=first,
        last_name=_name(user.get("last_name")),
        username=_name(user.get("username")),
    )


def _name(value: object) -> str | None:
    return value[:TELEGRAM_NAME_MAX] if isinstance(value, str) and value else None


class _GetUpdatesAsJson(GetUpdates):
    """getUpdates with the updates left as JSON objects (see `AiogramTelegram.get_updates`)."""

    __returning__ = list[dict[str, Any]]


def incoming_from_json(update: Mapping[str, Any]) -> Incoming:
    """`to_incoming` of the Bot API's JSON for an update, without aiogram's models.

    ValueError when the update lacks what a message or a press must have."""
    try:
        update_id = _integer(update["update_id"])
        message = update.get("message")
        if message is not None:
            user = message.get("from")
            return IncomingMessage(
                update_id=update_id,
                chat_id=_integer(message["chat"]["id"]),
                text=_text_or_none(message.get("text")),
                language=language_of(user.get("language_code") if user else None),
                date=_integer(message["date"]),
                sender=_sender(user) if user else None,
            )
        query = update.get("callback_query")
        if query is not None:
            sender = query["from"]
            shown = query.get("message")
            return CallbackPress(
                update_id=update_id,
                # The message may be gone (too old); in a private chat the chat id is the user id.
                chat_id=_integer(shown["chat"]["id"] if shown else sender["id"]),
                callback_id=str(query["id"]),
                data=_text_or_none(query.get("data")),
                language=language_of(sender.get("language_code")),
                sender=_sender(sender),
            )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"malformed update: {type(error).__name__}") from None
    return OtherUpdate(update_id=update_id)


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


def _text_or_none(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("not a string")
    return value


def to_markup(buttons: Keyboard) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=b.text, url=b.url)
                if b.url is not None
                else InlineKeyboardButton(text=b.text, callback_data=b.command)
                for b in row
            ]
            for row in buttons
        ]
    )


class AiogramTelegram:
    """The Bot API at `api_url` (the real one, or the fake Telegram in tests)."""

    def __init__(self, bot: Bot, *, request_timeout_s: int = 30) -> None:
        self._bot = bot
        self._token = bot.token
        self._request_timeout_s = request_timeout_s
        # aiogram parses every answer with `Response[<result type>]`, a pydantic generic that
        # pydantic caches only while something references it: unreferenced, it is rebuilt (tens
        # of ms each for `Message`) whenever the garbage collector has dropped it.
        self._response_types = (Response[Message], Response[bool], Response[list[dict[str, Any]]])

    @classmethod
    def connect(cls, *, token: str, api_url: str, request_timeout_s: int = 30) -> AiogramTelegram:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
        return cls(Bot(token, session=session), request_timeout_s=request_timeout_s)

    async def close(self) -> None:
        await self._bot.session.close()

    async def get_username(self) -> str:
        me = await self._call(self._bot.get_me(request_timeout=self._request_timeout_s))
        if not me.username:
            raise Unavailable("getMe answered a bot without a username")
        return me.username

    async def get_updates(
        self, *, offset: int | None, long_poll_s: int, limit: int
    ) -> Sequence[Incoming]:
        # The updates stay JSON objects here: while earlier updates are in flight the poller asks
        # again for up to 100 it already holds (poller.py), and validating each of them into
        # aiogram's `Update` model every time was 40% of the client's CPU under load (bench/).
        # The method's declared result is still `list[Update]`; at run time it is JSON objects.
        updates: list[Any] = await self._call(
            self._bot(
                _GetUpdatesAsJson(
                    offset=offset,
                    limit=limit,
                    timeout=long_poll_s,
                    allowed_updates=ALLOWED_UPDATES,
                ),
                # Longer than the long poll itself, so the server answers first.
                request_timeout=long_poll_s + self._request_timeout_s,
            )
        )
        try:
            return [incoming_from_json(update) for update in updates]
        except ValueError as error:  # as aiogram's own parsing failing would be
            raise Unavailable(str(error)) from None

    async def send_message(self, *, chat_id: int, text: str, buttons: Keyboard = ()) -> None:
        await self._call(
            self._bot.send_message(
                chat_id=chat_id,
                text=text,
                parse_mode=None,  # plain text: nothing to escape, nothing to break
                reply_markup=to_markup(buttons),
                request_timeout=self._request_timeout_s,
            )
        )

    async def answer_callback(self, *, callback_id: str) -> None:
        await self._call(
            self._bot.answer_callback_query(
                callback_query_id=callback_id, request_timeout=self._request_timeout_s
            )
        )

    async def set_commands(
        self, commands: Sequence[tuple[str, str]], *, language: str | None
    ) -> None:
        await self._call(
            self._bot.set_my_commands(
                commands=[BotCommand(command=c, description=d) for c, d in commands],
                language_code=language,
                request_timeout=self._request_timeout_s,
            )
        )

    def _scrub(self, text: str) -> str:
        text = text.replace(self._token, "<bot-token>")
        # An unreadable answer is quoted whole by aiogram; a log line needs only its start.
        return text if len(text) <= 500 else text[:500] + "…"

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except TelegramRetryAfter as error:
            raise RetryLater(error.retry_after, self._scrub(error.message)) from None
        except TelegramConflictError as error:
            raise PollingConflict(self._scrub(error.message)) from None
        except TelegramUnauthorizedError as error:
            raise InvalidToken(self._scrub(error.message)) from None
        except _PERMANENT as error:
            raise Rejected(self._scrub(error.message)) from None
        except AiogramError as error:  # network errors, 5xx, unreadable answers
            raise Unavailable(self._scrub(f"{type(error).__name__}: {error}")) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise Unavailable(self._scrub(f"{type(error).__name__}: {error}")) from None
