"""The fake Telegram Bot API over real HTTP (uvicorn on loopback), driven by aiogram 3's real Bot.

docs/contract.md#reference: real getUpdates semantics (long poll, confirm by offset, 409 for a
second poller), methods validated against api.json, flood limits (docs/contract.md#limits), and the
`/_test` API the other tests use.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from tests.support.clock import FakeClock
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi
from tests.support.waiting import eventually

from tggate_sandbox.fakes.telegram import create_app

TOKEN = "123456:TEST-fake-telegram-token"
CHAT = 42


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[str, FakeClock]]:
    """One server for the module; every test starts from `/_test/reset` (state and config)."""
    clock = FakeClock(1_000.0)
    with run_asgi(create_app(token=TOKEN, clock=clock, test_api_secret=TEST_API_SECRET)) as url:
        yield url, clock


@pytest.fixture
def clock(shared: tuple[str, FakeClock]) -> FakeClock:
    return shared[1]


@pytest.fixture
def server(shared: tuple[str, FakeClock]) -> str:
    url, clock = shared
    httpx.post(f"{url}/_test/reset", headers=TEST_API).raise_for_status()
    clock.now = FakeClock(1_000.0).now
    return url


def make_bot(url: str, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))


@pytest.fixture
async def bot(server: str) -> AsyncIterator[Bot]:
    bot = make_bot(server)
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, headers=TEST_API, timeout=30) as client:
        yield client


async def inject(http: httpx.AsyncClient, text: str, chat_id: int = CHAT, **extra: Any) -> Any:
    response = await http.post("/_test/inject", json={"chat_id": chat_id, "text": text, **extra})
    response.raise_for_status()
    return response.json()


async def stats(http: httpx.AsyncClient) -> Any:
    response = await http.get("/_test/stats")
    response.raise_for_status()
    return response.json()


async def raw_call(http: httpx.AsyncClient, method: str, **kwargs: Any) -> httpx.Response:
    return await http.post(f"/bot{TOKEN}/{method}", **kwargs)


async def wait_until_polling(http: httpx.AsyncClient, calls: int) -> None:
    """Until the fake has seen `calls` getUpdates requests and one of them waits (the fake counts
    waiting requests: no guess at how long the wait takes to start)."""

    async def polling() -> bool:
        counters = await stats(http)
        return counters["calls"].get("getUpdates", 0) >= calls and counters["waiting"] >= 1

    await eventually(polling, what="a waiting getUpdates")


async def _waiting(http: httpx.AsyncClient) -> bool:
    return bool((await stats(http))["waiting"] >= 1)


def pairs(commands: list[BotCommand]) -> list[tuple[str, str]]:
    return [(c.command, c.description) for c in commands]


def login_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="GitHub", callback_data="/login github")],
            [InlineKeyboardButton(text="Docs", url="https://example.com/docs")],
        ]
    )


# ---- the Bot API as aiogram sees it ----


async def test_get_me_answers_as_the_bot(bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username) == (123456, True, "tggate_bot")


async def test_a_wrong_token_is_unauthorized(server: str, http: httpx.AsyncClient) -> None:
    stranger = make_bot(server, token="654321:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await stranger.session.close()

    response = await http.post("/bot654321:WRONG/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_an_unknown_method_is_not_found_and_names_are_case_insensitive(
    http: httpx.AsyncClient,
) -> None:
    response = await raw_call(http, "getEverything")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}

    response = await http.get(f"/bot{TOKEN}/GETME")
    assert response.status_code == 200
    assert response.json()["result"]["username"] == "tggate_bot"


async def test_send_message_returns_a_full_message(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start", first_name="Alice", language_code="ru")

    sent = await bot.send_message(CHAT, "Привет", reply_markup=login_keyboard())

    assert sent.message_id == 2  # the person's /start was 1: one id sequence per private chat
    assert sent.from_user is not None and sent.from_user.id == 123456
    assert (sent.chat.id, sent.chat.type, sent.chat.first_name) == (CHAT, "private", "Alice")
    assert sent.text == "Привет"
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump(exclude_none=True) == login_keyboard().model_dump(
        exclude_none=True
    )
    history = (await http.get(f"/_test/chats/{CHAT}/messages")).json()
    assert [(m["message_id"], m["text"], m["from_bot"]) for m in history] == [
        (1, "/start", False),
        (2, "Привет", True),
    ]
    assert history[1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "/login github"


async def test_a_bot_cannot_write_first(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "hello?")


async def test_a_blocked_bot_is_forbidden(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    (await http.post("/_test/block", json={"chat_id": CHAT})).raise_for_status()

    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "still there?")


async def test_edit_message_text(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/login")
    sent = await bot.send_message(CHAT, "Choose", reply_markup=login_keyboard())

    edited = await bot.edit_message_text(
        "Chosen: GitHub", chat_id=CHAT, message_id=sent.message_id, reply_markup=login_keyboard()
    )

    assert isinstance(edited, Message)
    assert edited.text == "Chosen: GitHub"
    assert edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Chosen: GitHub",
            chat_id=CHAT,
            message_id=sent.message_id,
            reply_markup=login_keyboard(),
        )
    # Without reply_markup the keyboard goes away, which is a modification.
    await bot.edit_message_text("Chosen: GitHub", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=1)
    [_, bot_message] = (await http.get(f"/_test/chats/{CHAT}/messages")).json()
    assert (bot_message["text"], bot_message["edited"], bot_message["reply_markup"]) == (
        "Chosen: GitHub",
        True,
        None,
    )


async def test_press_a_button_and_answer_the_callback_query(
    bot: Bot, http: httpx.AsyncClient
) -> None:
    await inject(http, "/login")
    sent = await bot.send_message(CHAT, "Log in with", reply_markup=login_keyboard())
    first = await bot.get_updates()

    response = await http.post(
        "/_test/press",
        json={"chat_id": CHAT, "message_id": sent.message_id, "data": "/login github"},
    )
    response.raise_for_status()
    pressed = response.json()

    updates = await bot.get_updates(offset=first[-1].update_id + 1)
    [update] = updates
    assert update.update_id == pressed["update_id"]
    query = update.callback_query
    assert query is not None
    assert (query.id, query.data, query.from_user.id) == (
        pressed["callback_query_id"],
        "/login github",
        CHAT,
    )
    assert isinstance(query.message, Message) and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="Opening GitHub…") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("12345")
    [answer] = (await http.get("/_test/callbacks")).json()
    assert (answer["answered"], answer["text"]) == (True, "Opening GitHub…")


async def test_press_needs_a_matching_button(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/login")
    sent = await bot.send_message(CHAT, "Log in with", reply_markup=login_keyboard())

    wrong_data = await http.post(
        "/_test/press", json={"chat_id": CHAT, "message_id": sent.message_id, "data": "/nope"}
    )
    persons_message = await http.post(
        "/_test/press", json={"chat_id": CHAT, "message_id": 1, "data": "/login github"}
    )

    assert wrong_data.status_code == 400
    assert persons_message.status_code == 404


async def test_commands_are_kept_per_scope_and_language(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    english = [BotCommand(command="login", description="Log in")]
    russian = [BotCommand(command="login", description="Войти")]
    personal = [BotCommand(command="logout", description="Log out")]

    assert await bot.set_my_commands(english) is True
    assert await bot.set_my_commands(russian, language_code="ru") is True
    assert await bot.set_my_commands(personal, scope=BotCommandScopeChat(chat_id=CHAT)) is True

    assert pairs(await bot.get_my_commands()) == pairs(english)
    assert pairs(await bot.get_my_commands(language_code="ru")) == pairs(russian)
    assert pairs(await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=CHAT))) == pairs(
        personal
    )
    assert await bot.get_my_commands(language_code="de") == []
    assert (await stats(http))["commands"]["default"]["ru"] == [
        {"command": "login", "description": "Войти"}
    ]
    assert await bot.delete_my_commands(language_code="ru") is True
    assert await bot.get_my_commands(language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Log-In", description="x")])


# ---- getUpdates ----


async def test_updates_stay_until_confirmed_by_offset(bot: Bot, http: httpx.AsyncClient) -> None:
    ids = [(await inject(http, f"/cmd{i}"))["update_id"] for i in range(3)]

    assert [u.update_id for u in await bot.get_updates()] == ids
    assert [u.update_id for u in await bot.get_updates()] == ids  # nothing confirmed yet
    assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert (await stats(http))["pending_updates"] == 2  # ids[0] is confirmed and gone
    assert await bot.get_updates(offset=ids[-1] + 1) == []
    assert (await stats(http))["pending_updates"] == 0


async def test_an_update_carries_the_persons_message(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/login github", first_name="Alice", username="alice", language_code="en")

    [update] = await bot.get_updates()

    message = update.message
    assert message is not None and message.from_user is not None
    assert (message.text, message.chat.id, message.chat.type) == ("/login github", CHAT, "private")
    assert (message.from_user.id, message.from_user.username) == (CHAT, "alice")
    assert message.from_user.language_code == "en"
    assert message.entities is not None
    assert (message.entities[0].type, message.entities[0].length) == ("bot_command", 6)


async def test_negative_offset_forgets_all_but_the_last(bot: Bot, http: httpx.AsyncClient) -> None:
    ids = [(await inject(http, f"/cmd{i}"))["update_id"] for i in range(4)]

    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[-1:]
    assert [u.update_id for u in await bot.get_updates()] == ids[-1:]


async def test_limit_and_allowed_updates(bot: Bot, http: httpx.AsyncClient) -> None:
    ids = [(await inject(http, f"/cmd{i}"))["update_id"] for i in range(5)]

    assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
    await bot.get_updates(offset=ids[-1] + 1, allowed_updates=["callback_query"])
    skipped = await inject(http, "/not-wanted")

    assert skipped["queued"] is False
    assert await bot.get_updates() == []


async def test_a_long_poll_wakes_up_when_an_update_arrives(
    bot: Bot, http: httpx.AsyncClient
) -> None:
    # A poll that ran out would answer []: the update in the answer is what woke it.
    poll = asyncio.create_task(bot.get_updates(timeout=50, request_timeout=70))
    await wait_until_polling(http, 1)

    await inject(http, "/start")
    updates = await poll

    assert [u.message.text for u in updates if u.message] == ["/start"]


async def test_a_long_poll_times_out_empty(bot: Bot) -> None:
    started = time.monotonic()

    assert await bot.get_updates(timeout=1) == []
    # It waited its timeout: the requirement itself, a lower bound no busy machine breaks.
    assert time.monotonic() - started >= 0.9


async def test_a_second_poller_ends_the_first_with_409(bot: Bot, http: httpx.AsyncClient) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=50, request_timeout=70))
    await wait_until_polling(http, 1)

    second = await bot.get_updates(timeout=1)

    assert second == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first


async def test_get_updates_conflicts_with_a_webhook(bot: Bot, http: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=50, request_timeout=70))
    await wait_until_polling(http, 1)
    await inject(http, "/start")  # wakes the poll; it returns the update
    assert len(await waiting) == 1

    assert await bot.set_webhook("https://bot.example/hook", secret_token="s3cret") is True

    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("https://bot.example/hook", 1)
    assert (await stats(http))["webhook_url"] == "https://bot.example/hook"
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert await bot.get_updates() == []
    with pytest.raises(TelegramBadRequest, match="HTTPS URL must be provided"):
        await bot.set_webhook("http://bot.example/hook")


async def test_setting_a_webhook_ends_a_waiting_poll(bot: Bot, http: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=50, request_timeout=70))
    await wait_until_polling(http, 1)

    await bot.set_webhook("https://bot.example/hook")

    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await waiting


async def test_aiogram_polling_runs_a_bot_against_the_fake(
    bot: Bot, http: httpx.AsyncClient
) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(Command("ping"))
    async def pong(message: Message) -> None:
        await message.answer("pong", reply_markup=login_keyboard())

    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        await inject(http, "/ping")
        response = await http.get(
            "/_test/wait", params={"chat_id": CHAT, "count": 1, "timeout": 10}
        )
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 10)

    assert response.status_code == 200
    assert [m["text"] for m in response.json()] == ["pong"]


# ---- validation ----


async def test_text_limits(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "я" * 4097)
    assert (await bot.send_message(CHAT, "я" * 4096)).text == "я" * 4096
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, " \n ")
    assert (await bot.send_message(CHAT, "  trimmed \n")).text == "trimmed"


async def test_callback_data_is_at_most_64_bytes(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="ж" * 33)]]  # 66 bytes
    )

    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "x", reply_markup=too_long)


async def test_html_is_parsed_into_entities(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")

    sent = await bot.send_message(
        CHAT, '<b>Logged in</b> as <a href="https://x.example">alice</a> &lt;3', parse_mode="HTML"
    )

    assert sent.text == "Logged in as alice <3"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [
        ("bold", 0, 9),
        ("text_link", 13, 5),
    ]
    with pytest.raises(
        TelegramBadRequest, match='Can\'t find end tag corresponding to start tag "b"'
    ):
        await bot.send_message(CHAT, "<b>bold", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "script" at byte offset 0'):
        await bot.send_message(CHAT, "<script>x</script>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=re.escape("Character '.' is reserved")):
        await bot.send_message(CHAT, "Done.", parse_mode="MarkdownV2")


async def test_unknown_parameters_are_rejected(http: httpx.AsyncClient) -> None:
    await inject(http, "/start")

    response = await raw_call(
        http, "sendMessage", json={"chat_id": CHAT, "text": "hi", "colour": 1}
    )

    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: unknown parameter colour",
    }


@pytest.mark.parametrize(
    ("method", "params", "description"),
    [
        ("sendMessage", {"chat_id": CHAT}, "Bad Request: message text is empty"),
        ("sendMessage", {"text": "hi"}, "Bad Request: chat_id is empty"),
        ("answerCallbackQuery", {}, "Bad Request: parameter callback_query_id is required"),
        (
            "sendMessage",
            {"chat_id": CHAT, "text": "hi", "disable_notification": "maybe"},
            "Bad Request: parameter disable_notification must be of type Boolean",
        ),
        (
            "sendMessage",
            {"chat_id": CHAT, "text": "hi", "reply_markup": "{not json"},
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
        (
            "sendMessage",
            {
                "chat_id": CHAT,
                "text": "hi",
                "reply_markup": json.dumps(
                    {"inline_keyboard": [[{"text": "x", "callback_data": "y", "colour": "red"}]]}
                ),
            },
            "Bad Request: unknown parameter reply_markup.inline_keyboard[0][0].colour",
        ),
        (
            "sendMessage",
            {
                "chat_id": CHAT,
                "text": "hi",
                "reply_markup": json.dumps({"inline_keyboard": [[{"callback_data": "y"}]]}),
            },
            "Bad Request: parameter reply_markup.inline_keyboard[0][0].text is required",
        ),
        (
            "sendMessage",
            {
                "chat_id": CHAT,
                "text": "hi",
                "link_preview_options": json.dumps({"is_disabled": "yes"}),
            },
            "Bad Request: parameter link_preview_options.is_disabled must be of type Boolean",
        ),
        (
            "setMyCommands",
            {"commands": json.dumps([{"command": "login"}])},
            "Bad Request: parameter commands[0].description is required",
        ),
        (
            "setMyCommands",
            {
                "commands": json.dumps([{"command": "login", "description": "x"}]),
                "scope": json.dumps({"type": "galaxy"}),
            },
            "Bad Request: parameter scope must be of type BotCommandScope",
        ),
        ("getUpdates", {"limit": "ten"}, "Bad Request: parameter limit must be of type Integer"),
        ("sendPhoto", {"chat_id": CHAT, "photo": "file-id"}, None),
    ],
)
async def test_validation_errors(
    http: httpx.AsyncClient, method: str, params: dict[str, Any], description: str | None
) -> None:
    await inject(http, "/start")

    response = await raw_call(http, method, data=params)  # form-encoded, like aiogram

    assert response.status_code == 400
    expected = description or "Bad Request: method not supported by the fake"
    assert response.json()["description"] == expected


async def test_every_encoding_the_real_server_takes(http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "/go"}]]}

    as_json = await raw_call(
        http, "sendMessage", json={"chat_id": CHAT, "text": "json", "reply_markup": markup}
    )
    as_form = await raw_call(
        http,
        "sendMessage",
        data={"chat_id": str(CHAT), "text": "form", "reply_markup": json.dumps(markup)},
    )
    as_multipart = await raw_call(
        http,
        "sendMessage",
        data={"chat_id": str(CHAT), "text": "multipart"},
        files={"unused": ("a.txt", b"x")},
    )
    as_query = await http.get(f"/bot{TOKEN}/sendMessage", params={"chat_id": CHAT, "text": "query"})

    assert as_json.json()["result"]["reply_markup"] == markup
    assert as_form.json()["result"]["reply_markup"] == markup
    # A file part nobody refers to with attach:// is an unknown parameter.
    assert as_multipart.json()["description"] == "Bad Request: unknown parameter unused"
    assert as_query.json()["result"]["text"] == "query"


async def test_calls_answered_in_front_of_fastapi_answer_as_fastapi_did(
    http: httpx.AsyncClient,
) -> None:
    """GET and POST are answered before FastAPI's routing (botapi.py): with the headers its
    middleware adds, FastAPI's own 400 for a form Starlette cannot parse, and its 405 for any
    other method (its route is still there)."""
    answer = await http.get(f"/bot{TOKEN}/getMe")
    wrong_token = await http.get("/bot1:wrong/getMe")
    broken_form = await http.post(
        f"/bot{TOKEN}/getMe",
        content=b"--x\r\nno headers here",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    other_method = await http.put(f"/bot{TOKEN}/getMe")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content))
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert wrong_token.status_code == 401
    assert wrong_token.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert broken_form.status_code == 400
    assert set(broken_form.json()) == {"detail"}
    assert broken_form.headers["x-frame-options"] == "DENY"
    assert other_method.status_code == 405
    assert set(other_method.headers["allow"].split(", ")) == {"GET", "POST"}


# ---- rate limits ----


async def test_one_message_per_second_per_chat(
    bot: Bot, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    (await http.post("/_test/config", json={"rate_limits": True})).raise_for_status()
    await inject(http, "/start")
    await inject(http, "/start", chat_id=43)
    await bot.send_message(CHAT, "one")

    with pytest.raises(TelegramRetryAfter) as refused:
        await bot.send_message(CHAT, "two")
    await bot.send_message(43, "another chat is not held up")
    clock.advance(0.5)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(CHAT, "too early: retry_after not honoured")
    clock.advance(0.5)
    await bot.send_message(CHAT, "two, after retry_after")

    assert refused.value.retry_after == 1
    assert "Too Many Requests: retry after 1" in refused.value.message
    counters = await stats(http)
    assert (counters["rate_limited"], counters["retry_after_violations"]) == (2, 1)
    texts = [m["text"] for m in (await http.get(f"/_test/chats/{CHAT}/messages")).json()]
    assert texts == ["/start", "one", "two, after retry_after"]  # refused ones are not delivered


async def test_about_thirty_messages_per_second_overall(
    bot: Bot, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    config = {"rate_limits": True, "global_per_s": 3}
    (await http.post("/_test/config", json=config)).raise_for_status()
    for chat_id in range(1, 5):
        await inject(http, "/start", chat_id=chat_id)
    for chat_id in range(1, 4):
        await bot.send_message(chat_id, "ok")

    with pytest.raises(TelegramRetryAfter) as refused:
        await bot.send_message(4, "the fourth in one second")
    clock.advance(1)
    await bot.send_message(4, "next second")

    assert refused.value.retry_after == 1


async def test_twenty_messages_a_minute_to_a_group(
    bot: Bot, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    (await http.post("/_test/config", json={"rate_limits": True})).raise_for_status()
    await inject(http, "/start", chat_id=-77, user_id=5, first_name="Ann")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.from_user is not None
    assert (update.message.chat.id, update.message.chat.type) == (-77, "group")
    assert update.message.from_user.id == 5
    for _ in range(20):
        await bot.send_message(-77, "one a second")
        clock.advance(1)

    with pytest.raises(TelegramRetryAfter) as refused:
        await bot.send_message(-77, "the 21st in a minute")
    clock.advance(40)  # the first is a minute old now
    await bot.send_message(-77, "after a minute")

    assert refused.value.retry_after == 40
    assert (await stats(http))["rate_limited"] == 1


async def test_paid_broadcasts_go_past_the_free_limit(
    bot: Bot, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    config = {"rate_limits": True, "global_per_s": 3, "paid_per_s": 5}
    (await http.post("/_test/config", json=config)).raise_for_status()
    for chat_id in range(1, 8):
        await inject(http, "/start", chat_id=chat_id)
    for chat_id in range(1, 4):
        await bot.send_message(chat_id, "free")

    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(4, "a fourth free one in one second")
    await bot.send_message(5, "paid", allow_paid_broadcast=True)
    await bot.send_message(6, "paid", allow_paid_broadcast=True)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(7, "a sixth in one second, even paid", allow_paid_broadcast=True)
    clock.advance(1)
    await bot.send_message(7, "next second")

    counters = await stats(http)
    assert (counters["paid_broadcasts"], counters["rate_limited"]) == (2, 2)
    assert counters["config"]["paid_per_s"] == 5


async def test_a_429_answer_is_raw_telegram(http: httpx.AsyncClient) -> None:
    (await http.post("/_test/config", json={"rate_limits": True})).raise_for_status()
    await inject(http, "/start")
    await raw_call(http, "sendMessage", data={"chat_id": CHAT, "text": "one"})

    response = await raw_call(http, "sendMessage", data={"chat_id": CHAT, "text": "two"})

    assert response.status_code == 429
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }


# ---- the test API ----


async def test_wait_returns_when_the_bot_has_answered(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    waiting = asyncio.create_task(
        http.get("/_test/wait", params={"chat_id": CHAT, "count": 2, "timeout": 25})
    )
    await eventually(lambda: _waiting(http), what="the waiting /_test/wait")
    await bot.send_message(CHAT, "one")
    await bot.send_message(CHAT, "two")

    response = await waiting

    assert response.status_code == 200
    assert [m["text"] for m in response.json()] == ["one", "two"]
    timed_out = await http.get("/_test/wait", params={"chat_id": CHAT, "count": 3, "timeout": 0.2})
    assert timed_out.status_code == 408
    assert timed_out.json()["detail"] == "2 of the 3 bot messages wanted came within 0.2 s"
    assert len(timed_out.json()["messages"]) == 2
    after = await http.get("/_test/wait", params={"chat_id": CHAT, "after": 2, "timeout": 0.2})
    assert [m["text"] for m in after.json()] == ["two"]


async def test_a_burst_of_a_thousand_in_and_out(bot: Bot, http: httpx.AsyncClient) -> None:
    # A correctness test: how fast it runs is bench/'s business (issue 9: no timed assertions).
    started = time.monotonic()
    burst = [{"chat_id": 1000 + i, "text": f"/start {i}"} for i in range(1000)]

    injected = (await http.post("/_test/inject_many", json={"messages": burst})).json()
    received: list[int] = []
    offset = None
    while len(received) < 1000:
        updates = await bot.get_updates(offset=offset, limit=100)
        assert len(updates) == 100
        received += [u.update_id for u in updates]
        offset = updates[-1].update_id + 1
    assert await bot.get_updates(offset=offset) == []  # confirms the last batch
    sends = [bot.send_message(1000 + i, f"reply {i}") for i in range(1000)]
    sent = await asyncio.gather(*sends)
    elapsed = time.monotonic() - started

    assert received == [r["update_id"] for r in injected]
    assert all(m.message_id == 2 for m in sent)
    counters = await stats(http)
    assert counters["calls"]["sendMessage"] == 1000
    assert counters["pending_updates"] == 0
    print(f"1000 in and 1000 out took {elapsed:.1f}s")
    chats = (await http.get("/_test/chats")).json()
    assert len(chats) == 1000 and all(c["bot_messages"] == 1 for c in chats)


async def test_inject_many_answers_alike_in_front_of_fastapi_and_behind_it(
    http: httpx.AsyncClient, server: str
) -> None:
    """A JSON body with the right secret is answered before FastAPI (inject.py); any other
    request reaches FastAPI's route with its body intact, so every refusal is FastAPI's."""
    one = {"messages": [{"chat_id": CHAT, "text": "/one"}]}
    two = {"messages": [{"chat_id": CHAT, "text": "/two"}]}

    fast = await http.post("/_test/inject_many", json=one)
    routed = await http.post(
        "/_test/inject_many",
        content=json.dumps(two).encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    refused = await http.post(
        "/_test/inject_many", json={"messages": [{"chat_id": 0, "text": "/zero"}]}
    )
    not_json = await http.post(
        "/_test/inject_many", content=b"{", headers={"content-type": "application/json"}
    )
    async with httpx.AsyncClient(base_url=server) as stranger:
        no_secret = await stranger.post("/_test/inject_many", json=one)
        wrong_secret = await stranger.post(
            "/_test/inject_many", json=one, headers={"X-Test-Api-Secret": "x" * 40}
        )

    assert (fast.status_code, routed.status_code) == (200, 200)
    assert [r["message_id"] for r in [*fast.json(), *routed.json()]] == [1, 2]
    assert fast.json()[0]["update_id"] + 1 == routed.json()[0]["update_id"]
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["x-frame-options"] == routed.headers["x-frame-options"] == "DENY"
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "messages", 0, "chat_id"]
    assert not_json.status_code == 422
    assert (no_secret.status_code, wrong_secret.status_code) == (401, 403)
    texts = [m["text"] for m in (await http.get(f"/_test/chats/{CHAT}/messages")).json()]
    assert texts == ["/one", "/two"]


async def test_reset_forgets_everything(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    await bot.send_message(CHAT, "hi")
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    (await http.post("/_test/config", json={"rate_limits": True})).raise_for_status()

    (await http.post("/_test/reset")).raise_for_status()

    counters = await stats(http)
    assert counters["pending_updates"] == 0
    assert counters["next_update_id"] == 1
    assert counters["commands"] == {}
    assert counters["config"]["rate_limits"] is False
    assert (await http.get("/_test/chats")).json() == []
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(CHAT, "hi again")


async def test_delete_message_and_edit_markup(bot: Bot, http: httpx.AsyncClient) -> None:
    await inject(http, "/start")
    sent = await bot.send_message(CHAT, "menu", reply_markup=login_keyboard())

    edited = await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id)
    assert await bot.delete_message(CHAT, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(CHAT, sent.message_id)
    assert await bot.send_chat_action(CHAT, "typing") is True
