"""The poller lease: acquire, renew, lose, stand by (docs/scenarios.md#lease)."""

from __future__ import annotations

import asyncio

from tests.support.clock import FakeClock
from tests.unit.client.fakes import FakeLeases, FakeLogic, eventually

from tggate.client.lease import LeaseKeeper


async def test_one_holder_at_a_time_and_a_standby_takes_over() -> None:
    leases = FakeLeases()
    a_logic, b_logic = FakeLogic(leases), FakeLogic(leases)
    a = LeaseKeeper(logic=a_logic, instance="a", ttl_s=0.3)
    b = LeaseKeeper(logic=b_logic, instance="b", ttl_s=0.3)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(a.run(stop_a))
    async with asyncio.timeout(1):
        await a.wait_held()
    run_b = asyncio.create_task(b.run(stop_b))
    # Several renewals by a, several refusals for b.
    await eventually(lambda: len(a_logic.lease_calls) >= 4 and len(b_logic.lease_calls) >= 3)
    assert a.held and not b.held
    stop_a.set()
    await run_a
    assert not a.held
    async with asyncio.timeout(2):
        await b.wait_held()
    stop_b.set()
    await run_b


async def test_a_holder_that_cannot_reach_bot_logic_stays_active_until_told_otherwise() -> None:
    # One clock for the keeper and the server's lease table, moved by the test only.
    clock = FakeClock()
    logic = FakeLogic(FakeLeases(monotonic=clock))
    keeper = LeaseKeeper(logic=logic, instance="a", ttl_s=0.6, monotonic=clock)
    stop = asyncio.Event()
    run = asyncio.create_task(keeper.run(stop))
    async with asyncio.timeout(1):
        await keeper.wait_held()
    # Redis (where the lease lives) is down: renewals fail, long past the lease's end.
    logic.lease_down = True
    clock.now = logic.leases.until + 60
    asked = len(logic.lease_calls)
    await eventually(lambda: len(logic.lease_calls) >= asked + 5)
    assert keeper.held and not keeper.confirmed
    # Back, and meanwhile another instance took the lease: that answer makes a stand by.
    assert logic.leases.grant("b", 600)
    logic.lease_down = False
    await eventually(lambda: not keeper.held)
    stop.set()
    await run


async def test_a_standby_that_cannot_reach_bot_logic_stays_standby() -> None:
    clock = FakeClock()
    logic = FakeLogic(FakeLeases(monotonic=clock))
    assert logic.leases.grant("b", 600)
    keeper = LeaseKeeper(logic=logic, instance="a", ttl_s=0.6, monotonic=clock)
    stop = asyncio.Event()
    run = asyncio.create_task(keeper.run(stop))
    await eventually(lambda: len(logic.lease_calls) >= 2)
    logic.lease_down = True
    clock.now = logic.leases.until + 60  # b's lease ran out, but nobody can tell a
    asked = len(logic.lease_calls)
    await eventually(lambda: len(logic.lease_calls) >= asked + 5)
    assert not keeper.held
    logic.lease_down = False
    async with asyncio.timeout(2):
        await keeper.wait_held()
    stop.set()
    await run


async def test_a_409_stands_by_a_holder_only_while_its_lease_is_unconfirmed() -> None:
    clock = FakeClock()
    logic = FakeLogic(FakeLeases(monotonic=clock))
    keeper = LeaseKeeper(logic=logic, instance="a", ttl_s=0.6, monotonic=clock)
    stop = asyncio.Event()
    run = asyncio.create_task(keeper.run(stop))
    async with asyncio.timeout(1):
        await keeper.wait_held()
    keeper.conflicted()  # a stranger polls the token: the confirmed holder keeps its role
    assert keeper.held
    logic.lease_down = True
    clock.now = logic.leases.until + 60
    asked = len(logic.lease_calls)
    await eventually(lambda: len(logic.lease_calls) >= asked + 2)
    assert keeper.held
    keeper.conflicted()  # unconfirmed: the other poller likely holds the lease now
    assert not keeper.held
    stop.set()
    await run


async def test_a_graceful_stop_shortens_the_lease() -> None:
    logic = FakeLogic()
    keeper = LeaseKeeper(logic=logic, instance="a", ttl_s=30)
    stop = asyncio.Event()
    run = asyncio.create_task(keeper.run(stop))
    async with asyncio.timeout(1):
        await keeper.wait_held()
    stop.set()
    await run
    assert logic.lease_calls[-1] == ("a", 1.0)
