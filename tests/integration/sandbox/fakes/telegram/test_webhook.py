"""The fake Telegram delivers webhooks as the Bot API server does (tdlib/telegram-bot-api,
WebhookActor.cpp): one chat's updates one after another, chats concurrently up to
max_connections, failures retried with growing delay (Retry-After honoured), getUpdates 409
while a webhook is set, pending updates kept across switches unless dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from tests.support.receiver import Answer, Posted, Receiver, serve_here
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.telegram.app import create_app
from tggate_sandbox.fakes.telegram.state import WebhookOptions

TOKEN = "123456:webhook-tests-bot-token"
SECRET = "webhook-tests-secret_0123"
# A "2 second" retry delay takes 2 ms; a webhook request may take 0.5 s.
OPTIONS = WebhookOptions(local=True, timeout_s=0.5, time_scale=0.001)


@pytest.fixture
def telegram_url() -> Iterator[str]:
    app = create_app(token=TOKEN, test_api_secret=TEST_API_SECRET, webhook=OPTIONS)
    with run_asgi(app) as url:
        yield url


@pytest.fixture
async def api(telegram_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=telegram_url, headers=TEST_API, timeout=30) as client:
        yield client


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def hook(receiver: Receiver) -> AsyncIterator[str]:
    async with serve_here(receiver) as url:
        yield url + "/hook"


async def bot(api: httpx.AsyncClient, method: str, **params: Any) -> Any:
    response = await api.post(f"/bot{TOKEN}/{method}", json=params)
    body = response.json()
    assert body["ok"], body
    return body["result"]


async def bot_error(api: httpx.AsyncClient, method: str, **params: Any) -> tuple[int, str]:
    response = await api.post(f"/bot{TOKEN}/{method}", json=params)
    body = response.json()
    assert not body["ok"], body
    return response.status_code, body["description"]


async def inject(api: httpx.AsyncClient, messages: list[tuple[int, str]]) -> list[int]:
    body = {"messages": [{"chat_id": c, "text": t} for c, t in messages]}
    response = await api.post("/_test/inject_many", json=body)
    response.raise_for_status()
    return [int(r["update_id"]) for r in response.json()]


async def test_updates_are_posted_with_the_secret_and_forgotten_after_a_2xx(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    assert await bot(api, "setWebhook", url=hook, secret_token=SECRET) is True
    ids = await inject(api, [(1, "one"), (1, "two"), (2, "three")])
    await receiver.wait_until(lambda: len(receiver.answered) == 3)
    assert [p.update_id for p in receiver.of_chat(1)] == ids[:2]
    assert {p.secret for p in receiver.posted} == {SECRET}
    assert receiver.posted[0].update["message"]["text"] == "one"
    info = await bot(api, "getWebhookInfo")
    assert info["pending_update_count"] == 0
    assert info["url"] == hook
    assert info["max_connections"] == 40
    assert "last_error_message" not in info


async def test_one_chat_one_update_at_a_time_chats_in_parallel(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    release = asyncio.Event()
    receiver.hold = lambda posted: release if posted.chat_id == 1 else None
    await bot(api, "setWebhook", url=hook)
    await inject(api, [(1, "a1"), (1, "a2"), (1, "a3"), *[(2, f"b{n}") for n in range(5)]])
    # Chat 2's five updates go one after another while chat 1's first one is still open.
    await receiver.wait_until(lambda: len(receiver.of_chat(2)) == 5)
    assert [p.text for p in receiver.of_chat(1)] == ["a1"]
    release.set()
    await receiver.wait_until(lambda: len(receiver.answered) == 8)
    assert [p.text for p in receiver.of_chat(1)] == ["a1", "a2", "a3"]
    assert [p.text for p in receiver.of_chat(2)] == [f"b{n}" for n in range(5)]


async def test_no_more_requests_at_once_than_max_connections(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    gates = {chat: asyncio.Event() for chat in range(1, 7)}
    receiver.hold = lambda posted: gates[posted.chat_id]
    await bot(api, "setWebhook", url=hook, max_connections=2)
    await inject(api, [(chat, "hello") for chat in gates])
    for done in range(len(gates)):
        await receiver.wait_until(lambda done=done: len(receiver.posted) >= min(done + 2, 6))
        gates[receiver.posted[done].chat_id].set()  # answer the oldest open one
    await receiver.wait_until(lambda: len(receiver.answered) == 6)
    assert receiver.peak_in_flight == 2
    assert (await bot(api, "getWebhookInfo"))["max_connections"] == 2


async def test_failures_are_retried_at_once_then_after_2_4_8_seconds(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    failures = {"left": 4}

    def answer(posted: Posted) -> Answer:
        if failures["left"] > 0:
            failures["left"] -= 1
            return Answer(500)
        return Answer(200)

    receiver.answer = answer
    await bot(api, "setWebhook", url=hook)
    [update_id] = await inject(api, [(1, "again")])
    await receiver.wait_until(lambda: any(status == 200 for _, status in receiver.answered))
    attempts = (await api.get("/_test/webhook")).json()["attempts"][str(update_id)]
    assert [a.get("wait") for a in attempts] == [0, 2, 4, 8, None]
    assert attempts[0]["error"] == "Wrong response from the webhook: 500 Internal Server Error"
    info = await bot(api, "getWebhookInfo")
    assert info["last_error_message"].endswith("500 Internal Server Error")
    assert info["last_error_date"] > 0
    assert info["pending_update_count"] == 0


async def test_retry_after_pauses_only_that_chat(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    refused = set()

    def answer(posted: Posted) -> Answer:
        if posted.chat_id == 1 and posted.update_id not in refused:
            refused.add(posted.update_id)
            return Answer(429, headers=(("Retry-After", "3000"),))  # 3 s at time_scale 0.001
        return Answer(200)

    receiver.answer = answer
    await bot(api, "setWebhook", url=hook)
    [paused, *others] = await inject(api, [(1, "later"), *[(2, f"now {n}") for n in range(5)]])
    await receiver.wait_until(lambda: len(receiver.answered) == 7)
    attempts = (await api.get("/_test/webhook")).json()["attempts"]
    assert [a.get("wait") for a in attempts[str(paused)]] == [3000, None]
    # Chat 2 went on while chat 1 waited out its Retry-After.
    order = [p.update_id for p, _ in receiver.answered]
    assert order.index(others[-1]) < len(order) - 1
    assert order[-1] == paused


async def test_a_request_that_times_out_is_delivered_again(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    slow = {"left": 1}

    def answer(posted: Posted) -> Answer:
        if slow["left"]:
            slow["left"] -= 1
            return Answer(200, delay_s=2.0)  # the fake gives up after 0.5 s
        return Answer(200)

    receiver.answer = answer
    await bot(api, "setWebhook", url=hook)
    [update_id] = await inject(api, [(1, "slow")])
    await receiver.wait_until(lambda: len(receiver.answered) == 2)
    assert [p.update_id for p in receiver.posted] == [update_id, update_id]
    attempts = (await api.get("/_test/webhook")).json()["attempts"][str(update_id)]
    assert attempts[0] == {"ok": False, "error": "Timeout expired", "wait": 0}


async def test_getUpdates_is_refused_while_a_webhook_is_set_and_gets_what_is_pending_after(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    release = asyncio.Event()
    receiver.hold = lambda posted: release
    await bot(api, "setWebhook", url=hook)
    first, second = await inject(api, [(1, "in flight"), (1, "waiting")])
    status, description = await bot_error(api, "getUpdates")
    assert status == 409
    assert "webhook is active" in description
    await receiver.wait_until(lambda: len(receiver.posted) == 1)
    # Deleting the webhook drops the request in flight: its update stays, with the one behind.
    assert await bot(api, "deleteWebhook") is True
    release.set()
    updates = await bot(api, "getUpdates")
    assert [u["update_id"] for u in updates] == [first, second]
    assert (await bot(api, "getWebhookInfo"))["url"] == ""


async def test_pending_updates_go_to_a_new_webhook_unless_dropped(
    api: httpx.AsyncClient, receiver: Receiver, hook: str
) -> None:
    kept = await inject(api, [(1, "before the webhook")])
    await bot(api, "setWebhook", url=hook)
    await receiver.wait_until(lambda: len(receiver.answered) == 1)
    assert [p.update_id for p in receiver.posted] == kept
    await bot(api, "deleteWebhook")
    await inject(api, [(1, "dropped")])
    await bot(api, "setWebhook", url=hook, drop_pending_updates=True)
    assert (await bot(api, "getWebhookInfo"))["pending_update_count"] == 0
    await bot(api, "deleteWebhook")
    await inject(api, [(1, "dropped too")])
    await bot(api, "deleteWebhook", drop_pending_updates=True)
    assert await bot(api, "getUpdates") == []


async def test_without_local_mode_a_webhook_is_https_on_telegram_ports() -> None:
    app = create_app(token=TOKEN, test_api_secret=TEST_API_SECRET)
    with run_asgi(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            assert await bot_error(api, "setWebhook", url="http://example.com/hook") == (
                400,
                "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
            )
            assert await bot_error(api, "setWebhook", url="https://example.com:8080/hook") == (
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
            status, _ = await bot_error(
                api, "setWebhook", url="https://example.com/hook", secret_token="not allowed!"
            )
            assert status == 400
