"""`TelegramApi` over the Bot API's HTTP interface: keep-alive connections (http.py), JSON by
orjson.

The client makes four Bot API calls, written out here with the Bot API's own method and field
names. aiogram's `Bot` did them before, and a profile showed what that cost (bench/README.md,
"Profiles", issue 11): every request built as a pydantic model and every answer validated into
one (a whole `Message` per reply sent), and ~3.5 CPU-seconds at each start importing its ~690
models. Nothing here is aiogram's; the tests check the requests against aiogram's method models,
and the fake Telegram validates every call against the Bot API's api.json.

Offsets are the poller's (poller.py): this module only passes them on. Errors become the
`TelegramFailure` family, classified as aiogram classifies them, with the bot token scrubbed from
their text (the token is part of every Bot API URL, and an aiohttp error may quote the URL); the
original exception is not chained, so a logged traceback cannot leak it either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson

from tggate.adapters.http_pool import JSON_HEADERS, HttpFailure, HttpPool
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
    TelegramFailure,
    Unavailable,
)

__all__ = ["ALLOWED_UPDATES", "HttpTelegramApi", "incoming_from_json", "inline_keyboard"]

ALLOWED_UPDATES = ("message", "callback_query")

# Refusals of this one request (aiogram: TelegramBadRequest, Forbidden, NotFound, EntityTooLarge).
_REJECTED_STATUSES = frozenset({400, 403, 404, 413})
_MAX_ERROR_TEXT = 500


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


def incoming_from_json(update: Mapping[str, Any]) -> Incoming:
    """An update of the Bot API's JSON as a plain value (tests pin it to aiogram's reading).

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


def inline_keyboard(buttons: Keyboard) -> dict[str, object]:
    """The Bot API's InlineKeyboardMarkup: a URL button, or one that sends its command back."""
    return {
        "inline_keyboard": [
            [
                {"text": b.text, "url": b.url}
                if b.url is not None
                else {"text": b.text, "callback_data": b.command}
                for b in row
            ]
            for row in buttons
        ]
    }


def _failure(status: int, parameters: object, text: str) -> TelegramFailure:
    """The Bot API's refusal as aiogram's `check_response` classifies it: retry_after first,
    then a migrated group, then the HTTP status."""
    if isinstance(parameters, Mapping):
        retry_after = parameters.get("retry_after")
        if isinstance(retry_after, int | float) and retry_after > 0 and retry_after is not True:
            return RetryLater(float(retry_after), text)
        if parameters.get("migrate_to_chat_id"):
            return Rejected(text)  # the group became a supergroup: this chat id is gone
    if status == 401:
        return InvalidToken(text)
    if status == 409:
        return PollingConflict(text)
    if status in _REJECTED_STATUSES:
        return Rejected(text)
    return Unavailable(text)  # 5xx, a 429 without retry_after, anything unexpected


class HttpTelegramApi:
    """The Bot API at `api_url` (the real one, or the fake Telegram in tests)."""

    def __init__(self, pool: HttpPool, *, token: str, request_timeout_s: float = 30.0) -> None:
        """`pool`: connections to the Bot API server at `…/bot<token>` (see `open`)."""
        self._pool = pool
        self._token = token
        self._request_timeout_s = request_timeout_s
        self._held: dict[int, Incoming] = {}  # the last getUpdates answer's, by update_id

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        *,
        token: str,
        api_url: str,
        request_timeout_s: float = 30.0,
        max_connections: int = 100,
    ) -> AsyncIterator[HttpTelegramApi]:
        """A client with its own connections, closed on exit."""
        pool = HttpPool(
            f"{api_url.rstrip('/')}/bot{token}",
            max_connections=max_connections,
            headers=JSON_HEADERS,
        )
        try:
            yield cls(pool, token=token, request_timeout_s=request_timeout_s)
        finally:
            await pool.aclose()

    async def get_username(self) -> str:
        me = await self._call("getMe", {}, self._request_timeout_s)
        username = me.get("username") if isinstance(me, dict) else None
        if not isinstance(username, str) or not username:
            raise Unavailable("getMe answered a bot without a username")
        return username

    async def get_updates(
        self, *, offset: int | None, long_poll_s: int, limit: int
    ) -> Sequence[Incoming]:
        params: dict[str, object] = {
            "limit": limit,
            "timeout": long_poll_s,
            "allowed_updates": ALLOWED_UPDATES,
        }
        if offset is not None:
            params["offset"] = offset
        # Longer than the long poll itself, so the server answers first.
        updates = await self._call("getUpdates", params, long_poll_s + self._request_timeout_s)
        if not isinstance(updates, list):
            raise Unavailable("getUpdates answered something other than a list")
        # While updates are in flight the poller asks from the oldest unfinished one, and each
        # answer holds those again: one the previous answer held is not read again. Only the
        # previous answer's are kept, so an update id Telegram reuses later is read afresh.
        known, self._held = self._held, {}
        found: list[Incoming] = []
        try:
            for update in updates:
                update_id = update.get("update_id") if isinstance(update, dict) else None
                incoming = known.get(update_id) if isinstance(update_id, int) else None
                if incoming is None:
                    incoming = incoming_from_json(update)
                self._held[incoming.update_id] = incoming
                found.append(incoming)
        except ValueError as error:
            raise Unavailable(str(error)) from None
        return found

    async def send_message(
        self, *, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False
    ) -> None:
        # No parse_mode: plain text, nothing to escape, nothing to break.
        params: dict[str, object] = {"chat_id": chat_id, "text": text}
        if buttons:
            params["reply_markup"] = inline_keyboard(buttons)
        if paid:
            params["allow_paid_broadcast"] = True
        await self._call("sendMessage", params, self._request_timeout_s)

    async def answer_callback(self, *, callback_id: str) -> None:
        params = {"callback_query_id": callback_id}
        await self._call("answerCallbackQuery", params, self._request_timeout_s)

    async def set_commands(
        self, commands: Sequence[tuple[str, str]], *, language: str | None
    ) -> None:
        params: dict[str, object] = {
            "commands": [{"command": c, "description": d} for c, d in commands]
        }
        if language is not None:
            params["language_code"] = language
        await self._call("setMyCommands", params, self._request_timeout_s)

    async def call(self, method: str, params: Mapping[str, object]) -> Any:
        """Any other Bot API method (the webhook's, say): its `result`, or a `TelegramFailure`
        whose text names no token."""
        return await self._call(method, params, self._request_timeout_s)

    async def _call(self, method: str, params: Mapping[str, object], within_s: float) -> Any:
        """POST the method with a JSON body; its `result`, or a `TelegramFailure`."""
        try:
            answer_http = await self._pool.post(
                "/" + method, orjson.dumps(params), timeout_s=within_s
            )
        except HttpFailure as error:
            raise Unavailable(self._scrub(f"{method}: {error}")) from None
        status, raw = answer_http.status, answer_http.body
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Unavailable(
                self._scrub(f"{method} answered {status}, not JSON: {raw[:200]!r}")
            ) from None
        if not isinstance(answer, dict):
            raise Unavailable(f"{method} answered {status} with no JSON object")
        if 200 <= status <= 226 and answer.get("ok") is True:
            return answer.get("result")
        description = answer.get("description")
        text = description if isinstance(description, str) else f"{method} answered {status}"
        raise _failure(status, answer.get("parameters"), self._scrub(text))

    def _scrub(self, text: str) -> str:
        text = text.replace(self._token, "<bot-token>")
        # An unreadable answer may be long; a log line needs only its start.
        return text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "…"
