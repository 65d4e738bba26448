"""Sending within Telegram's limits: per chat order, 429 for one chat only, splitting, drops."""

from __future__ import annotations

import asyncio
import itertools

from tests.support.clock import FakeClock
from tests.unit.client.fakes import FakeTelegram, Sent, eventually

from tggate.client.base import Rejected, RetryLater, Unavailable
from tggate.client.retry import Backoff
from tggate.client.sender import Delivery, Sender, usable_keyboard
from tggate.core.replies import Button, Keyboard, Reply

INSTANT = Backoff(initial_s=0, max_s=0)


def make(telegram: FakeTelegram, *, per_chat: float = 0.0, rate: float = 1000) -> Sender:
    return Sender(telegram, global_per_s=rate, per_chat_interval_s=per_chat, backoff=INSTANT)


async def test_long_text_goes_in_order_with_buttons_on_the_last_piece() -> None:
    telegram = FakeTelegram()
    keyboard = ((Button("Open", url="https://example.com"),),)
    text = "\n".join(f"{i:05d}" + "z" * 100 for i in range(100))
    assert await make(telegram).send(1, Reply(text, keyboard)) is Delivery.SENT
    assert len(telegram.sent) == 3
    assert "\n".join(m.text for m in telegram.sent) == text
    assert [m.buttons for m in telegram.sent] == [(), (), keyboard]


class VirtualTime:
    """The sender's clock and sleep (issue 9: no timed assertions). A wait moves the clock on at
    once and is written down; a wait of at least `hold_s` lasts until `release()` as well, so a
    test can act while a chat is paused."""

    def __init__(self, *, hold_s: float = float("inf")) -> None:
        self.clock = FakeClock()
        self.waits: list[float] = []
        self._hold_s = hold_s
        self._released = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if seconds >= self._hold_s:
            await self._released.wait()
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def release(self) -> None:
        self._released.set()


def make_virtual(telegram: FakeTelegram, time: VirtualTime, *, per_chat: float = 0.0) -> Sender:
    return Sender(
        telegram,
        global_per_s=1000,
        per_chat_interval_s=per_chat,
        backoff=INSTANT,
        monotonic=time.clock,
        sleep=time.sleep,
    )


async def test_a_429_pauses_only_that_chat() -> None:
    telegram = FakeTelegram()
    telegram.send_errors[1] = [RetryLater(30)]
    time = VirtualTime(hold_s=1)  # the global spacing (1 ms here) passes; the 429's pause holds
    sender = make_virtual(telegram, time)
    slow = asyncio.create_task(sender.send(1, Reply("to the limited chat")))
    await eventually(lambda: 30 in time.waits)  # chat 1 is paused for its retry_after
    other = asyncio.create_task(sender.send(2, Reply("to another chat")))
    # Done, or paused too (a second long wait): whichever comes first.
    await eventually(lambda: other.done() or len([w for w in time.waits if w >= 1]) > 1)
    time.release()
    assert other.done(), "the other chat waited for chat 1's pause"
    assert await other is Delivery.SENT
    assert telegram.sent == [Sent(2, "to another chat")]  # while chat 1 still waits
    assert await slow is Delivery.SENT
    assert telegram.sent == [Sent(2, "to another chat"), Sent(1, "to the limited chat")]
    assert [w for w in time.waits if w >= 1] == [30]


async def test_per_chat_interval_and_order() -> None:
    telegram = FakeTelegram()
    time = VirtualTime()
    left_at: list[float] = []
    original = telegram.send_message

    async def timed(*, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False) -> None:
        left_at.append(time.clock())
        await original(chat_id=chat_id, text=text, buttons=buttons, paid=paid)

    telegram.send_message = timed  # type: ignore[method-assign]
    sender = make_virtual(telegram, time, per_chat=0.05)
    results = await asyncio.gather(*(sender.send(1, Reply(f"m{i}")) for i in range(5)))
    assert results == [Delivery.SENT] * 5
    assert telegram.texts(1) == [f"m{i}" for i in range(5)]
    # Each message left at least the interval after the one before it (virtual seconds).
    gaps = [b - a for a, b in itertools.pairwise(left_at)]
    assert len(gaps) == 4 and all(gap >= 0.05 - 1e-6 for gap in gaps), gaps


