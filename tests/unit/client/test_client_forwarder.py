"""One update: C4 recognise, C5 answer unknown, C6 forward, then send the replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.support.clock import FakeClock
from tests.support.commands import TABLE
from tests.unit.client.fakes import CommandCall, FakeLogic, FakeTelegram, Sent, eventually

from tggate.client.base import CallbackPress, IncomingMessage, LogicRejected, LogicUnavailable
from tggate.client.forwarder import Forwarder
from tggate.client.retry import Backoff
from tggate.client.sender import Sender
from tggate.core.replies import Button, ChatReply, Keyboard, Reply

INSTANT = Backoff(initial_s=0, max_s=0)


def make(telegram: FakeTelegram, logic: FakeLogic, *, notice_after_s: float = 60) -> Forwarder:
    sender = Sender(telegram, global_per_s=1000, per_chat_interval_s=0, backoff=INSTANT)
    return Forwarder(
        telegram=telegram,
        logic=logic,
        sender=sender,
        table=TABLE,
        backoff=INSTANT,
        notice_after_s=notice_after_s,
    )


async def test_C5_unknown_text_is_answered_without_bot_logic() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    forwarder = make(telegram, logic)
    await forwarder.handle(IncomingMessage(1, 42, "hello", "ru"))
    await forwarder.handle(IncomingMessage(2, 42, "/nosuch", "en"))
    await forwarder.handle(IncomingMessage(3, 42, None, "ru"))  # a sticker
    assert telegram.texts(42) == ["Нет такой команды", "No such command", "Нет такой команды"]
    assert logic.calls == []


async def test_wrong_arguments_get_the_usage_without_bot_logic() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    await make(telegram, logic).handle(IncomingMessage(1, 42, "/course", "ru"))
    assert telegram.texts(42) == ["Неверные аргументы: /course <course_id>"]
    assert logic.calls == []


async def test_C6_known_command_is_forwarded_with_parsed_args_and_language() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    await make(telegram, logic).handle(IncomingMessage(9, 42, "/login github", "en"))
    assert logic.calls == [CommandCall(9, 42, "login", {"type": "github"}, "/login github", "en")]
    assert telegram.texts(42) == ["ok /login github"]


async def test_replies_go_where_bot_logic_says_with_buttons() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    keyboard = (
        (
            Button("GitHub", url="https://github.com/login"),
            Button("Code", command="/login code"),
        ),
    )
    logic.answer = lambda call: [
        ChatReply(42, Reply("first", keyboard)),
        ChatReply(43, Reply("second")),
    ]
    await make(telegram, logic).handle(IncomingMessage(1, 42, "/start", "ru"))
    assert telegram.sent == [Sent(42, "first", keyboard), Sent(43, "second")]


async def test_transient_failures_are_retried_with_the_same_update_id() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.failures[5] = [LogicUnavailable("503"), LogicUnavailable("409")]
    await make(telegram, logic).handle(IncomingMessage(5, 42, "/help", "ru"))
    assert [c.update_id for c in logic.calls] == [5, 5, 5]
    assert telegram.texts(42) == ["ok /help"]


async def test_a_4xx_gives_a_generic_error_and_moves_on() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.failures[5] = [LogicRejected(422, "bad")]
    await make(telegram, logic).handle(IncomingMessage(5, 42, "/help", "en"))
    assert len(logic.calls) == 1
    assert telegram.texts(42) == ["Something went wrong. Please try again later."]


async def test_a_button_press_is_answered_and_forwarded_as_a_command() -> None:
    telegram, logic = FakeTelegram(), FakeLogic()
    await make(telegram, logic).handle(CallbackPress(3, 42, "cb-1", "/login code", "ru"))
    assert telegram.answered == ["cb-1"]
    assert logic.calls == [CommandCall(3, 42, "login", {"type": "code"}, "/login code", "ru")]
    assert telegram.texts(42) == ["ok /login code"]


class ClockTimer:
    """A `call_later` timer on the FakeClock (see `ClockSleep.call_later`)."""

    def __init__(self, owner: ClockSleep, when: float, callback: Callable[[], None]) -> None:
        self.owner, self.when, self.callback = owner, when, callback

    def cancel(self) -> None:
        if self in self.owner.timers:
            self.owner.timers.remove(self)
            self.owner.waking.remove(self.when)


class ClockSleep:
    """`sleep` and `call_later` on the FakeClock: sleepers wake and timers fire only when the
    test moves the clock past them."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waking: list[float] = []  # when each sleeper now waiting (or timer) wakes up
        self.timers: list[ClockTimer] = []
        self._moved = asyncio.Condition()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> ClockTimer:
        timer = ClockTimer(self, self.clock() + seconds, callback)
        self.timers.append(timer)
        self.waking.append(timer.when)
        return timer

    async def __call__(self, seconds: float) -> None:
        until = self.clock() + seconds
        self.waking.append(until)
        try:
            async with self._moved:
                await self._moved.wait_for(lambda: self.clock() >= until)
        finally:
            self.waking.remove(until)

    async def advance_to(self, when: float) -> None:
        self.clock.now = when
        for timer in [t for t in self.timers if t.when <= when]:
            timer.cancel()  # off the lists: it fires once
            timer.callback()
        async with self._moved:
            self._moved.notify_all()


