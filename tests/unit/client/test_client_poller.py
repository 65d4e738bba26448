"""getUpdates with confirmation only after handling (C2, C3; docs/contract.md#reliability)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

import pytest
from tests.unit.client.fakes import FakeTelegram, eventually

from tggate.client.base import (
    CallbackPress,
    Incoming,
    IncomingMessage,
    InvalidToken,
    OtherUpdate,
    PollingConflict,
    Unavailable,
)
from tggate.client.poller import Poller
from tggate.client.retry import Backoff


def make(
    telegram: FakeTelegram,
    handle: object,
    *,
    start_offset: int | None = None,
    grace_s: float = 5.0,
) -> Poller:
    return Poller(
        telegram=telegram,
        handle=handle,  # type: ignore[arg-type]
        max_concurrent_chats=8,
        poll_timeout_s=1,
        start_offset=start_offset,
        busy_wait_s=0.02,
        grace_s=grace_s,
        backoff=Backoff(initial_s=0.01, max_s=0.05),
    )


async def test_offset_is_confirmed_only_after_handling() -> None:
    telegram = FakeTelegram()
    gate = asyncio.Event()
    handled: list[int] = []

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        if update.chat_id == 1:
            await gate.wait()
        handled.append(update.update_id)

    poller = make(telegram, handle)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    telegram.inject(1, "/help")  # 1: held up
    telegram.inject(2, "/help")  # 2: done at once
    await eventually(lambda: handled == [2])
    fetched = len(telegram.fetches)
    await eventually(lambda: len(telegram.fetches) >= fetched + 2)  # it polled on since
    # Telegram was never asked with an offset past the unfinished update 1.
    assert telegram.confirmed_below <= 1
    assert poller.offset == 1
    gate.set()
    await eventually(lambda: poller.offset == 3)
    stop.set()
    assert await run == 3
    assert telegram.confirmed_below == 3
    assert sorted(handled) == [1, 2]


async def test_each_update_is_handled_once_although_fetched_again() -> None:
    telegram = FakeTelegram()
    handled: list[int] = []

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        await asyncio.sleep(0.02)
        handled.append(update.update_id)

    poller = make(telegram, handle)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    for i in range(30):
        telegram.inject(i % 3, f"/m{i}")
    await eventually(lambda: len(handled) == 30)
    stop.set()
    await run
    assert sorted(handled) == list(range(1, 31))
    assert telegram.confirmed_below == 31


async def test_other_updates_are_confirmed_without_handling() -> None:
    telegram = FakeTelegram()
    handled: list[int] = []

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        handled.append(update.update_id)

    telegram.push(OtherUpdate(1))
    telegram.inject(5, "/help")
    poller = make(telegram, handle)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    await eventually(lambda: poller.offset == 3)
    stop.set()
    await run
    assert handled == [2]


async def test_shutdown_finishes_in_flight_updates_then_confirms() -> None:
    telegram = FakeTelegram()
    handled: list[int] = []
    started, finish = asyncio.Event(), asyncio.Event()

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        started.set()
        await finish.wait()  # in flight until the stop came
        handled.append(update.update_id)

    telegram.inject(1, "/help")
    poller = make(telegram, handle)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    await eventually(lambda: started.is_set() and telegram.fetches)
    stop.set()
    finish.set()
    assert await run == 2
    assert handled == [1]
    assert telegram.fetches[-1] == (2, 0, 1)  # the final confirming call
    assert telegram.confirmed_below == 2


async def test_shutdown_gives_up_on_a_stuck_update_and_leaves_it_unconfirmed() -> None:
    telegram = FakeTelegram()

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        await asyncio.sleep(60)

    telegram.inject(1, "/help")
    poller = make(telegram, handle, grace_s=0.05)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    await eventually(lambda: telegram.fetches)
    stop.set()
    assert await run == 1
    assert telegram.confirmed_below <= 1


async def test_a_start_offset_skips_what_was_confirmed() -> None:
    telegram = FakeTelegram()
    stop = asyncio.Event()

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        pass

    poller = make(telegram, handle, start_offset=40)
    run = asyncio.create_task(poller.run(stop))
    await eventually(lambda: telegram.fetches)
    stop.set()
    await run
    assert telegram.fetches[0][0] == 40


async def test_409_and_network_errors_back_off_and_are_logged_once_per_streak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram = FakeTelegram()
    telegram.fetch_errors = [PollingConflict("Conflict: terminated by other getUpdates")] * 5 + [
        Unavailable("connection reset")
    ] * 3
    handled: list[int] = []

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        handled.append(update.update_id)

    telegram.inject(1, "/help")
    poller = make(telegram, handle)
    stop = asyncio.Event()
    with caplog.at_level(logging.DEBUG, logger="tggate.client.poller"):
        run = asyncio.create_task(poller.run(stop))
        await eventually(lambda: handled == [1])
        stop.set()
        await run
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("409" in r.getMessage() for r in warnings) == 1
    assert sum("connection reset" in r.getMessage() for r in warnings) == 1
    assert len(telegram.fetches) >= 9


async def test_an_invalid_token_stops_the_poller() -> None:
    telegram = FakeTelegram()
    telegram.fetch_errors = [InvalidToken("Unauthorized")]

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        pass

    with pytest.raises(InvalidToken):
        await make(telegram, handle).run(asyncio.Event())


async def test_stop_abandons_a_long_poll_at_once() -> None:
    telegram = FakeTelegram()

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        pass

    # A long poll of 50 s: waiting it out would take the run past the bound below, which only
    # ends a hopeless wait (an abandoned poll returns at once).
    poller = Poller(telegram=telegram, handle=handle, max_concurrent_chats=1, poll_timeout_s=50)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    await eventually(lambda: telegram.fetches)
    stop.set()
    async with asyncio.timeout(40):
        assert await run is None
    assert len(telegram.fetches) == 1  # the one long poll, abandoned


class CheckingTelegram(FakeTelegram):
    """Fails the test if getUpdates is ever asked to confirm an update not yet handled."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: set[int] = set()
        self.violations: list[tuple[int, int]] = []

    async def get_updates(
        self, *, offset: int | None, long_poll_s: int, limit: int
    ) -> Sequence[Incoming]:
        if offset is not None:
            for update in self.queue:
                if update.update_id < offset and update.update_id not in self.handled:
                    self.violations.append((offset, update.update_id))
        return await super().get_updates(offset=offset, long_poll_s=long_poll_s, limit=limit)


