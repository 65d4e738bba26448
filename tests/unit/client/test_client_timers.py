"""The login-check and notification timers (L1–L3, N1–N3): send, then ack what is settled."""

from __future__ import annotations

import asyncio

from tests.unit.client.fakes import FakeLogic, FakeTelegram, eventually, message

from tggate.client.base import LogicUnavailable, Rejected, Unavailable
from tggate.client.retry import Backoff
from tggate.client.sender import Sender
from tggate.client.timers import CycleTimer
from tggate.core.ports import OutboxKind

NOTIFICATION = OutboxKind.NOTIFICATION

INSTANT = Backoff(initial_s=0, max_s=0)


def make(telegram: FakeTelegram, logic: FakeLogic, *, shards: int = 3) -> CycleTimer:
    sender = Sender(telegram, global_per_s=1000, per_chat_interval_s=0, backoff=INSTANT)
    return CycleTimer(
        kind=NOTIFICATION,
        interval_s=0.01,
        shards=shards,
        logic=logic,
        sender=sender,
        backoff=INSTANT,
    )


async def test_N1_a_tick_asks_every_shard_and_acks_what_was_delivered() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.outbox[NOTIFICATION] = [message(f"n{i}", i % 5, f"note {i}") for i in range(10)]
    await make(telegram, logic).tick()
    assert sorted(logic.cycle_calls) == [(NOTIFICATION, s, 3) for s in range(3)]
    assert sorted(logic.acked) == sorted(f"n{i}" for i in range(10))
    for chat_id in range(5):
        assert telegram.texts(chat_id) == [f"note {i}" for i in range(10) if i % 5 == chat_id]


async def test_undelivered_messages_are_not_acked_and_come_back_next_tick() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.outbox[NOTIFICATION] = [
        message("a1", 1, "first"),
        message("a2", 1, "second"),
        message("b1", 2, "other chat"),
        message("c1", 3, "refused for good"),
    ]
    telegram.send_errors[1] = [Unavailable("timeout")] * 3
    telegram.send_errors[3] = [Rejected("bot was blocked by the user")]
    timer = make(telegram, logic, shards=1)
    await timer.tick()
    # a1 failed, so a2 waits too (order within a chat); c1 will never succeed, so it is settled.
    assert sorted(logic.acked) == ["b1", "c1"]
    assert telegram.texts(1) == []
    await timer.tick()
    assert sorted(logic.acked) == ["a1", "a2", "b1", "c1"]
    assert telegram.texts(1) == ["first", "second"]


async def test_a_failing_shard_does_not_stop_the_others() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.outbox[NOTIFICATION] = [message("x", 1, "hi"), message("y", 2, "hi")]
    original = logic.cycle

    async def flaky(kind, *, shard, shards):  # type: ignore[no-untyped-def]
        if shard == 1:
            raise LogicUnavailable("503")
        return await original(kind, shard=shard, shards=shards)

    logic.cycle = flaky  # type: ignore[method-assign]
    await make(telegram, logic, shards=2).tick()
    assert logic.acked == ["y"]


async def test_ticks_never_overlap() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    running = 0
    peak = 0
    ticks = 0

    async def slow_cycle(kind, *, shard, shards):  # type: ignore[no-untyped-def]
        nonlocal running, peak, ticks
        running += 1
        peak = max(peak, running)
        ticks += 1
        await asyncio.sleep(0.05)
        running -= 1
        return []

    logic.cycle = slow_cycle  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(make(telegram, logic, shards=1).run(stop))
    await eventually(lambda: ticks >= 4)
    stop.set()
    await task
    assert peak == 1


async def test_a_chat_waiting_for_its_turn_holds_no_slot() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.outbox[NOTIFICATION] = [
        message(f"{chat}{k}", chat, f"{chat}{k}") for chat in (1, 2, 3) for k in (1, 2)
    ]
    sender = Sender(telegram, global_per_s=1000, per_chat_interval_s=0.1, backoff=INSTANT)
    timer = CycleTimer(
        kind=NOTIFICATION,
        interval_s=0.01,
        shards=1,
        logic=logic,
        sender=sender,
        max_concurrent_chats=1,
        backoff=INSTANT,
    )
    await timer.tick()
    # One slot: while chat 1 waits a second interval for its second message, 2 and 3 go.
    assert [m.text for m in telegram.sent] == ["11", "21", "31", "12", "22", "32"]
