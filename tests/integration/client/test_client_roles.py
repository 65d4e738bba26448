"""The Telegram Client's background roles over real HTTP: timers (L1, N1) and their acks, the
poller lease between two instances, 409 from a rival poller, and `run_client` from settings."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.client.conftest import BOT_TOKEN, PersonApi, eventually, running_client
from tests.integration.client.stub_logic import (
    INTERNAL_TOKEN,
    LeaseTable,
    StubLogic,
    create_stub_app,
)
from tests.support.servers import run_asgi

from tggate.bootstrap import run_client
from tggate.settings import load_settings


async def test_N1_L1_timer_messages_are_sent_and_acked_after_delivery(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    async with running_client(telegram_url, logic_url):
        await person.inject(11, "/start")
        await person.inject(12, "/start")
        await person.wait(11, 1)
        await person.wait(12, 1)
        await person.block(12)  # the person blocks the bot: Telegram refuses for good
        with stub.lock:
            stub.outbox["notifications"] = [
                {"id": "n1", "chat_id": 11, "text": "Новое задание"},
                {"id": "n2", "chat_id": 12, "text": "не дойдёт"},
            ]
            stub.outbox["login"] = [
                {
                    "id": "l1",
                    "chat_id": 11,
                    "text": "Вы вошли",
                    "buttons": [[{"text": "Профиль", "command": "/help"}]],
                }
            ]
        await eventually(lambda: sorted(stub.acked) == ["l1", "n1", "n2"])
        # More ticks of every shard of both timers: nothing is sent twice once acked.
        ticked = len(stub.cycles)
        await eventually(lambda: len(stub.cycles) >= ticked + 8)
    texts = await person.bot_texts(11)
    assert texts[0] == "echo /start"
    assert sorted(texts[1:]) == ["Вы вошли", "Новое задание"]
    kinds = {(kind, shards) for kind, _, shards in stub.cycles}
    assert kinds == {("login", 2), ("notifications", 2)}
    assert {shard for _, shard, _ in stub.cycles} == {0, 1}


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback port nothing listens on: every request is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


async def test_messages_telegram_did_not_accept_are_not_acked(
    dead_url: str, logic_url: str, stub: StubLogic, caplog: pytest.LogCaptureFixture
) -> None:
    stub.outbox["notifications"] = [{"id": "n1", "chat_id": 11, "text": "later"}]
    with caplog.at_level(logging.DEBUG):
        async with running_client(dead_url, logic_url):
            await eventually(lambda: len(stub.cycles) >= 8)
            # Every chance for a send to be (wrongly) acked: each tick that handed n1 out ended
            # in an ack or not before the next one began, and eight more come.
            ticked = len(stub.cycles)
            await eventually(lambda: len(stub.cycles) >= ticked + 8)
    assert stub.acked == []
    assert stub.outbox["notifications"] == [{"id": "n1", "chat_id": 11, "text": "later"}]
    # The bot token is in every Bot API URL; it must not reach the logs with the errors.
    assert "Telegram failed" in caplog.text or "getUpdates failed" in caplog.text
    assert BOT_TOKEN not in caplog.text
    assert BOT_TOKEN.split(":", 1)[1] not in caplog.text


async def test_only_the_lease_holder_polls_and_a_standby_takes_over(
    telegram_url: str, person: PersonApi
) -> None:
    leases = LeaseTable()
    stub_a, stub_b = StubLogic(leases=leases), StubLogic(leases=leases)
    with run_asgi(create_stub_app(stub_a)) as url_a, run_asgi(create_stub_app(stub_b)) as url_b:
        async with running_client(telegram_url, url_a, instance="a") as a:
            await eventually(lambda: leases.holder == "a")
            async with running_client(telegram_url, url_b, instance="b"):
                # b asked for the lease and was refused (twice: it keeps asking as a standby).
                await eventually(lambda: len(stub_b.lease_requests) >= 2)
                for n in range(5):
                    await person.inject(21, f"/course a{n}")
                await person.wait(21, 5)
                assert len(stub_a.snapshot()) == 5
                assert stub_b.snapshot() == [] and stub_b.cycles == []
                assert any(r["instance"] == "b" for r in stub_b.lease_requests)

                a.stop.set()  # a shuts down gracefully and shortens its lease
                await a.task
                await eventually(lambda: leases.holder == "b", within_s=10)
                await person.inject(21, "/course b0")
                texts = [m["text"] for m in await person.wait(21, 6)]
                assert stub_b.snapshot()[-1]["text"] == "/course b0"
                await eventually(lambda: stub_b.cycles)
    assert texts == [f"echo /course a{n}" for n in range(5)] + ["echo /course b0"]
    assert [c["text"] for c in stub_a.snapshot()] == [f"/course a{n}" for n in range(5)]
    assert (await person.stats())["pending_updates"] == 0


async def test_409_from_a_rival_poller_backs_off_and_logs_once(
    telegram_url: str, logic_url: str, person: PersonApi, caplog: pytest.LogCaptureFixture
) -> None:
    rounds = 6
    # A long poll no round outlasts: only the rival ends the client's polls, so the 409s come in
    # one unbroken streak (a poll that ran out empty would end it and start another).
    options = {"poll_timeout_s": 50}
    with caplog.at_level(logging.INFO, logger="tggate.client"):
        async with (
            running_client(telegram_url, logic_url, **options),
            httpx.AsyncClient() as rival,
        ):
            for _ in range(rounds):
                # Once the client's long poll is waiting at Telegram, another process polls the
                # same bot token: the waiting poll ends with 409.
                await eventually(lambda: _waiting_poll(person), within_s=60)
                response = await rival.get(
                    f"{telegram_url}/bot{BOT_TOKEN}/getUpdates", params={"timeout": 0}
                )
                assert response.status_code == 200
                await eventually(lambda: _no_waiting_poll(person), within_s=60)
            await person.inject(31, "/help")
            assert [m["text"] for m in await person.wait(31, 1)] == ["echo /help"]
    conflicts = [
        r
        for r in caplog.records
        if r.name == "tggate.client.poller" and r.levelno == logging.WARNING
    ]
    assert len(conflicts) == 1, [r.getMessage() for r in conflicts]
    assert "409" in conflicts[0].getMessage()
    ended = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert ended and f"after {rounds} failures" in ended[0], ended


async def _waiting_poll(person: PersonApi) -> bool:
    return int((await person.stats())["waiting"]) >= 1


async def _no_waiting_poll(person: PersonApi) -> bool:
    return int((await person.stats())["waiting"]) == 0


async def _polling(person: PersonApi) -> bool:
    calls = (await person.stats())["calls"]
    return int(calls.get("getUpdates", 0)) >= 1


async def test_run_client_builds_everything_from_settings(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi, tmp_path: Path
) -> None:
    settings = load_settings(
        data_dir=tmp_path,  # the client's delivery journal goes there
        telegram_api_url=telegram_url,
        bot_token=BOT_TOKEN,
        logic_url=logic_url,
        internal_token=INTERNAL_TOKEN,
        poll_timeout_s=1,
        lease_ttl_s=3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_client(settings, stop))
    try:
        await person.inject(41, "/help", language_code="en")
        assert [m["text"] for m in await person.wait(41, 1)] == ["echo /help"]
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task
    assert stub.snapshot()[0]["language"] == "en"
    assert (await person.stats())["pending_updates"] == 0
