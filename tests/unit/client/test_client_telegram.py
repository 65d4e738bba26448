"""The aiogram adapter: updates become plain values, errors become `TelegramFailure`s without the
bot token in them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import Update

from tggate.client.base import (
    CallbackPress,
    IncomingMessage,
    InvalidToken,
    OtherUpdate,
    PollingConflict,
    Rejected,
    RetryLater,
    TelegramFailure,
    Unavailable,
)
from tggate.client.telegram import AiogramTelegram, to_incoming, to_markup
from tggate.core.replies import Button

TOKEN = "42:secret-token-value"
USER = {"id": 7, "is_bot": False, "first_name": "A", "language_code": "en-GB"}
CHAT = {"id": 7, "type": "private", "first_name": "A"}


def test_a_message_becomes_an_incoming_message() -> None:
    update = Update.model_validate(
        {
            "update_id": 3,
            "message": {"message_id": 1, "date": 0, "chat": CHAT, "from": USER, "text": "/help"},
        }
    )
    assert to_incoming(update) == IncomingMessage(3, 7, "/help", "en")


def test_a_sticker_has_no_text_and_no_user_means_russian() -> None:
    update = Update.model_validate(
        {"update_id": 4, "message": {"message_id": 1, "date": 0, "chat": CHAT}}
    )
    assert to_incoming(update) == IncomingMessage(4, 7, None, "ru")


def test_a_callback_query_becomes_a_press() -> None:
    update = Update.model_validate(
        {
            "update_id": 5,
            "callback_query": {
                "id": "cb9",
                "from": USER,
                "chat_instance": "x",
                "data": "/login code",
                "message": {"message_id": 2, "date": 0, "chat": CHAT, "text": "offer"},
            },
        }
    )
    assert to_incoming(update) == CallbackPress(5, 7, "cb9", "/login code", "en")


def test_anything_else_is_an_other_update() -> None:
    update = Update.model_validate(
        {
            "update_id": 6,
            "edited_message": {"message_id": 1, "date": 0, "chat": CHAT, "text": "x"},
        }
    )
    assert to_incoming(update) == OtherUpdate(6)


def test_buttons_become_an_inline_keyboard() -> None:
    markup = to_markup(
        ((Button("Site", url="https://example.com"), Button("Go", command="/help")),)
    )
    assert markup is not None
    [[url, command]] = markup.inline_keyboard
    assert (url.url, url.callback_data) == ("https://example.com", None)
    assert (command.callback_data, command.url) == ("/help", None)
    assert to_markup(()) is None


class RaisingSession(BaseSession):
    """An aiogram session that fails every request with `error` (a hand-written fake)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def close(self) -> None:
        pass

    # The two overrides keep aiogram's signatures, `timeout` parameters included.
    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:  # noqa: ASYNC109
        raise self.error

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""


METHOD = SendMessage(chat_id=1, text="x")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=3), RetryLater),
        (TelegramConflictError(METHOD, "Conflict"), PollingConflict),
        (TelegramUnauthorizedError(METHOD, "Unauthorized"), InvalidToken),
        (TelegramBadRequest(METHOD, "Bad Request: chat not found"), Rejected),
        (TelegramForbiddenError(METHOD, "Forbidden: bot was blocked"), Rejected),
        (TelegramServerError(METHOD, "Internal Server Error"), Unavailable),
        (
            TelegramNetworkError(METHOD, f"InvalidURL: http://x/bot{TOKEN}/sendMessage"),
            Unavailable,
        ),
    ],
)
async def test_errors_are_translated_and_scrubbed(
    error: Exception, expected: type[TelegramFailure]
) -> None:
    telegram = AiogramTelegram(Bot(TOKEN, session=RaisingSession(error)))
    with pytest.raises(expected) as caught:
        await telegram.send_message(chat_id=1, text="x")
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    if isinstance(caught.value, RetryLater):
        assert caught.value.retry_after == 3