async def test_a_refused_message_is_dropped_and_a_bad_button_costs_only_the_buttons() -> None:
    telegram = FakeTelegram()
    telegram.send_errors[1] = [Rejected("chat not found")]
    sender = make(telegram)
    assert await sender.send(1, Reply("lost")) is Delivery.REJECTED
    telegram.send_errors[2] = [Rejected("BUTTON_URL_INVALID")]
    keyboard = ((Button("x", url="bad"),),)
    assert await sender.send(2, Reply("kept", keyboard)) is Delivery.SENT
    assert telegram.sent == [Sent(2, "kept")]


async def test_network_errors_are_retried_or_given_up_after_the_attempts() -> None:
    telegram = FakeTelegram()
    telegram.send_errors[1] = [Unavailable("reset")] * 2
    sender = make(telegram)
    assert await sender.send(1, Reply("eventually")) is Delivery.SENT
    telegram.send_errors[1] = [Unavailable("reset")] * 5
    assert await sender.send(1, Reply("not now"), attempts=3) is Delivery.GAVE_UP
    assert telegram.texts(1) == ["eventually"]


async def test_empty_text_is_not_sent() -> None:
    telegram = FakeTelegram()
    assert await make(telegram).send(1, Reply(" \n")) is Delivery.REJECTED
    assert telegram.sent == []


def test_buttons_with_callback_data_over_64_bytes_are_dropped() -> None:
    ok = Button("ok", command="/login code")
    long = Button("long", command="/" + "я" * 40)
    assert usable_keyboard(((ok, long), (long,))) == ((ok,),)


async def test_paid_broadcasts_only_beyond_the_free_rate() -> None:
    telegram = FakeTelegram()
    sender = Sender(
        telegram, global_per_s=3, per_chat_interval_s=0, paid_per_s=100, backoff=INSTANT
    )
    await asyncio.gather(*(sender.send(chat, Reply(f"to {chat}")) for chat in range(10)))
    assert sorted(m.chat_id for m in telegram.sent) == list(range(10))
    assert [m.paid for m in telegram.sent] == [False] * 3 + [True] * 7


async def test_a_refused_paid_broadcast_is_sent_again_within_the_free_rate() -> None:
    telegram = FakeTelegram()
    telegram.refuse_paid = True
    sender = Sender(
        telegram, global_per_s=2, per_chat_interval_s=0, paid_per_s=100, backoff=INSTANT
    )
    results = await asyncio.gather(*(sender.send(chat, Reply("hi")) for chat in range(4)))
    assert results == [Delivery.SENT] * 4  # nothing lost to the refusal
    assert sorted(m.chat_id for m in telegram.sent) == [0, 1, 2, 3]
    assert not any(m.paid for m in telegram.sent)


async def test_a_group_waits_a_minute_after_twenty_messages() -> None:
    clock = FakeClock(0.0)

    async def sleep(seconds: float) -> None:  # one chat: its waits follow each other
        clock.advance(seconds)
        await asyncio.sleep(0)

    telegram = FakeTelegram()
    telegram.clock = clock
    sender = Sender(
        telegram,
        global_per_s=1000,
        per_chat_interval_s=1,
        group_per_minute=20,
        backoff=INSTANT,
        monotonic=clock,
        sleep=sleep,
    )
    for i in range(25):
        assert await sender.send(-100, Reply(f"m{i}")) is Delivery.SENT
    times = telegram.sent_at
    assert telegram.texts(-100) == [f"m{i}" for i in range(25)]
    assert all(b - a >= 1 for a, b in itertools.pairwise(times))
    # No minute holds more than 20 of them; the 21st waited for the first to be a minute old.
    assert all(times[k + 20] - times[k] >= 60 for k in range(len(times) - 20))
