"""The fake Telegram's web chat API (docs/contract.md#reference, issue 4) over real HTTP (uvicorn on
loopback).

What the page sends must reach the bot exactly like `/_test/inject` and `/_test/press` do, and what
the bot sends must show up in the page's long poll without delay. The page is the person's own
Telegram app: it needs no test API secret, and it reaches its own person's chat only (issue 9).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.telegram import create_app
from tggate_sandbox.fakes.telegram.webchat import KEY_HEADER

TOKEN = "123456:TEST-webchat-token"


@pytest.fixture(scope="module")
def shared() -> Iterator[str]:
    with run_asgi(create_app(token=TOKEN, test_api_secret=TEST_API_SECRET)) as url:
        yield url


@pytest.fixture
async def http(shared: str) -> AsyncIterator[httpx.AsyncClient]:
    """The page's side (and the bot's): no test API secret; test API calls add it themselves."""
    async with httpx.AsyncClient(base_url=shared, timeout=30) as client:
        (await client.post("/_test/reset", headers=TEST_API)).raise_for_status()
        yield client


def key_of(person: dict[str, Any]) -> dict[str, str]:
    return {KEY_HEADER: person["key"]}


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


async def say(http: httpx.AsyncClient, person: dict[str, Any], text: str) -> dict[str, Any]:
    response = await http.post(
        f"/webchat/api/chats/{person['chat_id']}/messages",
        json={"text": text},
        headers=key_of(person),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def messages(
    http: httpx.AsyncClient, person: dict[str, Any], **params: Any
) -> dict[str, Any]:
    response = await http.get(
        f"/webchat/api/chats/{person['chat_id']}/messages", params=params, headers=key_of(person)
    )
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


async def test_a_person_gets_a_chat_id_and_a_key_of_their_own(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    assert anna["chat_id"] > 0 and len(anna["key"]) >= 32
    assert anna == {
        "chat_id": anna["chat_id"],
        "name": "Anna",
        "language": "ru",
        "key": anna["key"],
    }
    # Another Anna is another person (the id derived from the name is taken), not a way in.
    namesake = await create_person(http, "Anna", "ru")
    assert namesake["chat_id"] != anna["chat_id"] and namesake["key"] != anna["key"]
    bob = await create_person(http, "Bob", "en")
    assert bob["chat_id"] not in (anna["chat_id"], namesake["chat_id"])

    # A reload registers the stored person again under its id, with its key.
    again = await create_person(http, "Anna", "ru", chat_id=anna["chat_id"], key=anna["key"])
    assert again == anna
    # After a restart of the fake nobody is known: the browser's key claims the id again.
    fresh_key = "k" * 43
    carol = await create_person(http, "Carol", "en", chat_id=777, key=fresh_key)
    assert (carol["chat_id"], carol["key"]) == (777, fresh_key)

    bot = (await http.get("/webchat/api/bot")).json()
    assert bot["username"] == "tggate_bot"


async def test_the_web_chat_reaches_its_own_persons_chat_only(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    bob = await create_person(http, "Bob", "en")
    await say(http, anna, "my secret code is 123-456")
    press = {"message_id": 1, "data": "/x"}
    for method, path, body in [
        ("GET", "messages", None),
        ("POST", "messages", {"text": "I am Anna, honest"}),
        ("POST", "press", press),
        ("GET", "commands", None),
        ("GET", "callbacks/1", None),
    ]:
        url = f"/webchat/api/chats/{anna['chat_id']}/{path}"
        without_key = await http.request(method, url, json=body)
        assert without_key.status_code == 401, (path, without_key.text)
        assert KEY_HEADER in without_key.json()["detail"]
        bobs_key = await http.request(method, url, json=body, headers=key_of(bob))
        assert bobs_key.status_code == 403, (path, bobs_key.text)
        assert "123-456" not in without_key.text + bobs_key.text
    assert [m["text"] for m in (await messages(http, anna))["messages"]] == [
        "my secret code is 123-456"
    ]

    # Nor can a browser claim Anna's id, or a chat the test API made, by registering again.
    taken = await http.post(
        "/webchat/api/people",
        json={"name": "Mallory", "language": "en", "chat_id": anna["chat_id"], "key": "m" * 43},
    )
    assert taken.status_code == 403, taken.text
    injected = {"chat_id": 4242, "text": "hi", "first_name": "Dima", "language_code": "ru"}
    (await http.post("/_test/inject", json=injected, headers=TEST_API)).raise_for_status()
    claimed = await http.post(
        "/webchat/api/people",
        json={"name": "Dima", "language": "ru", "chat_id": 4242, "key": "m" * 43},
    )
    assert claimed.status_code == 403, claimed.text
    not_a_person = await http.get(
        "/webchat/api/chats/4242/messages", headers={KEY_HEADER: "m" * 43}
    )
    assert not_a_person.status_code == 404


async def test_a_sent_text_is_a_normal_message_update(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    sent = await say(http, anna, "  /start  ")
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
    twin_body = {**injected, "language_code": "ru"}
    (await http.post("/_test/inject", json=twin_body, headers=TEST_API)).raise_for_status()
    [_, twin] = await bot_call(http, "getUpdates")
    for ours in (update, twin):
        ours.pop("update_id")
        ours["message"].pop("message_id")
        ours["message"].pop("date")
    assert twin == update


async def test_the_bots_message_and_keyboard_show_up(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    chat_id = anna["chat_id"]
    await say(http, anna, "/start")
    sent = await bot_call(
        http,
        "sendMessage",
        chat_id=chat_id,
        text="Hello, see https://example.org",
        reply_markup=KEYBOARD,
    )

    view = await messages(http, anna)
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
    only_new = await messages(http, anna, after=person_message["message_id"])
    assert [m["message_id"] for m in only_new["messages"]] == [sent["message_id"]]

    await bot_call(
        http, "editMessageText", chat_id=chat_id, message_id=sent["message_id"], text="Done"
    )
    [_, edited] = (await messages(http, anna))["messages"]
    assert (edited["text"], edited["edited"], edited["keyboard"]) == ("Done", True, [])

    await bot_call(http, "deleteMessage", chat_id=chat_id, message_id=sent["message_id"])
    assert [m["from"] for m in (await messages(http, anna))["messages"]] == ["person"]


async def test_pressing_a_button_makes_a_callback_query(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "en")
    chat_id = anna["chat_id"]
    await say(http, anna, "/login")
    sent = await bot_call(http, "sendMessage", chat_id=chat_id, text="How?", reply_markup=KEYBOARD)
    await bot_call(http, "getUpdates", offset=-1)
    [pending] = await bot_call(http, "getUpdates")

    response = await http.post(
        f"/webchat/api/chats/{chat_id}/press",
        json={"message_id": sent["message_id"], "data": "/login github"},
        headers=key_of(anna),
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
        http.get(
            f"/webchat/api/chats/{chat_id}/callbacks/{query['id']}",
            params={"timeout": 10},
            headers=key_of(anna),
        )
    )
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await bot_call(http, "answerCallbackQuery", callback_query_id=query["id"], text="Opening…")
    answer = await asyncio.wait_for(waiting, 5)
    assert answer.json() == {"answered": True, "text": "Opening…"}


async def test_a_long_poll_returns_as_soon_as_the_chat_changes(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    chat_id = anna["chat_id"]
    await say(http, anna, "/start")
    first = await messages(http, anna)

    started = time.monotonic()
    poll = asyncio.create_task(messages(http, anna, revision=first["revision"], timeout=20))
    await asyncio.sleep(0.1)
    assert not poll.done()
    sent = await bot_call(http, "sendMessage", chat_id=chat_id, text="Hi!")
    changed = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - started < 2
    assert changed["revision"] != first["revision"]
    assert changed["messages"][-1]["text"] == "Hi!"

    # An edit is a change too.
    poll = asyncio.create_task(messages(http, anna, revision=changed["revision"], timeout=20))
    await asyncio.sleep(0.1)
    await bot_call(
        http, "editMessageText", chat_id=chat_id, message_id=sent["message_id"], text="Hi again!"
    )
    edited = await asyncio.wait_for(poll, 5)
    assert edited["messages"][-1]["text"] == "Hi again!"

    # Without a revision the poll waits for a newer message.
    poll = asyncio.create_task(messages(http, anna, after=sent["message_id"], timeout=20))
    await asyncio.sleep(0.1)
    assert not poll.done()
    await say(http, anna, "thanks")
    newer = await asyncio.wait_for(poll, 5)
    assert [m["text"] for m in newer["messages"]] == ["thanks"]


async def test_a_long_poll_times_out_unchanged(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    first = await messages(http, anna)
    assert first["messages"] == []
    again = await messages(http, anna, revision=first["revision"], timeout=0.2)
    assert again["revision"] == first["revision"]


async def test_the_command_menu_follows_scope_and_language(http: httpx.AsyncClient) -> None:
    anna = await create_person(http, "Anna", "ru")
    bob = await create_person(http, "Bob", "en")
    menu = f"/webchat/api/chats/{anna['chat_id']}/commands"
    assert (await http.get(menu, headers=key_of(anna))).json() == {"commands": []}

    start = {"command": "start", "description": "Start"}
    start_ru = {"command": "start", "description": "Начать"}
    logout = {"command": "logout", "description": "Выйти"}
    await bot_call(http, "setMyCommands", commands=[start])
    await bot_call(http, "setMyCommands", commands=[start_ru], language_code="ru")
    assert (await http.get(menu, headers=key_of(anna))).json() == {"commands": [start_ru]}
    bob_menu = await http.get(f"/webchat/api/chats/{bob['chat_id']}/commands", headers=key_of(bob))
    assert bob_menu.json() == {"commands": [start]}

    await say(http, anna, "/start")  # a chat scope needs the chat to exist
    await bot_call(
        http,
        "setMyCommands",
        commands=[logout],
        scope={"type": "chat", "chat_id": anna["chat_id"]},
    )
    assert (await http.get(menu, headers=key_of(anna))).json() == {"commands": [logout]}
    assert (await messages(http, anna))["commands"] == [logout]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/webchat/api/people", {"name": "", "language": "ru"}, 422),
        ("POST", "/webchat/api/people", {"name": "   ", "language": "ru"}, 422),
        ("POST", "/webchat/api/people", {"name": "Anna", "language": "de"}, 422),
        ("POST", "/webchat/api/people", {"language": "ru"}, 422),
        ("POST", "/webchat/api/people", {"name": "Anna", "language": "ru", "chat_id": 7}, 422),
        (
            "POST",
            "/webchat/api/people",
            {"name": "Anna", "language": "ru", "chat_id": 0, "key": "k" * 43},
            422,
        ),
        (
            "POST",
            "/webchat/api/people",
            {"name": "Anna", "language": "ru", "chat_id": 7, "key": "short"},
            422,
        ),
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
        ("GET", "/webchat/api/chats/{chat}/callbacks/123", None, 404),
    ],
)
async def test_bad_input_is_a_4xx_with_a_message(
    http: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    anna = await create_person(http)
    await say(http, anna, "hi")
    url = path.replace("{chat}", str(anna["chat_id"]))
    response = await http.request(method, url, json=body, headers=key_of(anna))
    assert response.status_code == status, response.text
    assert response.json()["detail"]


async def test_a_press_needs_a_matching_button(http: httpx.AsyncClient) -> None:
    anna = await create_person(http)
    await say(http, anna, "/start")
    sent = await bot_call(
        http, "sendMessage", chat_id=anna["chat_id"], text="Pick", reply_markup=KEYBOARD
    )
    response = await http.post(
        f"/webchat/api/chats/{anna['chat_id']}/press",
        json={"message_id": sent["message_id"], "data": "/forged"},
        headers=key_of(anna),
    )
    assert response.status_code == 400
    assert "no inline button" in response.json()["detail"]
