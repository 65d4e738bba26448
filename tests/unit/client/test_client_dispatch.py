"""Per-chat order and bounded cross-chat concurrency (C3, docs/scenarios.md#order)."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import pytest
from tests.unit.client.fakes import eventually

from tggate.client.dispatch import ChatDispatcher


@dataclass(frozen=True)
class Item:
    update_id: int
    chat_id: int


async def test_one_chat_in_order_many_chats_in_parallel_bounded() -> None:
    handled: dict[int, list[int]] = {}
    done: list[int] = []
    running = 0
    peak = 0
    rng = random.Random(7)

    async def handle(item: Item) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(rng.uniform(0, 0.005))
        handled.setdefault(item.chat_id, []).append(item.update_id)
        running -= 1

    dispatcher: ChatDispatcher[Item] = ChatDispatcher(handle, max_concurrent=4, on_done=done.append)
    # Each chat's updates arrive back to back, so free slots are always there for a chat's next
    # update and only the per-chat order keeps it waiting (updates of chats taking turns were
    # kept in order by the slots alone: without the per-chat workers this still passed).
    items = [Item(update_id=i, chat_id=i // 20) for i in range(200)]
    for item in items:
        dispatcher.submit(item)
    assert await dispatcher.join(10)
    for chat_id, ids in handled.items():
        assert ids == [i.update_id for i in items if i.chat_id == chat_id]
    assert sorted(done) == list(range(200))
    assert 1 < peak <= 4
    assert dispatcher.pending == 0


async def test_a_chat_waits_for_its_previous_update() -> None:
    gate = asyncio.Event()
    order: list[int] = []

    async def handle(item: Item) -> None:
        if item.update_id == 1:
            await gate.wait()
        order.append(item.update_id)

    dispatcher: ChatDispatcher[Item] = ChatDispatcher(
        handle, max_concurrent=8, on_done=lambda _: None
    )
    dispatcher.submit(Item(1, chat_id=5))
    dispatcher.submit(Item(2, chat_id=5))
    dispatcher.submit(Item(3, chat_id=6))
    # 3 was submitted after 2: had 2 not waited for 1, it would have been handled before 3.
    await eventually(lambda: 3 in order)
    assert order == [3]  # another chat is not held up
    gate.set()
    assert await dispatcher.join(1)
    assert order == [3, 1, 2]


async def test_a_failing_handler_is_logged_and_the_chat_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[int] = []

    async def handle(item: Item) -> None:
        if item.update_id == 1:
            raise RuntimeError("bug")

    dispatcher: ChatDispatcher[Item] = ChatDispatcher(handle, max_concurrent=1, on_done=done.append)
    dispatcher.submit(Item(1, chat_id=1))
    dispatcher.submit(Item(2, chat_id=1))
    with caplog.at_level(logging.ERROR, logger="tggate.client.dispatch"):
        assert await dispatcher.join(1)
    assert done == [1, 2]
    assert "update 1 failed" in caplog.text


async def test_join_times_out_and_cancel_leaves_updates_unfinished() -> None:
    done: list[int] = []

    async def handle(item: Item) -> None:
        await asyncio.Event().wait()  # never done

    dispatcher: ChatDispatcher[Item] = ChatDispatcher(handle, max_concurrent=1, on_done=done.append)
    dispatcher.submit(Item(1, chat_id=1))
    assert not await dispatcher.join(0.01)
    await dispatcher.cancel()
    assert done == []
    assert await dispatcher.join(0.01)
