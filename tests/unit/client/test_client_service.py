"""The assembled client with fakes: lease standby, timers only while active, clean stop."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
from tests.support.commands import TABLE
from tests.unit.client.fakes import FakeLeases, FakeLogic, FakeTelegram, eventually, message

from tggate.client.base import InvalidToken, PollingConflict, Unavailable
from tggate.client.retry import Backoff
from tggate.client.service import ClientOptions, TelegramClient
from tggate.core.ports import OutboxKind

OPTIONS = ClientOptions(
    poll_timeout_s=1,
    lease_ttl_s=0.3,
    login_cycle_interval_s=0.02,
    notification_cycle_interval_s=0.02,
    cycle_shards=2,
    send_global_per_s=1000,
    send_per_chat_interval_s=0,
    shutdown_grace_s=1,
    busy_wait_s=0.02,
    retry=Backoff(initial_s=0, max_s=0),
    poll_backoff=Backoff(initial_s=0.01, max_s=0.05),
)


async def test_only_the_lease_holder_polls_and_ticks_and_a_standby_takes_over() -> None:
    leases = FakeLeases()
    tg_a, tg_b = FakeTelegram(), FakeTelegram()
    logic_a, logic_b = FakeLogic(leases), FakeLogic(leases)
    a = TelegramClient(telegram=tg_a, logic=logic_a, table=TABLE, options=OPTIONS, instance="a")
    b = TelegramClient(telegram=tg_b, logic=logic_b, table=TABLE, options=OPTIONS, instance="b")
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(a.run(stop_a))
    await eventually(lambda: tg_a.fetches)
    run_b = asyncio.create_task(b.run(stop_b))
    # b asked for the lease three times and was refused each time: it neither polled nor ticked.
    await eventually(lambda: len(logic_b.lease_calls) >= 3)
    assert tg_b.fetches == [] and logic_b.cycle_calls == []
    assert logic_a.cycle_calls
    assert [language for language, _ in tg_a.menus] == [None, "ru", "en"]

    tg_a.inject(7, "/help")
    await eventually(lambda: tg_a.texts(7) == ["ok /help"])
    stop_a.set()
    await run_a
    assert tg_a.confirmed_below == 2

    # b takes over once a let go of the lease; it polls and ticks now.
    logic_b.outbox[OutboxKind.LOGIN] = [message("m1", 7, "Вы вошли", OutboxKind.LOGIN)]
    await eventually(lambda: tg_b.fetches and logic_b.acked == ["m1"])
    assert tg_b.texts(7) == ["Вы вошли"]
    stop_b.set()
    await run_b


async def test_losing_the_lease_stops_polling_and_regaining_it_resumes() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    client = TelegramClient(telegram=telegram, logic=logic, table=TABLE, options=OPTIONS)
    stop = asyncio.Event()
    run = asyncio.create_task(client.run(stop))
    telegram.inject(1, "/help")
    await eventually(lambda: telegram.texts(1) == ["ok /help"])
    logic.leases.holder, logic.leases.until = "other", math.inf  # another instance took it
    await eventually(lambda: client.offset == 2)  # it went standby and kept its offset
    fetched = len(telegram.fetches)
    asked = len(logic.lease_calls)
    await eventually(lambda: len(logic.lease_calls) >= asked + 3)  # three more refusals
    assert len(telegram.fetches) == fetched
    logic.leases.holder = None
    telegram.inject(1, "/start")
    await eventually(lambda: telegram.texts(1) == ["ok /help", "ok /start"])
    stop.set()
    await run
    assert [c.update_id for c in logic.calls] == [1, 2]


async def test_an_unreachable_lease_keeps_polling_and_a_409_then_stands_by(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 9: the lease lives in Redis; while it is down the holder goes on fetching updates.
    telegram, logic = FakeTelegram(), FakeLogic()
    client = TelegramClient(telegram=telegram, logic=logic, table=TABLE, options=OPTIONS)
    stop = asyncio.Event()
    run = asyncio.create_task(client.run(stop))
    await eventually(lambda: telegram.fetches)
    logic.lease_down = True
    asked = len(logic.lease_calls)
    # Five failed renewals at 0.1 s or more apart: past the lease's ttl (0.3 s).
    await eventually(lambda: len(logic.lease_calls) >= asked + 5)
    telegram.inject(1, "/help")
    await eventually(lambda: telegram.texts(1) == ["ok /help"])
    # Another poller shows up (409): with its lease unconfirmed, the client stands by.
    telegram.fetch_errors = [PollingConflict("Conflict: terminated by other getUpdates")] * 3
    with caplog.at_level(logging.WARNING, logger="tggate.client"):
        telegram.inject(1, "/start")  # ends the long poll that is waiting
        await eventually(lambda: "standing by" in caplog.text)
    assert telegram.texts(1) == ["ok /help", "ok /start"]
    stop.set()
    await run


async def test_the_bot_asks_telegram_its_name_once_retrying_while_telegram_is_away() -> None:
    """Issue 9, finding 6: `/command@name` is ours only when `name` is this bot's (getMe)."""
    telegram, logic = FakeTelegram(), FakeLogic()
    telegram.username_errors = [Unavailable("down"), Unavailable("still down")]
    client = TelegramClient(telegram=telegram, logic=logic, table=TABLE, options=OPTIONS)
    stop = asyncio.Event()
    run = asyncio.create_task(client.run(stop))
    telegram.inject(3, "/help@other_bot")
    telegram.inject(3, "/help@TGGATE_BOT")
    await eventually(lambda: telegram.texts(3) == ["ok /help@TGGATE_BOT"])
    assert [call.text for call in logic.calls] == ["/help@TGGATE_BOT"]
    # Standby (another instance took the lease), then active again: the name is not asked again.
    logic.leases.holder, logic.leases.until = "other", math.inf
    await eventually(lambda: client.offset == 3)
    logic.leases.holder = None
    telegram.inject(3, "/start")
    await eventually(lambda: telegram.texts(3) == ["ok /help@TGGATE_BOT", "ok /start"])
    stop.set()
    await run
    assert telegram.username_asked == 3  # two failures, one answer


async def test_a_refused_bot_token_at_getme_stops_the_client() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    telegram.username_errors = [InvalidToken("401")]
    client = TelegramClient(telegram=telegram, logic=logic, table=TABLE, options=OPTIONS)
    with pytest.raises(InvalidToken):
        await client.run(asyncio.Event())
    assert telegram.fetches == []