def timed(
    telegram: FakeTelegram, logic: FakeLogic, sleep: ClockSleep, backoff: Backoff
) -> Forwarder:
    sender = Sender(telegram, global_per_s=1000, per_chat_interval_s=0, backoff=INSTANT)
    return Forwarder(
        telegram=telegram,
        logic=logic,
        sender=sender,
        table=TABLE,
        backoff=backoff,
        notice_after_s=10,
        sleep=sleep,
        call_later=sleep.call_later,
    )


NOTICE = "Сервис временно недоступен. Ответ придёт, как только он заработает."
# The longest back-off, unjittered: the schedule the notice used to wait for.
SLOW = Backoff(initial_s=30, max_s=30, jitter=False)


async def test_the_delay_notice_comes_at_notice_after_s_whatever_the_retry_schedule() -> None:
    clock = FakeClock()
    sleep = ClockSleep(clock)
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.failures[5] = [LogicUnavailable("connection refused")] * 3
    taken = clock()
    handling = asyncio.create_task(
        timed(telegram, logic, sleep, SLOW).handle(IncomingMessage(5, 42, "/help", "ru"))
    )
    # The first attempt failed; the retry sleeps 30 s and the notice timer 10 s beside it.
    await eventually(lambda: sorted(sleep.waking) == [taken + 10, taken + 30])
    await sleep.advance_to(taken + 10)
    await eventually(lambda: telegram.texts(42) == [NOTICE])
    assert len(logic.calls) == 1  # still in the first back-off: the timer did not wait for it
    # Two more failures, 30 s apart: no second notice; then the answer.
    await eventually(lambda: sleep.waking == [taken + 30])
    await sleep.advance_to(taken + 30)
    await eventually(lambda: sleep.waking == [taken + 60])
    await sleep.advance_to(taken + 60)
    await eventually(lambda: sleep.waking == [taken + 90])
    await sleep.advance_to(taken + 90)
    await handling
    assert telegram.texts(42) == [NOTICE, "ok /help"]
    assert len(logic.calls) == 4


async def test_an_answer_within_notice_after_s_comes_without_a_notice() -> None:
    clock = FakeClock()
    sleep = ClockSleep(clock)
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.failures[5] = [LogicUnavailable("503")]
    taken = clock()
    backoff = Backoff(initial_s=5, max_s=5, jitter=False)
    handling = asyncio.create_task(
        timed(telegram, logic, sleep, backoff).handle(IncomingMessage(5, 42, "/help", "ru"))
    )
    await eventually(lambda: sorted(sleep.waking) == [taken + 5, taken + 10])
    await sleep.advance_to(taken + 5)
    await handling
    assert telegram.texts(42) == ["ok /help"]
    assert sleep.waking == []  # the timer went with the handling


async def test_a_slow_answer_gets_the_notice_too() -> None:
    # Bot Logic answering late (a hung module) is as delayed for the person as one failing.
    clock = FakeClock()
    sleep = ClockSleep(clock)
    telegram, logic = FakeTelegram(), FakeLogic()
    logic.answer_when = answer = asyncio.Event()
    taken = clock()
    handling = asyncio.create_task(
        timed(telegram, logic, sleep, SLOW).handle(IncomingMessage(5, 42, "/help", "ru"))
    )
    await eventually(lambda: sleep.waking == [taken + 10])
    await sleep.advance_to(taken + 10)
    await eventually(lambda: telegram.texts(42) == [NOTICE])
    answer.set()
    await handling
    assert telegram.texts(42) == [NOTICE, "ok /help"]


class SlowNoticeTelegram(FakeTelegram):
    """A Telegram that takes its time over the delay notice: its sendMessage starts (`started`)
    and is answered only once the test sets `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []
        self.release = asyncio.Event()

    async def send_message(
        self, *, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False
    ) -> None:
        self.started.append(text)
        if text == NOTICE:
            await self.release.wait()
        await super().send_message(chat_id=chat_id, text=text, buttons=buttons, paid=paid)


async def test_an_answer_arriving_as_the_notice_goes_out_waits_for_it() -> None:
    clock = FakeClock()
    sleep = ClockSleep(clock)
    telegram, logic = SlowNoticeTelegram(), FakeLogic()
    logic.answer_when = answer = asyncio.Event()
    taken = clock()
    handling = asyncio.create_task(
        timed(telegram, logic, sleep, SLOW).handle(IncomingMessage(5, 42, "/help", "ru"))
    )
    await eventually(lambda: sleep.waking == [taken + 10])
    # Bot Logic's answer and the notice's timer in the same turn of the event loop: the answer
    # is back before the notice's send has even started, and Telegram is slow to take it.
    answer.set()
    await sleep.advance_to(taken + 10)
    await eventually(lambda: NOTICE in telegram.started)
    assert telegram.started == [NOTICE]  # the answer waits for the notice's send to finish
    telegram.release.set()
    await handling
    assert telegram.texts(42) == [NOTICE, "ok /help"]
