"""The fake Telegram's web chat API (SPEC §7, issue 4) over real HTTP (uvicorn on loopback).

What the page sends must reach the bot exactly like `/_test/inject` and `/_test/press` do, and what
the bot sends must show up in the page's long poll without delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.telegram import create_app

TOKEN = "123456:TEST-webchat-token"


@pytest.fixture(scope="module")
def shared() -> Iterator[str]:
    with run_asgi(create_app(token=TOKEN)) as url:
        yield url


@pytest.fixture
async def http(shared: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared, timeout=30) as client:
        (await client.post("/_test/reset")).raise_for_status()
        yield client


async def bot_call(http: httpx.AsyncClient, method: str, **params: Any) -> Any:
    response = await http.post(f"/bot{TOKEN}/{method}", json=params)
    body = response.json()
    assert body["ok"], body
    return body["result"]


async def create_person(
    http: httpx.AsyncClient, name: str = "Anna", language: str = "ru", **extra: Any
) -> dict[str, Any]:
    response = await http.post(
        "/webchat/api/people", json={"name": name, "language": language, **extra}
    )
    assert response.status_code == 201, response.text
    person: dict[str, Any] = response.json()
    return person


async def say(http: httpx.AsyncClient, chat_id: int, text: str) -> dict[str, Any]:
    response = await http.post(f"/webchat/api/chats/{chat_id}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def messages(http: httpx.AsyncClient, chat_id: int, **params: Any) -> dict[str, Any]:
    response = await http.get(f"/webchat/api/chats/{chat_id}/messages", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


KEYBOARD = {
    "inline_keyboard": [
        [{"text": "Log in with GitHub", "callback_data": "/login github"}],
        [{"text": "Docs", "url": "https://example.org/docs"}],
    ]
}


async def test_the_page_and_its_assets_are_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for marker in ('name="viewport"', 'id="person-name"', 'id="message-input"', 'id="send"'):
        assert marker in page.text
    script = await http.get("/webchat/static/webchat.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script.text  # bot text is only ever set as text
    assert (await http.get("/webchat/static/webchat.css")).status_code == 200
    assert (await http.get("/webchat/static/secrets.txt")).status_code == 404


async def test_a_person_gets_a_stable_chat_id(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    assert anna["chat_id"] > 0
    assert anna == {"chat_id": anna["chat_id"], "name": "Anna", "language": "ru", "messages": 0}
    assert (await create_person(http, "Anna", "ru"))["chat_id"] == anna["chat_id"]
    bob = await create_person(http, "Bob", "en")
    assert bob["chat_id"] != anna["chat_id"]
    # A reload registers the stored person again under its id.
    again = await create_person(http, "Carol", "en", chat_id=777)
    assert again["chat_id"] == 777

    listed = (await http.get("/webchat/api/people")).json()
    assert listed["bot"]["username"] == "tggate_bot"
    ids = {p["chat_id"]: p for p in listed["people"]}
    assert {anna["chat_id"], bob["chat_id"], 777} <= ids.keys()


async def test_people_include_chats_injected_elsewhere(http: httpx.AsyncClient) -> None:
    injected = {"chat_id": 4242, "text": "hi", "first_name": "Dima", "language_code": "ru"}
    (await http.post("/_test/inject", json=injected)).raise_for_status()
    people = (await http.get("/webchat/api/people")).json()["people"]
    assert {"chat_id": 4242, "name": "Dima", "language": "ru", "messages": 1} in people
    # Such a person can write from the page right away.
    await say(http, 4242, "again")
    assert [m["text"] for m in (await messages(http, 4242))["messages"]] == ["hi", "again"]


async def test_a_sent_text_is_a_normal_message_update(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    sent = await say(http, anna["chat_id"], "  /start  ")
    assert sent["queued"] is True

    [update] = await bot_call(http, "getUpdates")
    assert update["update_id"] == sent["update_id"]
    message = update["message"]
    assert message["text"] == "/start"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["from"] == {
        "id": anna["chat_id"],
        "is_bot": False,
        "first_name": "Anna",
        "language_code": "ru",
    }
    assert message["chat"] == {"id": anna["chat_id"], "first_name": "Anna", "type": "private"}

    # The same message through the test API makes the same update, ids and date aside.
    injected = {"chat_id": anna["chat_id"], "text": "/start", "first_name": "Anna"}
    (await http.post("/_test/inject", json={**injected, "language_code": "ru"})).raise_for_status()
    [_, twin] = await bot_call(http, "getUpdates")
    for ours in (update, twin):
        ours.pop("update_id")
        ours["message"].pop("message_id")
        ours["message"].pop("date")
    assert twin == update


async def test_the_bots_message_and_keyboard_show_up(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    chat_id = anna["chat_id"]
    await say(http, chat_id, "/start")
    sent = await bot_call(
        http,
        "sendMessage",
        chat_id=chat_id,
        text="Hello, see https://example.org",
        reply_markup=KEYBOARD,
    )

    view = await messages(http, chat_id)
    person_message, bot_message = view["messages"]
    assert person_message["from"] == "person"
    assert bot_message == {
        "message_id": sent["message_id"],
        "from": "bot",
        "text": "Hello, see https://example.org",
        "entities": [],
        "date": sent["date"],
        "edited": False,
        "keyboard": [
            [{"text": "Log in with GitHub", "kind": "callback", "data": "/login github"}],
            [{"text": "Docs", "kind": "url", "url": "https://example.org/docs"}],
        ],
    }
    only_new = await messages(http, chat_id, after=person_message["message_id"])
    assert [m["message_id"] for m in only_new["messages"]] == [sent["message_id"]]

    await bot_call(
        http, "editMessageText", chat_id=chat_id, message_id=sent["message_id"], text="Done"
    )
    [_, edited] = (await messages(http, chat_id))["messages"]
    assert (edited["text"], edited["edited"], edited["keyboard"]) == ("Done", True, [])

    await bot_call(http, "deleteMessage", chat_id=chat_id, message_id=sent["message_id"])
    assert [m["from"] for m in (await messages(http, chat_id))["messages"]] == ["person"]


async def test_pressing_a_button_makes_a_callback_query(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "en")
    chat_id = anna["chat_id"]
    await say(http, chat_id, "/login")
    sent = await bot_call(http, "sendMessage", chat_id=chat_id, text="How?", reply_markup=KEYBOARD)
    await bot_call(http, "getUpdates", offset=-1)
    [pending] = await bot_call(http, "getUpdates")

    response = await http.post(
        f"/webchat/api/chats/{chat_id}/press",
        json={"message_id": sent["message_id"], "data": "/login github"},
    )
    assert response.status_code == 200, response.text
    pressed = response.json()

    [update] = await bot_call(http, "getUpdates", offset=pending["update_id"] + 1)
    query = update["callback_query"]
    assert query["id"] == pressed["callback_query_id"]
    assert query["data"] == "/login github"
    assert query["from"]["id"] == chat_id
    assert query["from"]["language_code"] == "en"
    assert query["message"]["message_id"] == sent["message_id"]

    # The page waits for the bot's answer to show it, as Telegram shows a toast.
    waiting = asyncio.create_task(
        http.get(f"/webchat/api/callbacks/{query['id']}", params={"timeout": 10})
    )
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await bot_call(http, "answerCallbackQuery", callback_query_id=query["id"], text="Opening…")
    answer = await asyncio.wait_for(waiting, 5)
    assert answer.json() == {"answered": True, "text": "Opening…"}


async def test_a_long_poll_returns_as_soon_as_the_chat_changes(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    chat_id = anna["chat_id"]
    await say(http, chat_id, "/start")
    first = await messages(http, chat_id)

    started = time.monotonic()
    poll = asyncio.create_task(messages(http, chat_id, revision=first["revision"], timeout=20))
    await asyncio.sleep(0.1)
    assert not poll.done()
    sent = await bot_call(http, "sendMessage", chat_id=chat_id, text="Hi!")
    changed = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - started < 2
    assert changed["revision"] != first["revision"]
    assert changed["messages"][-1]["text"] == "Hi!"

    # An edit is a change too.
    poll = asyncio.create_task(messages(http, chat_id, revision=changed["revision"], timeout=20))
    await asyncio.sleep(0.1)
    await bot_call(
        http, "editMessageText", chat_id=chat_id, message_id=sent["message_id"], text="Hi again!"
    )
    edited = await asyncio.wait_for(poll, 5)
    assert edited["messages"][-1]["text"] == "Hi again!"

    # Without a revision the poll waits for a newer message.
    poll = asyncio.create_task(messages(http, chat_id, after=sent["message_id"], timeout=20))
    await asyncio.sleep(0.1)
    assert not poll.done()
    await say(http, chat_id, "thanks")
    newer = await asyncio.wait_for(poll, 5)
    assert [m["text"] for m in newer["messages"]] == ["thanks"]


async def test_a_long_poll_times_out_unchanged(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    first = await messages(http, anna["chat_id"])
    assert first["messages"] == []
    again = await messages(http, anna["chat_id"], revision=first["revision"], timeout=0.2)
    assert again["revision"] == first["revision"]


async def test_the_command_menu_follows_scope_and_language(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    bob = await create_person(http, "Bob", "en")
    menu = f"/webchat/api/chats/{anna['chat_id']}/commands"
    assert (await http.get(menu)).json() == {"commands": []}

    start = {"command": "start", "description": "Start"}
    start_ru = {"command": "start", "description": "Начать"}
    logout = {"command": "logout", "description": "Выйти"}
    await bot_call(http, "setMyCommands", commands=[start])
    await bot_call(http, "setMyCommands", commands=[start_ru], language_code="ru")
    assert (await http.get(menu)).json() == {"commands": [start_ru]}
    bob_menu = await http.get(f"/webchat/api/chats/{bob['chat_id']}/commands")
    assert bob_menu.json() == {"commands": [start]}

    await say(http, anna["chat_id"], "/start")  # a chat scope needs the chat to exist
    await bot_call(
        http,
        "setMyCommands",
        commands=[logout],
        scope={"type": "chat", "chat_id": anna["chat_id"]},
    )
    assert (await http.get(menu)).json() == {"commands": [logout]}
    assert (await messages(http, anna["chat_id"]))["commands"] == [logout]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/webchat/api/people", {"name": "", "language": "ru"}, 422),
        ("POST", "/webchat/api/people", {"name": "   ", "language": "ru"}, 422),
        ("POST", "/webchat/api/people", {"name": "Anna", "language": "de"}, 422),
        ("POST", "/webchat/api/people", {"language": "ru"}, 422),
        ("POST", "/webchat/api/people", {"name": "Anna", "language": "ru", "chat_id": 0}, 422),
        ("POST", "/webchat/api/people", {"name": "x" * 65, "language": "ru"}, 422),
        ("POST", "/webchat/api/chats/{chat}/messages", {"text": "x" * 4097}, 422),
        ("POST", "/webchat/api/chats/{chat}/messages", {"text": " \n "}, 422),
        ("POST", "/webchat/api/chats/{chat}/messages", {}, 422),
        ("POST", "/webchat/api/chats/{chat}/messages", {"text": "hi", "extra": 1}, 422),
        ("POST", "/webchat/api/chats/5/messages", {"text": "hi"}, 404),
        ("POST", "/webchat/api/chats/-5/messages", {"text": "hi"}, 422),
        ("POST", "/webchat/api/chats/abc/messages", {"text": "hi"}, 422),
        ("GET", "/webchat/api/chats/5/messages", None, 404),
        ("GET", "/webchat/api/chats/{chat}/messages?timeout=999", None, 422),
        ("GET", "/webchat/api/chats/{chat}/messages?after=-1", None, 422),
        ("GET", "/webchat/api/chats/5/commands", None, 404),
        ("POST", "/webchat/api/chats/{chat}/press", {"message_id": 99, "data": "/x"}, 404),
        ("POST", "/webchat/api/chats/{chat}/press", {"message_id": 1}, 422),
        ("GET", "/webchat/api/callbacks/123", None, 404),
    ],
)
async def test_bad_input_is_a_4xx_with_a_message(
    http: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    anna = await create_person(http)
    await say(http, anna["chat_id"], "hi")
    url = path.replace("{chat}", str(anna["chat_id"]))
    response = await http.request(method, url, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


async def test_a_press_needs_a_matching_button(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    await say(http, anna["chat_id"], "/start")
    sent = await bot_call(
        http, "sendMessage", chat_id=anna["chat_id"], text="Pick", reply_markup=KEYBOARD
    )
    response = await http.post(
        f"/webchat/api/chats/{anna['chat_id']}/press",
        json={"message_id": sent["message_id"], "data": "/forged"},
    )
    assert response.status_code == 400
    assert "no inline button" in response.json()["detail"]
