"""The poller lease: acquire, renew, lose, stand by (docs/scenarios.md#lease)."""

from __future__ import annotations

import asyncio

from tests.unit.client.fakes import FakeLeases, FakeLogic

from tggate.client.lease import LeaseKeeper


async def test_one_holder_at_a_time_and_a_standby_takes_over() -> None:
    leases = FakeLeases()
    a = LeaseKeeper(logic=FakeLogic(leases), instance="a", ttl_s=0.3)
    b = LeaseKeeper(logic=FakeLogic(leases), instance="b", ttl_s=0.3)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(a.run(stop_a))
    async with asyncio.timeout(1):
        await a.wait_held()
    run_b = asyncio.create_task(b.run(stop_b))
    await asyncio.sleep(0.5)  # several renewals
    assert a.held and not b.held
    stop_a.set()
    await run_a
    assert not a.held
    async with asyncio.timeout(2):
        await b.wait_held()
    stop_b.set()
    await run_b


async def test_a_holder_that_cannot_renew_gives_up_before_the_lease_expires() -> None:
    logic = FakeLogic()
    keeper = LeaseKeeper(logic=logic, instance="a", ttl_s=0.6)
    stop = asyncio.Event()
    run = asyncio.create_task(keeper.run(stop))
    async with asyncio.timeout(1):
        await keeper.wait_held()
    granted_at = asyncio.get_running_loop().time()
    logic.lease_down = True
    async with asyncio.timeout(2):
        await keeper.wait_lost()
    # Lost before the server-side lease (granted for ttl at the last renewal) could run out.
    assert asyncio.get_running_loop().time() < logic.leases.until
    assert asyncio.get_running_loop().time() - granted_at < 0.6
    logic.lease_down = False
    async with asyncio.timeout(2):
        await keeper.wait_held()
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
