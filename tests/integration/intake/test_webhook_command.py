"""`tggate webhook set|info|delete` against the fake Telegram and a real Redis (the intake's
backlog): what Telegram is told, what the operator reads, and `delete` waiting for the queues."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tests.support.sandbox import TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.adapters.redis_intake import RedisIntakeQueue
from tggate.bootstrap import run_webhook
from tggate.intake.base import Entry
from tggate.intake.manage import WebhookRequest
from tggate.settings import Settings, load_settings
from tggate_sandbox.fakes.telegram.app import create_app
from tggate_sandbox.fakes.telegram.state import WebhookOptions

TOKEN = "123456:webhook-command-tests-token"
SECRET = "webhook-command-tests_secret"
URL = "https://bot.example.com/telegram/webhook"


@pytest.fixture
def telegram_url() -> Iterator[str]:
    # Not --local: the webhook must be https on one of Telegram's ports, as at Telegram. Nothing
    # listens there, so the fake's deliveries fail (and are retried) quietly meanwhile.
    app = create_app(
        token=TOKEN, test_api_secret=TEST_API_SECRET, webhook=WebhookOptions(timeout_s=1)
    )
    with run_asgi(app) as url:
        yield url


def settings(telegram_url: str, redis_url: str | None) -> Settings:
    return load_settings(
        bot_token=TOKEN,
        telegram_api_url=telegram_url,
        redis_url=redis_url,
        webhook_secret=SECRET,
        webhook_url=URL,
    )


async def run(
    telegram_url: str, redis_url: str | None, **request: Any
) -> tuple[int, list[str], list[str]]:
    said: list[str] = []
    warned: list[str] = []
    values = {"url": URL, "secret": SECRET, **request}
    status = await run_webhook(
        settings(telegram_url, redis_url),
        WebhookRequest(**values),
        say=said.append,
        warn=warned.append,
    )
    return status, said, warned


async def webhook_info(telegram_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{telegram_url}/bot{TOKEN}/getWebhookInfo")
    info: dict[str, Any] = answer.json()["result"]
    return info


async def test_set_registers_the_url_the_secret_and_what_tggate_handles(
    telegram_url: str, redis_url: str, redis_client: Redis
) -> None:
    status, said, warned = await run(telegram_url, redis_url, action="set", max_connections=12)
    assert (status, warned) == (0, [])
    assert said[0] == (
        f"webhook set: {URL} (max_connections 12, updates message, callback_query; "
        "pending updates kept)"
    )
    info = await webhook_info(telegram_url)
    assert info["url"] == URL
    assert info["max_connections"] == 12
    assert info["allowed_updates"] == ["callback_query", "message"]

    status, said, _ = await run(telegram_url, redis_url, action="info")
    assert status == 0
    assert f"url: {URL}" in said
    assert "max_connections: 12" in said
    assert "intake backlog: 0 updates of 0 chats" in said
    assert not any(SECRET in line for line in said)


async def test_delete_waits_until_the_intake_has_handled_what_it_stored(
    telegram_url: str, redis_url: str, redis_client: Redis
) -> None:
    queue = RedisIntakeQueue(redis_client)
    await queue.enqueue(Entry(chat_id=5, update_id=1, payload="{}"))
    await run(telegram_url, redis_url, action="set")
    status, said, warned = await run(telegram_url, redis_url, action="delete", wait_s=0.2)
    assert status == 1
    assert "waiting for the intake: 1 updates of 1 chats" in said
    assert "the intake still has updates" in warned[0]
    assert (await webhook_info(telegram_url))["url"] == ""

    async def a_replica_works_the_queue() -> None:
        await asyncio.sleep(0.3)
        claim = await queue.claim(5, token="replica")
        assert claim is not None
        await queue.done(claim)

    working = asyncio.create_task(a_replica_works_the_queue())
    status, said, warned = await run(telegram_url, redis_url, action="delete", wait_s=30)
    await working
    assert (status, warned) == (0, [])
    assert said[-1] == "safe to start `tggate client` (then stop the intake replicas)"


async def test_without_redis_delete_does_not_wait_and_info_shows_no_backlog(
    telegram_url: str,
) -> None:
    status, said, _ = await run(telegram_url, None, action="delete")
    assert status == 0
    assert said == [
        "webhook deleted (pending updates kept for getUpdates)",
        "safe to start `tggate client` (then stop the intake replicas)",
    ]
    status, said, _ = await run(telegram_url, None, action="info")
    assert said[0] == "no webhook: Telegram keeps updates for getUpdates (polling mode)"
    assert not any("backlog" in line for line in said)


async def test_what_telegram_refuses_is_said_without_the_token(telegram_url: str) -> None:
    status, said, warned = await run(
        telegram_url, None, action="set", url="http://bot.example.com/hook"
    )
    assert status == 1
    assert said == []
    assert warned == [
        "tggate: Telegram refused: setWebhook: Bad Request: "
        "bad webhook: An HTTPS URL must be provided for webhook"
    ]
    assert TOKEN not in warned[0]


async def test_set_needs_a_url_and_the_secret(telegram_url: str) -> None:
    status, _, warned = await run(telegram_url, None, action="set", url=None)
    assert status == 1
    assert warned == ["tggate: set needs TGGATE_WEBHOOK_URL (or --url) and TGGATE_WEBHOOK_SECRET"]


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["webhook", "info", "--url", URL], "--url and --max-connections are for"),
        (["webhook", "delete", "--max-connections", "5"], "--url and --max-connections are"),
        (["webhook", "info", "--drop-pending-updates"], "--drop-pending-updates is for"),
    ],
)
def test_options_of_another_action_are_refused(argv: list[str], refusal: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    done = subprocess.run(
        [sys.executable, "-m", "tggate.cli", *argv],
        env={**env, "TGGATE_BOT_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert refusal in done.stderr
