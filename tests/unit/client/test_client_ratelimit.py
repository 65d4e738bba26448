"""Sending limits as bookkeeping, with the clock in the test's hand."""

from __future__ import annotations

import asyncio
import itertools

from tests.support.clock import FakeClock
from tests.unit.client.fakes import eventually

from tggate.client.ratelimit import GlobalPermits, SendLimiter


def test_global_rate_spaces_messages_evenly() -> None:
    limits = SendLimiter(global_per_s=30, per_chat_interval_s=1)
    waits = [limits.reserve_global(0.0) for _ in range(60)]
    slots = sorted(waits)
    assert slots[0] == 0
    assert all(abs((b - a) - 1 / 30) < 1e-9 for a, b in itertools.pairwise(slots))
    # No one-second window [t, t+1) holds more than 30 of them (give or take float rounding).
    assert max(sum(1 for s in slots if t <= s < t + 1 - 1e-9) for t in slots) <= 30


def test_global_slots_do_not_pile_up_while_idle() -> None:
    limits = SendLimiter(global_per_s=10, per_chat_interval_s=0)
    assert limits.reserve_global(0.0) == 0
    assert limits.reserve_global(5.0) == 0


def test_per_chat_interval() -> None:
    limits = SendLimiter(global_per_s=30, per_chat_interval_s=1)
    limits.sent(1, now=10.0)
    assert limits.chat_wait(1, 10.25) == 0.75
    assert limits.chat_wait(2, 10.25) == 0
    assert limits.chat_wait(1, 11.0) == 0


def test_retry_after_holds_only_that_chat_and_never_shortens() -> None:
    limits = SendLimiter(global_per_s=30, per_chat_interval_s=1)
    limits.hold_chat(7, until=20.0)
    limits.sent(7, now=0.0)  # an earlier, shorter interval does not cut the hold
    assert limits.chat_wait(7, 5.0) == 15.0
    assert limits.chat_wait(8, 5.0) == 0


async def test_global_permits_count_the_window_from_each_answer() -> None:
    permits = GlobalPermits(free_per_s=50)  # 50 permits, each back 1 s after its answer
    loop = asyncio.get_running_loop()
    inside = 0
    answer = asyncio.Event()
    answered: list[float] = []

    async def send() -> None:
        nonlocal inside
        async with permits.permit():
            inside += 1
            await answer.wait()
            answered.append(loop.time())

    sends = [asyncio.create_task(send()) for _ in range(50)]
    try:
        await eventually(lambda: inside == 50, within_s=10)  # a full window's worth at once
    finally:
        answer.set()
        await asyncio.gather(*sends)
    await send()
    # The 51st waited until one window after the first answer: the permit's requirement itself,
    # a lower bound a busy machine cannot break (call_later never fires early).
    assert answered[-1] >= min(answered[:-1]) + 1.0 - 0.01


class HeldTime:
    """The permits' clock and sleep: a sleeper wakes only when the test moves the clock to the
    end of its sleep; `sleeping` has when each sleeper now waiting wakes up."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sleeping: list[float] = []
        self._moved = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        until = self.clock() + seconds
        self.sleeping.append(until)
        try:
            async with self._moved:
                await self._moved.wait_for(lambda: self.clock() >= until)
        finally:
            self.sleeping.remove(until)

    async def advance_to(self, when: float) -> None:
        self.clock.now = when
        async with self._moved:
            self._moved.notify_all()


async def test_a_global_permit_is_back_one_full_window_after_its_answer() -> None:
    time = HeldTime()
    permits = GlobalPermits(free_per_s=30, monotonic=time.clock, sleep=time.sleep)
    start = time.clock()
    step = 1 / 64  # steps exact in binary, so the clock hits each give-back time exactly
    for _ in range(30):  # a full window's worth, answered 1/64 s apart
        async with permits.permit():
            pass
        time.clock.advance(step)
    # Half a window after the first answer every permit is still out: the 31st message waits
    # until the first answer is a full window (1 s) old, the 32nd until the second one is.
    await time.advance_to(start + 0.5)
    granted: list[float] = []

    async def send() -> None:
        async with permits.permit():
            granted.append(time.clock())

    sends = [asyncio.create_task(send()) for _ in range(2)]
    await eventually(lambda: granted or time.sleeping)
    assert granted == []
    assert time.sleeping == [start + 1.0]
    await time.advance_to(start + 1.0)
    await eventually(lambda: granted and time.sleeping)
    assert granted == [start + 1.0]
    assert time.sleeping == [start + 1.0 + step]
    await time.advance_to(start + 1.0 + step)
    await asyncio.gather(*sends)
    assert granted == [start + 1.0, start + 1.0 + step]


async def test_a_paid_permit_is_back_one_full_window_after_its_answer() -> None:
    # The overall window (paid broadcasts) counted from each answer as the free one.
    time = HeldTime()
    permits = GlobalPermits(free_per_s=2, paid_per_s=4, monotonic=time.clock, sleep=time.sleep)
    start = time.clock()
    kinds = []
    for _ in range(4):
        async with permits.permit() as paid:
            kinds.append(paid)
    assert kinds == [False, False, True, True]
    await time.advance_to(start + 0.5)

    async def fifth() -> bool:
        async with permits.permit() as paid:
            return paid

    sending = asyncio.create_task(fifth())
    await eventually(lambda: sending.done() or time.sleeping)
    assert not sending.done()
    assert time.sleeping == [start + 1.0]
    await time.advance_to(start + 1.0)
    assert await sending is False  # a free permit is back as well by then


def test_a_group_gets_twenty_messages_a_minute() -> None:
    limits = SendLimiter(global_per_s=30, per_chat_interval_s=1, group_per_minute=20)
    for second in range(20):
        assert limits.chat_wait(-5, float(second)) == 0
        limits.sent(-5, now=float(second))
    # The 21st waits until the first is a minute old, not just a second.
    assert limits.chat_wait(-5, 20.0) == 40.0
    assert limits.chat_wait(-5, 60.0) == 0
    limits.sent(-5, now=60.0)
    assert limits.chat_wait(-5, 61.0) == 0  # the second one (at 1 s) is a minute old too


def test_a_person_has_no_minute_window() -> None:
    limits = SendLimiter(global_per_s=30, per_chat_interval_s=1, group_per_minute=20)
    for second in range(25):
        assert limits.chat_wait(5, float(second)) == 0
        limits.sent(5, now=float(second))


async def test_paid_permits_come_after_the_free_ones() -> None:
    permits = GlobalPermits(free_per_s=5, paid_per_s=20)
    paid: list[bool] = []
    release = asyncio.Event()

    async def send() -> None:
        async with permits.permit() as as_paid:
            paid.append(as_paid)
            await release.wait()

    senders = [asyncio.create_task(send()) for _ in range(21)]
    await eventually(lambda: len(paid) == 20)
    # 5 free, then 15 paid; the 21st waits for the overall window (20 a second).
    assert paid == [False] * 5 + [True] * 15
    release.set()
    await asyncio.gather(*senders)
    assert paid[20] is False  # a window after the first answers: free again


async def test_a_permit_that_may_not_pay_waits_for_a_free_one() -> None:
    permits = GlobalPermits(free_per_s=2, paid_per_s=100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    kinds = []
    for _ in range(3):
        async with permits.permit(may_pay=False) as as_paid:
            kinds.append(as_paid)
    assert kinds == [False, False, False]
    assert loop.time() - started >= 1.0 - 0.01  # the third waited for a free permit
