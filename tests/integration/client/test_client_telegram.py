"""The Bot API adapter on real HTTP: what it sends is what aiogram's method models accept, and
every refusal becomes a `TelegramFailure`, classified as aiogram classifies it, without the bot
token in it. A small scripted server answers; the client flow tests run it against the fake
Telegram."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram.methods import AnswerCallbackQuery, GetUpdates, SendMessage, SetMyCommands
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support.servers import run_asgi

from tggate.client.base import (
    IncomingMessage,
    InvalidToken,
    PollingConflict,
    Rejected,
    RetryLater,
    TelegramFailure,
    Unavailable,
)
from tggate.client.telegram import HttpTelegramApi
from tggate.core.replies import Button

TOKEN = "42:secret-token-value"
CHAT = {"id": 7, "type": "private", "first_name": "A"}
USER = {"id": 7, "is_bot": False, "first_name": "A", "language_code": "en"}
SENT = {"message_id": 1, "date": 0, "chat": CHAT, "text": "x"}


@dataclass
class Script:
    """What the server answers next (status, body bytes), and what it received."""

    answers: list[tuple[int, bytes]] = field(default_factory=list)
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def answer(self, status: int, body: object) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.append((status, raw))


def scripted_app(script: Script) -> Starlette:
    async def method(request: Request) -> Response:
        body = json.loads(await request.body())
        script.received.append((request.path_params["token"], request.path_params["name"], body))
        status, raw = (
            script.answers.pop(0) if script.answers else (200, b'{"ok":true,"result":true}')
        )
        return Response(raw, status_code=status, media_type="application/json")

    return Starlette(routes=[Route("/bot{token}/{name}", method, methods=["POST"])])


SCRIPT = Script()


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    with run_asgi(scripted_app(SCRIPT)) as url:
        yield url


@pytest.fixture
def script() -> Script:
    SCRIPT.answers.clear()
    SCRIPT.received.clear()
    return SCRIPT


@pytest.fixture
async def telegram(api_url: str, script: Script) -> AsyncIterator[HttpTelegramApi]:
    async with HttpTelegramApi.open(token=TOKEN, api_url=api_url, request_timeout_s=5) as api:
        yield api


async def test_send_message_is_a_valid_send_message(
    telegram: HttpTelegramApi, script: Script
) -> None:
    script.answer(200, {"ok": True, "result": SENT})
    keyboard = ((Button("Site", url="https://example.com"), Button("Go", command="/help")),)
    await telegram.send_message(chat_id=7, text="Привет", buttons=keyboard, paid=True)
    [(token, name, body)] = script.received
    assert (token, name) == (TOKEN, "sendMessage")
    method = SendMessage.model_validate(body)
    assert (method.chat_id, method.text, method.allow_paid_broadcast) == (7, "Привет", True)
    assert "parse_mode" not in body  # plain text: Telegram parses nothing
    assert method.reply_markup is not None
    [[url, command]] = method.reply_markup.inline_keyboard  # type: ignore[union-attr]
    assert (url.url, url.callback_data) == ("https://example.com", None)
    assert (command.callback_data, command.url) == ("/help", None)


async def test_a_free_message_without_buttons_carries_neither(
    telegram: HttpTelegramApi, script: Script
) -> None:
    await telegram.send_message(chat_id=7, text="hi")
    [(_, _, body)] = script.received
    assert body == {"chat_id": 7, "text": "hi"}


async def test_get_updates_reads_the_updates(telegram: HttpTelegramApi, script: Script) -> None:
    update = {
        "update_id": 3,
        "message": {"message_id": 1, "date": 9, "chat": CHAT, "from": USER, "text": "/me"},
    }
    script.answer(200, {"ok": True, "result": [update]})
    script.answer(200, {"ok": True, "result": []})
    assert await telegram.get_updates(offset=None, long_poll_s=0, limit=100) == [
        IncomingMessage(3, 7, "/me", "en", date=9)
    ]
    await telegram.get_updates(offset=4, long_poll_s=1, limit=10)
    first, second = (GetUpdates.model_validate(body) for _, _, body in script.received)
    assert first.offset is None and "offset" not in script.received[0][2]
    assert (second.offset, second.timeout, second.limit) == (4, 1, 10)
    assert second.allowed_updates == ["message", "callback_query"]


async def test_an_update_held_again_reads_the_same_and_a_reused_id_reads_afresh(
    telegram: HttpTelegramApi, script: Script
) -> None:
    def update(update_id: int, date: int, text: str) -> dict[str, object]:
        message = {"message_id": 1, "date": date, "chat": CHAT, "from": USER, "text": text}
        return {"update_id": update_id, "message": message}

    script.answer(200, {"ok": True, "result": [update(3, 9, "/me")]})
    # Held again (still in flight), beside a new one: the same update, read from its JSON once.
    script.answer(200, {"ok": True, "result": [update(3, 9, "/me"), update(4, 9, "/help")]})
    script.answer(200, {"ok": True, "result": []})
    # Telegram picks ids afresh (a week without updates, a test Telegram started again).
    script.answer(200, {"ok": True, "result": [update(3, 99, "/grades")]})
    read = [
        await telegram.get_updates(offset=3, long_poll_s=0, limit=100) for _ in script.answers[:]
    ]
    assert [[(u.update_id, u.text) for u in answer] for answer in read] == [  # type: ignore[union-attr]
        [(3, "/me")],
        [(3, "/me"), (4, "/help")],
        [],
        [(3, "/grades")],
    ]
    assert read[3][0] == IncomingMessage(3, 7, "/grades", "en", date=99)


async def test_callback_answers_and_menus(telegram: HttpTelegramApi, script: Script) -> None:
    await telegram.answer_callback(callback_id="cb9")
    await telegram.set_commands([("me", "My profile")], language="en")
    await telegram.set_commands([("me", "Мой профиль")], language=None)
    (_, answer, a), (_, menu, m), (_, _, default) = script.received
    assert (answer, menu) == ("answerCallbackQuery", "setMyCommands")
    assert AnswerCallbackQuery.model_validate(a).callback_query_id == "cb9"
    commands = SetMyCommands.model_validate(m)
    assert commands.language_code == "en"
    assert [(c.command, c.description) for c in commands.commands] == [("me", "My profile")]
    assert "language_code" not in default


def _refusal(code: int, description: str, **parameters: object) -> dict[str, object]:
    body: dict[str, object] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, _refusal(429, "Too Many Requests: retry after 3", retry_after=3), RetryLater),
        (409, _refusal(409, "Conflict: terminated by other getUpdates request"), PollingConflict),
        (401, _refusal(401, "Unauthorized"), InvalidToken),
        (400, _refusal(400, "Bad Request: chat not found"), Rejected),
        (403, _refusal(403, "Forbidden: bot was blocked by the user"), Rejected),
        (404, _refusal(404, "Not Found"), Rejected),
        (400, _refusal(400, "Bad Request: group upgraded", migrate_to_chat_id=-1), Rejected),
        (500, _refusal(500, "Internal Server Error"), Unavailable),
        (429, _refusal(429, "Too Many Requests"), Unavailable),
        (502, b"<html>Bad Gateway</html>", Unavailable),
        (200, {"ok": True, "result": {"not": "a list"}}, Unavailable),
        (400, _refusal(400, f"Bad Request: the URL /bot{TOKEN}/sendMessage is wrong"), Rejected),
    ],
)
async def test_refusals_are_classified_and_scrubbed(
    telegram: HttpTelegramApi,
    script: Script,
    status: int,
    body: object,
    expected: type[TelegramFailure],
) -> None:
    script.answer(status, body)
    with pytest.raises(expected) as caught:
        if status == 200:
            await telegram.get_updates(offset=None, long_poll_s=0, limit=1)
        else:
            await telegram.send_message(chat_id=1, text="x")
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    if isinstance(caught.value, RetryLater):
        assert caught.value.retry_after == 3


async def test_a_malformed_update_is_an_outage_not_a_crash(
    telegram: HttpTelegramApi, script: Script
) -> None:
    script.answer(200, {"ok": True, "result": [{"update_id": "1", "message": {}}]})
    with pytest.raises(Unavailable, match="malformed update"):
        await telegram.get_updates(offset=None, long_poll_s=0, limit=1)


async def test_a_network_error_is_an_outage_without_the_token() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpTelegramApi.open(
        token=TOKEN, api_url=f"http://127.0.0.1:{port}", request_timeout_s=5
    ) as telegram:
        with pytest.raises(Unavailable) as caught:
            await telegram.send_message(chat_id=1, text="x")
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
