"""Intake replicas in the test's event loop, on a real Redis, against the fake Telegram and a
stand-in Bot Logic (tests/integration/client/stub_logic.py), both under uvicorn on loopback.

Telegram's deliveries are played by the test: it takes the updates the fake Telegram made (its
getUpdates, as JSON) and hands each to a replica's `accept`, as nginx would hand a webhook
request to any replica. A replica can also die on the spot (`Replica.die`): its Redis calls fail
from then on, so it lets nothing go, and its claims lapse as a killed process's would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tests.integration.client.conftest import FAST, PersonApi
from tests.integration.client.stub_logic import INTERNAL_TOKEN, StubLogic, create_stub_app
from tests.support.commands import TABLE
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.adapters.redis_intake import RedisIntakeQueue, RedisSendPace
from tggate.client.base import CallbackPress, IncomingMessage
from tggate.client.logic_api import HttpLogicApi
from tggate.client.retry import Backoff
from tggate.client.telegram import HttpTelegramApi, incoming_from_json
from tggate.intake.base import Backlog, Claim, Entry, QueueUnavailable, Stored
from tggate.intake.pacing import PacedTelegram
from tggate.intake.service import Intake
from tggate.intake.worker import WorkerOptions
from tggate_sandbox.fakes.telegram.app import create_app as create_fake_telegram

BOT_TOKEN = "123456:intake-tests-bot-token"


@pytest.fixture
def telegram_url() -> Iterator[str]:
    app = create_fake_telegram(token=BOT_TOKEN, test_api_secret=TEST_API_SECRET)
    with run_asgi(app) as url:
        yield url


@pytest.fixture
def stub() -> StubLogic:
    return StubLogic()


@pytest.fixture
def logic_url(stub: StubLogic) -> Iterator[str]:
    with run_asgi(create_stub_app(stub)) as url:
        yield url


@pytest.fixture
async def person(telegram_url: str) -> AsyncIterator[PersonApi]:
    async with httpx.AsyncClient(base_url=telegram_url, headers=TEST_API, timeout=30) as http:
        yield PersonApi(http)


class DyingQueue:
    """The real queue until `die()`; from then on every call fails as if Redis were gone."""

    def __init__(self, queue: RedisIntakeQueue) -> None:
        self._queue = queue
        self.dead = False

    def _alive(self) -> RedisIntakeQueue:
        if self.dead:
            raise QueueUnavailable("this replica is dead")
        return self._queue

    async def enqueue(self, entry: Entry) -> Stored:
        return await self._alive().enqueue(entry)

    async def claim(self, chat_id: int, *, token: str) -> Claim | None:
        return await self._alive().claim(chat_id, token=token)

    async def done(self, claim: Claim) -> Claim | None:
        return await self._alive().done(claim)

    async def record_sent(self, claim: Claim, sent: int) -> bool:
        return await self._alive().record_sent(claim, sent)

    async def renew(self, claims: Sequence[Claim]) -> set[int]:
        return await self._alive().renew(claims)

    async def release(self, claim: Claim) -> None:
        await self._alive().release(claim)

    async def due(self, *, limit: int) -> list[int]:
        return await self._alive().due(limit=limit)

    async def backlog(self) -> Backlog:
        return await self._alive().backlog()

    async def ping(self) -> bool:
        return not self.dead and await self._queue.ping()


@dataclass
class Replica:
    intake: Intake
    queue: DyingQueue
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def accept(self, update: IncomingMessage | CallbackPress) -> Stored:
        return await self.intake.accept(update)

    async def die(self) -> None:
        """As a SIGKILL: nothing is let go, nothing more is sent."""
        self.queue.dead = True
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def counter(self, name: str, **labels: str) -> float:
        value = self.intake.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


@asynccontextmanager
async def running_intake(
    redis_url: str,
    telegram_url: str,
    logic_url: str,
    *,
    instance: str,
    claim_ttl_s: float = 1.0,
    send_global_per_s: float = 1000.0,
    send_per_chat_interval_s: float = 0.0,
    paced: bool = True,
    **options: Any,
) -> AsyncIterator[Replica]:
    """One intake replica running in this event loop; stopped gracefully on exit (unless dead)."""
    redis = Redis.from_url(redis_url)
    try:
        async with (
            HttpTelegramApi.open(
                token=BOT_TOKEN, api_url=telegram_url, request_timeout_s=5
            ) as telegram,
            HttpLogicApi.open(
                base_url=logic_url, internal_token=INTERNAL_TOKEN, timeout_s=5
            ) as logic,
        ):
            queue = DyingQueue(RedisIntakeQueue(redis, claim_ttl_s=claim_ttl_s))
            pace = RedisSendPace(
                redis,
                global_per_s=send_global_per_s,
                per_chat_interval_s=send_per_chat_interval_s,
            )
            intake = Intake(
                telegram=PacedTelegram(telegram, pace) if paced else telegram,
                logic=logic,
                queue=queue,
                table=TABLE,
                options=dataclasses.replace(
                    FAST,
                    send_global_per_s=send_global_per_s,
                    send_per_chat_interval_s=send_per_chat_interval_s,
                    **options,
                ),
                worker=WorkerOptions(
                    max_concurrent_chats=16,
                    claim_ttl_s=claim_ttl_s,
                    sweep_min_s=0.02,
                    sweep_max_s=0.2,
                    grace_s=5.0,
                    backoff=Backoff(initial_s=0.02, max_s=0.1),
                ),
                instance=instance,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(intake.run(stop))
            replica = Replica(intake, queue, stop, task)
            try:
                yield replica
            finally:
                if not task.done():
                    stop.set()
                    async with asyncio.timeout(15):
                        await task
    finally:
        await redis.aclose()


async def delivered_updates(
    person: PersonApi, telegram_url: str
) -> list[IncomingMessage | CallbackPress]:
    """The updates the fake Telegram holds for the bot, taken as a webhook would get them."""
    updates: list[IncomingMessage | CallbackPress] = []
    offset = 0
    async with httpx.AsyncClient(base_url=telegram_url, timeout=10) as http:
        while True:
            answer = await http.post(
                f"/bot{BOT_TOKEN}/getUpdates", json={"offset": offset, "limit": 100}
            )
            batch: list[dict[str, Any]] = answer.json()["result"]
            if not batch:
                return updates
            for raw in batch:
                update = incoming_from_json(raw)
                assert isinstance(update, IncomingMessage | CallbackPress)
                updates.append(update)
            offset = batch[-1]["update_id"] + 1