@pytest.mark.parametrize("seed", range(5))
async def test_no_offset_ever_passes_an_unhandled_update(seed: int) -> None:
    rng = random.Random(seed)
    telegram = CheckingTelegram()
    handled_order: dict[int, list[int]] = {}

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        await asyncio.sleep(rng.choice([0, 0, 0.001, 0.01, 0.03]))
        telegram.handled.add(update.update_id)
        handled_order.setdefault(update.chat_id, []).append(update.update_id)

    poller = make(telegram, handle)
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    injected: dict[int, list[int]] = {}
    for _ in range(150):
        chat = rng.randrange(8)
        injected.setdefault(chat, []).append(telegram.inject(chat, "/help"))
        if rng.random() < 0.2:
            await asyncio.sleep(rng.choice([0, 0.005]))
    await eventually(lambda: len(telegram.handled) == 150)
    stop.set()
    assert await run == 151
    assert telegram.violations == []
    assert handled_order == injected  # per chat, in update_id order, each once


async def test_a_full_window_is_asked_again_only_when_a_quarter_is_free() -> None:
    telegram = FakeTelegram()
    gates = {update_id: asyncio.Event() for update_id in range(1, 151)}

    async def handle(update: IncomingMessage | CallbackPress) -> None:
        await gates[update.update_id].wait()

    for update_id in range(1, 151):
        telegram.inject(update_id, "/help")  # one chat each: nothing waits for its chat
    poller = Poller(
        telegram=telegram,
        handle=handle,
        max_concurrent_chats=8,
        poll_timeout_s=1,
        busy_wait_s=60,  # no timed re-ask in this test: only progress may cause one
    )
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    await eventually(lambda: len(telegram.fetches) == 1)
    for update_id in range(1, 25):  # 24 of the window's 100 handled: not yet a quarter
        gates[update_id].set()
    await eventually(lambda: poller.offset == 25)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(telegram.fetches) == 1  # the same 100 again would have shown nothing new
    gates[25].set()
    await eventually(lambda: len(telegram.fetches) == 2)
    assert telegram.fetches[1][0] == 26  # from the oldest unfinished one
    for gate in gates.values():
        gate.set()
    await eventually(lambda: poller.offset == 151)
    stop.set()
    assert await run == 151
