"""The Telegram Client against the fake Telegram Bot API and a stand-in Bot Logic, both served
by uvicorn on loopback ports; the client itself runs in the test's event loop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.integration.client.stub_logic import INTERNAL_TOKEN, StubLogic, create_stub_app
from tests.support.commands import TABLE
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.client.logic_api import HttpLogicApi
from tggate.client.retry import Backoff
from tggate.client.service import ClientOptions, TelegramClient
from tggate.client.telegram import HttpTelegramApi
from tggate_sandbox.fakes.telegram.app import create_app as create_fake_telegram

BOT_TOKEN = "123456:client-tests-bot-token"

FAST = ClientOptions(
    max_concurrent_chats=16,
    poll_timeout_s=2,
    lease_ttl_s=3.0,
    login_cycle_interval_s=0.2,
    notification_cycle_interval_s=0.2,
    cycle_shards=2,
    send_global_per_s=1000.0,
    send_per_chat_interval_s=0.0,
    shutdown_grace_s=5.0,
    busy_wait_s=0.05,
    retry=Backoff(initial_s=0.05, max_s=0.2),
    poll_backoff=Backoff(initial_s=0.05, max_s=0.2),
)


@pytest.fixture
def telegram_url() -> Iterator[str]:
    with run_asgi(create_fake_telegram(token=BOT_TOKEN, test_api_secret=TEST_API_SECRET)) as url:
        yield url


@pytest.fixture
def stub() -> StubLogic:
    return StubLogic()


@pytest.fixture
def logic_url(stub: StubLogic) -> Iterator[str]:
    with run_asgi(create_stub_app(stub)) as url:
        yield url


class PersonApi:
    """The fake Telegram's /_test API: a person's side of the chats."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def inject(
        self, chat_id: int, text: str, language_code: str | None = None, **names: str
    ) -> int:
        """`names`: first_name, last_name, username of the person (the fake's defaults else)."""
        body: dict[str, Any] = {"chat_id": chat_id, "text": text, **names}
        if language_code:
            body["language_code"] = language_code
        response = await self.http.post("/_test/inject", json=body)
        response.raise_for_status()
        return int(response.json()["update_id"])

    async def inject_many(self, messages: list[tuple[int, str]]) -> list[int]:
        body = {"messages": [{"chat_id": c, "text": t} for c, t in messages]}
        response = await self.http.post("/_test/inject_many", json=body)
        response.raise_for_status()
        return [int(r["update_id"]) for r in response.json()]

    async def press(self, chat_id: int, message_id: int, data: str) -> None:
        body = {"chat_id": chat_id, "message_id": message_id, "data": data}
        (await self.http.post("/_test/press", json=body)).raise_for_status()

    async def wait(self, chat_id: int, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The bot's messages in the chat once there are `count`; fails the test otherwise."""
        response = await self.http.get(
            "/_test/wait",
            params={"chat_id": chat_id, "count": count, "timeout": timeout_s},
            timeout=timeout_s + 5,
        )
        body = response.json()
        messages: list[dict[str, Any]] = body if response.status_code == 200 else body["messages"]
        assert response.status_code == 200, f"chat {chat_id}: only {messages}"
        return messages

    async def bot_texts(self, chat_id: int) -> list[str]:
        response = await self.http.get(f"/_test/chats/{chat_id}/messages")
        return [m["text"] for m in response.json() if m["from_bot"]]

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self.http.get("/_test/stats")).json()
        return stats

    async def callbacks(self) -> list[dict[str, Any]]:
        callbacks: list[dict[str, Any]] = (await self.http.get("/_test/callbacks")).json()
        return callbacks

    async def configure(self, **config: Any) -> None:
        (await self.http.post("/_test/config", json=config)).raise_for_status()

    async def block(self, chat_id: int) -> None:
        (await self.http.post("/_test/block", json={"chat_id": chat_id})).raise_for_status()


@pytest.fixture
async def person(telegram_url: str) -> AsyncIterator[PersonApi]:
    async with httpx.AsyncClient(base_url=telegram_url, headers=TEST_API, timeout=30) as http:
        yield PersonApi(http)


@dataclass
class Running:
    client: TelegramClient
    stop: asyncio.Event
    task: asyncio.Task[None]


@asynccontextmanager
async def running_client(
    telegram_url: str, logic_url: str, *, instance: str | None = None, **options: Any
) -> AsyncIterator[Running]:
    """A TelegramClient on real HTTP; stopped (gracefully) and closed on exit."""
    async with (
        HttpTelegramApi.open(
            token=BOT_TOKEN, api_url=telegram_url, request_timeout_s=5
        ) as telegram,
        HttpLogicApi.open(base_url=logic_url, internal_token=INTERNAL_TOKEN, timeout_s=5) as logic,
    ):
        client = TelegramClient(
            telegram=telegram,
            logic=logic,
            table=TABLE,
            options=dataclasses.replace(FAST, **options),
            instance=instance,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        try:
            yield Running(client, stop, task)
        finally:
            stop.set()
            async with asyncio.timeout(15):
                await task


async def eventually(condition: Any, within_s: float = 10.0, every_s: float = 0.02) -> None:
    """Wait until `condition()` (sync or async) is true."""
    async with asyncio.timeout(within_s):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(every_s)
