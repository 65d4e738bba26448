"""The sending limits every intake replica shares (docs/webhook.md#limits), against the fake
Telegram enforcing Telegram's over real HTTP: a group's 20 messages a minute and paid broadcasts
past the free rate, kept by two replicas together (each its own Redis client, `Sender` and
`PacedTelegram`, as two processes), with no 429 earned and no Star spent within the free rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tests.integration.client.conftest import PersonApi
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.adapters.redis_intake import RedisSendPace
from tggate.client.retry import Backoff
from tggate.client.sender import Delivery, Sender
from tggate.client.telegram import HttpTelegramApi
from tggate.core.replies import Reply
from tggate.intake.pacing import PacedTelegram
from tggate_sandbox.fakes.telegram.app import create_app as create_fake_telegram
from tggate_sandbox.fakes.telegram.ratelimit import GROUP_WINDOW_S

TOKEN = "123456:intake-pacing-bot-token"
INSTANT = Backoff(initial_s=0, max_s=0)
# The fake Telegram's clock runs this much faster than the real one, so its minute (a group's
# window) passes in two real seconds; the replicas are given that window (`group_window_s`).
SPEED = 30.0


class FastClock:
    """Real time, `SPEED` times faster."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self) -> float:
        return self._start + (time.monotonic() - self._start) * SPEED


@pytest.fixture
def fast_telegram_url() -> Iterator[str]:
    app = create_fake_telegram(token=TOKEN, clock=FastClock(), test_api_secret=TEST_API_SECRET)
    with run_asgi(app) as url:
        yield url


@pytest.fixture
def telegram_url() -> Iterator[str]:
    app = create_fake_telegram(token=TOKEN, test_api_secret=TEST_API_SECRET)
    with run_asgi(app) as url:
        yield url


async def replicas(
    stack: AsyncExitStack, redis_url: str, telegram_url: str, count: int, **pace: Any
) -> list[Sender]:
    """`count` replicas' Senders, each over its own Bot API session and Redis client, built as
    the intake builds its own (src/tggate/intake/service.py): the pace decides the limits and
    which messages are paid; the Sender's own limits never bind."""
    senders = []
    for _ in range(count):
        redis = Redis.from_url(redis_url)
        stack.push_async_callback(redis.aclose)
        telegram = await stack.enter_async_context(
            HttpTelegramApi.open(token=TOKEN, api_url=telegram_url, request_timeout_s=10)
        )
        paced = PacedTelegram(telegram, RedisSendPace(redis, **pace))
        senders.append(
            Sender(
                paced,
                global_per_s=1000,
                per_chat_interval_s=0,
                group_per_minute=1000,
                backoff=INSTANT,
            )
        )
    return senders


@pytest.fixture
async def fast_person(fast_telegram_url: str) -> AsyncIterator[PersonApi]:
    async with httpx.AsyncClient(base_url=fast_telegram_url, headers=TEST_API, timeout=30) as http:
        yield PersonApi(http)


@pytest.fixture
async def person(telegram_url: str) -> AsyncIterator[PersonApi]:
    async with httpx.AsyncClient(base_url=telegram_url, headers=TEST_API, timeout=30) as http:
        yield PersonApi(http)


async def test_a_groups_minute_is_kept_by_all_replicas_together(
    redis_url: str, redis_client: Redis, fast_telegram_url: str, fast_person: PersonApi
) -> None:
    # Five messages a minute to a group (Telegram's 20, fewer to keep the test short): each
    # replica alone would keep it, so without sharing it two would send twice as many.
    group, per_minute, each = -5001, 5, 6
    await fast_person.inject(group, "/start")
    await fast_person.configure(rate_limits=True, group_per_minute=per_minute, per_chat_per_s=1000)
    async with AsyncExitStack() as stack:
        a, b = await replicas(
            stack,
            redis_url,
            fast_telegram_url,
            2,
            global_per_s=1000,
            per_chat_interval_s=0,
            group_per_minute=per_minute,
            group_window_s=GROUP_WINDOW_S / SPEED,
        )
        sent = await asyncio.gather(
            *(
                sender.send(group, Reply(f"{name}{i}"))
                for i in range(each)
                for name, sender in (("a", a), ("b", b))
            )
        )
    assert sent == [Delivery.SENT] * 2 * each
    stats = await fast_person.stats()
    assert stats["rate_limited"] == 0, "Telegram answered 429: the group's minute was not shared"
    assert len(await fast_person.bot_texts(group)) == 2 * each


async def test_paid_broadcasts_carry_only_what_the_shared_free_rate_cannot(
    redis_url: str, redis_client: Redis, telegram_url: str, person: PersonApi
) -> None:
    chats = list(range(7001, 7201))
    await person.inject_many([(chat, "/start") for chat in chats])
    await person.configure(rate_limits=True, global_per_s=30, paid_per_s=1000)
    async with AsyncExitStack() as stack:
        senders = await replicas(
            stack,
            redis_url,
            telegram_url,
            2,
            global_per_s=30,
            paid_per_s=1000,
            per_chat_interval_s=1,
        )
        sent = await asyncio.gather(
            *(senders[chat % 2].send(chat, Reply(f"news for {chat}")) for chat in chats)
        )
    assert sent == [Delivery.SENT] * len(chats)
    stats = await person.stats()
    # A message marked free beyond the free rate, by either replica, would have earned a 429.
    assert stats["rate_limited"] == 0, "Telegram answered 429: the free rate was not shared"
    paid = stats["paid_broadcasts"]
    # 200 messages at 30 a second would take over 6 s: paid broadcasts carried the rest, and
    # only the rest: at least the first second's free messages went free.
    assert paid > 0
    assert len(chats) - paid >= 30, f"{paid} paid broadcasts: Stars spent within the free rate"
    assert stats["calls"]["sendMessage"] == len(chats)
