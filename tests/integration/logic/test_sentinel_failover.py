"""Redis behind Sentinel (issue 10): the master dies under load, the Sentinel promotes the
replica, and Bot Logic (TGGATE_REDIS_URL=redis+sentinel://…) follows it by itself.

Meanwhile every command is answered 200, with "temporarily unavailable" where Redis could not
be reached (never a 5xx), and normal answers come back within 15 s of the promotion: that bound
is the requirement itself, far above what the switch takes (about a second).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from tests.integration.logic.conftest import INTERNAL_TOKEN, ModuleUrls, open_bot
from tests.support.redis_servers import HOST, SentinelSet, redis_sentinel, wait_until
from tests.support.servers import run_asgi

from tggate.bootstrap import build_logic_app
from tggate.settings import load_settings

UNAVAILABLE = "temporarily unavailable"
BACK_WITHIN_S = 15.0


@dataclass
class Answer:
    started: float
    status: int
    text: str
    retry: bool  # the answer's "not done, offer it again" marker


@dataclass
class Load:
    """Commands from a few workers, one after another each, until stopped."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(5_000_000))

    async def worker(self, chats: list[int]) -> None:
        headers = {"X-Internal-Token": INTERNAL_TOKEN}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as client:
            for chat in itertools.cycle(chats):
                if self.stop.is_set():
                    return
                body = {
                    "update_id": next(self.update_ids),
                    "chat_id": chat,
                    "command": "me",
                    "language": "en",
                }
                started = time.monotonic()
                response = await client.post("/v1/commands", json=body)
                answer = response.json() if response.status_code == 200 else {}
                text = answer["replies"][0]["text"] if answer else ""
                retry = answer.get("retry", False)
                self.answers.append(Answer(started, response.status_code, text, retry))

    def normal_since(self, moment: float) -> Answer | None:
        return next(
            (a for a in self.answers if a.started >= moment and UNAVAILABLE not in a.text), None
        )


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelSet]:
    with redis_sentinel(tmp_path) as found:
        yield found


@pytest.fixture
def sentinel_logic_url(modules: ModuleUrls, sentinel: SentinelSet) -> Iterator[str]:
    settings = load_settings(
        redis_url=sentinel.url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        redis_timeout_s=0.5,
    )
    with run_asgi(build_logic_app(settings, redis_url=sentinel.url)) as url:
        yield url


async def test_bot_logic_follows_a_sentinel_failover_without_a_5xx(
    sentinel: SentinelSet, sentinel_logic_url: str, modules: ModuleUrls
) -> None:
    master = Redis(host=HOST, port=sentinel.master.port)
    try:
        async with open_bot(sentinel_logic_url, modules, master) as bot:
            logged_in = 93_001
            await bot.login(logged_in)
            # The session is on the replica too before the master dies.
            assert await master.execute_command("WAIT", 1, 5000) == 1
    finally:
        await master.aclose()

    load = Load(sentinel_logic_url)
    workers = [
        asyncio.create_task(load.worker([logged_in])),
        *(asyncio.create_task(load.worker(list(range(c, c + 50)))) for c in (94_000, 95_000)),
    ]
    try:
        await asyncio.to_thread(
            wait_until, lambda: len(load.answers) >= 30, timeout_s=60, what="load"
        )
        assert all(a.status == 200 and UNAVAILABLE not in a.text for a in load.answers)

        sentinel.master.kill()
        killed = time.monotonic()
        await asyncio.to_thread(
            wait_until,
            lambda: sentinel.master_port() == sentinel.replica.port,
            timeout_s=60,
            what="the Sentinel to promote the replica",
        )
        promoted = time.monotonic()
        await asyncio.to_thread(
            wait_until,
            lambda: load.normal_since(promoted) is not None,
            timeout_s=BACK_WITHIN_S + 30,
            what="a normal answer after the promotion",
        )
    finally:
        load.stop.set()
        await asyncio.gather(*workers)

    back = load.normal_since(promoted)
    assert back is not None
    outage = [a for a in load.answers if UNAVAILABLE in a.text]
    print(
        f"promoted {promoted - killed:.1f}s after the kill; normal answers again "
        f"{back.started - promoted:.2f}s after the promotion; {len(outage)} of "
        f"{len(load.answers)} answers said temporarily unavailable"
    )
    assert back.started - promoted <= BACK_WITHIN_S
    assert {a.status for a in load.answers} == {200}, "a command got an error status"
    during = [a for a in load.answers if killed <= a.started < back.started]
    assert any(UNAVAILABLE in a.text for a in during), "the outage was not noticed"
    # Not lost either (issue 9): each command the outage stopped asks to be offered again, and
    # only those (docs/contract.md#bot-logic).
    assert all(a.retry == (UNAVAILABLE in a.text) for a in load.answers)
    assert all(
        UNAVAILABLE in a.text or "Login: alice" in a.text or "not logged in" in a.text
        for a in load.answers
    )
    # The replicated session survived the switch.
    assert any("Login: alice" in a.text for a in load.answers if a.started >= back.started)
