"""The client's sending limits against the fake Telegram enforcing Telegram's (over real HTTP):
30 messages a second overall, one a second to a chat, paid broadcasts past the free rate and a
group's 20 messages a minute, with no 429 earned and no more paid broadcasts than the free rate
leaves to pay for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support.clock import FakeClock
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi
from tests.support.waiting import HOPELESS_S

from tggate.client.retry import Backoff
from tggate.client.sender import Delivery, Sender
from tggate.client.telegram import HttpTelegramApi
from tggate.core.replies import Reply
from tggate_sandbox.fakes.telegram.app import create_app as create_fake_telegram

TOKEN = "123456:client-limits-bot-token"
INSTANT = Backoff(initial_s=0, max_s=0)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[str, FakeClock]]:
    """One fake Telegram for the module, on a clock the test moves; reset for each test."""
    clock = FakeClock(1_000.0)
    app = create_fake_telegram(token=TOKEN, clock=clock, test_api_secret=TEST_API_SECRET)
    with run_asgi(app) as url:
        yield url, clock


@pytest.fixture
async def person(shared: tuple[str, FakeClock]) -> AsyncIterator[httpx.AsyncClient]:
    url, clock = shared
    async with httpx.AsyncClient(base_url=url, headers=TEST_API, timeout=30) as http:
        (await http.post("/_test/reset")).raise_for_status()
        clock.now = 1_000.0
        yield http


@pytest.fixture
async def telegram(shared: tuple[str, FakeClock]) -> AsyncIterator[HttpTelegramApi]:
    async with HttpTelegramApi.open(token=TOKEN, api_url=shared[0], request_timeout_s=10) as api:
        yield api


async def stats(person: httpx.AsyncClient) -> dict[str, Any]:
    found: dict[str, Any] = (await person.get("/_test/stats")).json()
    return found


def bunching_proxy(upstream: str, *, hold: int) -> Starlette:
    """Between the client and Telegram, a network that bunches requests up: the first `hold`
    sendMessage requests are held until all of them have come, then go on at once, so Telegram
    counts a window's worth of messages, sent evenly spaced, at the same moment."""
    held = 0
    all_in: asyncio.Event | None = None
    clients: list[httpx.AsyncClient] = []

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # One client, made in the proxy's own event loop: the held requests go on together.
        async with httpx.AsyncClient(base_url=upstream) as http:
            clients.append(http)
            yield

    async def forward(request: Request) -> Response:
        nonlocal held, all_in
        all_in = all_in or asyncio.Event()
        if request.url.path.endswith("/sendMessage") and held < hold:
            held += 1
            if held == hold:
                all_in.set()
            await all_in.wait()
        answer = await clients[0].request(
            request.method,
            request.url.path,
            content=await request.body(),
            headers={"content-type": request.headers.get("content-type", "")},
        )
        return Response(answer.content, answer.status_code, media_type="application/json")

    routes = [Route("/{path:path}", forward, methods=["GET", "POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


async def test_a_window_answered_at_once_holds_the_next_message_a_window_after() -> None:
    # The sender spaces messages 1/30 s apart; the network delivers the first 30 together at
    # the end of that second, and Telegram counts them then. The 31st may go only a second
    # after their answers, not a second after they left: the permits' window, not the spacing.
    app = create_fake_telegram(token=TOKEN, test_api_secret=TEST_API_SECRET)  # real clock
    with run_asgi(app) as url, run_asgi(bunching_proxy(url, hold=30)) as proxied:
        async with (
            httpx.AsyncClient(base_url=url, headers=TEST_API, timeout=30) as person,
            HttpTelegramApi.open(token=TOKEN, api_url=proxied, request_timeout_s=10) as telegram,
        ):
            chats = list(range(1, 61))  # two windows' worth
            body = {"messages": [{"chat_id": c, "text": "/start"} for c in chats]}
            (await person.post("/_test/inject_many", json=body)).raise_for_status()
            (await person.post("/_test/config", json={"rate_limits": True})).raise_for_status()
            sender = Sender(telegram, global_per_s=30, per_chat_interval_s=1, backoff=INSTANT)

            async with asyncio.timeout(HOPELESS_S):
                results = await asyncio.gather(
                    *(sender.send(c, Reply(f"news for {c}")) for c in chats)
                )

            assert results == [Delivery.SENT] * 60
            counters = await stats(person)
            assert counters["rate_limited"] == 0  # not one message past Telegram's 30 a second
            chats_seen = (await person.get("/_test/chats")).json()
            assert sum(c["bot_messages"] for c in chats_seen) == 60


async def test_messages_to_one_person_go_a_second_apart(
    person: httpx.AsyncClient, telegram: HttpTelegramApi, shared: tuple[str, FakeClock]
) -> None:
    clock = shared[1]
    chat = 4002
    (
        await person.post("/_test/inject", json={"chat_id": chat, "text": "/start"})
    ).raise_for_status()
    (await person.post("/_test/config", json={"rate_limits": True})).raise_for_status()

    async def sleep(seconds: float) -> None:  # one chat: its waits follow each other
        clock.advance(seconds)
        await asyncio.sleep(0)

    sender = Sender(
        telegram,
        global_per_s=30,
        per_chat_interval_s=1,
        backoff=INSTANT,
        monotonic=clock,
        sleep=sleep,
    )
    started = clock.now
    for i in range(5):
        assert await sender.send(chat, Reply(f"m{i}")) is Delivery.SENT

    counters = await stats(person)
    assert counters["rate_limited"] == 0  # not one message inside the chat's second
    texts = [m["text"] for m in (await person.get(f"/_test/chats/{chat}/messages")).json()]
    assert texts == ["/start", *(f"m{i}" for i in range(5))]
    assert clock.now - started >= 4  # each waited a full second after the one before


async def test_paid_broadcasts_carry_what_the_free_rate_cannot(
    person: httpx.AsyncClient, telegram: HttpTelegramApi
) -> None:
    chats = list(range(1, 201))
    body = {"messages": [{"chat_id": c, "text": "/start"} for c in chats]}
    (await person.post("/_test/inject_many", json=body)).raise_for_status()
    config = {"rate_limits": True, "global_per_s": 30, "paid_per_s": 1000}
    (await person.post("/_test/config", json=config)).raise_for_status()
    sender = Sender(
        telegram, global_per_s=30, per_chat_interval_s=1, paid_per_s=1000, backoff=INSTANT
    )

    # Ends a hopeless wait only: a sender that never pays earns 429s, and on this fake's clock,
    # which stands still, it would retry them forever instead of failing.
    async with asyncio.timeout(HOPELESS_S):
        results = await asyncio.gather(*(sender.send(c, Reply(f"news for {c}")) for c in chats))

    assert results == [Delivery.SENT] * 200
    counters = await stats(person)
    assert counters["rate_limited"] == 0
    # The first 30 within the free rate, the other 170 paid: no Star spent needlessly.
    assert counters["paid_broadcasts"] == 170
    assert sum(c["bot_messages"] for c in (await person.get("/_test/chats")).json()) == 200


async def test_a_group_gets_twenty_messages_a_minute(
    person: httpx.AsyncClient, telegram: HttpTelegramApi, shared: tuple[str, FakeClock]
) -> None:
    clock = shared[1]
    group = -4001
    message = {"chat_id": group, "user_id": 7, "text": "/start"}
    (await person.post("/_test/inject", json=message)).raise_for_status()
    (await person.post("/_test/config", json={"rate_limits": True})).raise_for_status()

    async def sleep(seconds: float) -> None:  # one chat: its waits follow each other
        clock.advance(seconds)
        await asyncio.sleep(0)

    sender = Sender(
        telegram,
        global_per_s=30,
        per_chat_interval_s=1,
        group_per_minute=20,
        backoff=INSTANT,
        monotonic=clock,
        sleep=sleep,
    )
    started = clock.now
    for i in range(25):
        assert await sender.send(group, Reply(f"m{i}")) is Delivery.SENT

    counters = await stats(person)
    assert counters["rate_limited"] == 0  # not one message past Telegram's group limit
    texts = [m["text"] for m in (await person.get(f"/_test/chats/{group}/messages")).json()]
    assert texts == ["/start", *(f"m{i}" for i in range(25))]
    assert clock.now - started >= 60  # the 21st waited for the first to be a minute old
