"""Telegram's sending limits (docs/contract.md#limits): ~30 messages/s overall, 1 message/s a chat,
20 messages a minute to one group; with paid broadcasts, up to 1,000 messages/s overall.

Telegram counts a message when it processes it, which is some time after it left here and before
its answer came back. So the limits are kept from the *answer* on: a chat's next message leaves
one interval after the previous one was answered, a group's 21st message one minute after its
first was answered, and an overall permit is returned one window after its message was answered.
Requests bunched up by the network then still cannot exceed the limit. `SendLimiter` is the pure
part (the monotonic time is a parameter); `GlobalPermits` the asyncio one.

Groups are told apart by their ids: Telegram gives every group, supergroup and channel a negative
chat id, and every person a positive one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["GROUP_WINDOW_S", "GlobalPermits", "SendLimiter", "is_group"]

GROUP_WINDOW_S = 60.0
_PRUNE_AT = 4096


def is_group(chat_id: int) -> bool:
    return chat_id < 0


class SendLimiter:
    """Per-chat intervals, group windows and 429 pauses, plus even spacing of all messages
    (1/rate apart, `global_per_s` being the highest rate allowed, paid or not)."""

    def __init__(
        self,
        *,
        global_per_s: float,
        per_chat_interval_s: float,
        group_per_minute: int = 20,
    ) -> None:
        if global_per_s <= 0 or per_chat_interval_s < 0 or group_per_minute < 1:
            raise ValueError(
                "global_per_s must be > 0, per_chat_interval_s >= 0, group_per_minute >= 1"
            )
        self._global_gap = 1.0 / global_per_s
        self._chat_gap = per_chat_interval_s
        self._group_count = group_per_minute
        self._global_next = -math.inf
        self._chat_next: dict[int, float] = {}
        # The answers of each group's last `group_per_minute` messages.
        self._group_sent: dict[int, deque[float]] = {}

    def chat_wait(self, chat_id: int, now: float) -> float:
        """Seconds until the chat may get its next message (its interval, a group's window, or
        a 429 pause)."""
        until = self._chat_next.get(chat_id, -math.inf)
        recent = self._group_sent.get(chat_id)
        if recent is not None and len(recent) >= self._group_count:
            until = max(until, recent[0] + GROUP_WINDOW_S)
        return max(0.0, until - now)

    def reserve_global(self, now: float) -> float:
        """Take the next global slot; returns how long to wait for it."""
        slot = max(now, self._global_next)
        self._global_next = slot + self._global_gap
        return slot - now

    def sent(self, chat_id: int, now: float) -> None:
        """Telegram accepted a message to the chat at `now`."""
        self.hold_chat(chat_id, now + self._chat_gap)
        if is_group(chat_id):
            recent = self._group_sent.setdefault(chat_id, deque(maxlen=self._group_count))
            recent.append(now)
        if len(self._chat_next) > _PRUNE_AT:
            self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        if len(self._group_sent) > _PRUNE_AT:
            self._group_sent = {
                c: times
                for c, times in self._group_sent.items()
                if times[-1] + GROUP_WINDOW_S > now
            }

    def hold_chat(self, chat_id: int, until: float) -> None:
        """Nothing goes to the chat before `until` (a 429's retry_after is for that chat only)."""
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, -math.inf), until)


class GlobalPermits:
    """At most floor(rate) messages in any window of floor(rate)/rate seconds (1 s for 30/s).

    A send holds a permit from before it leaves until one window after its answer arrived.
    With `paid_per_s` above `free_per_s` there are two kinds: a message takes a free permit when
    one is left, and otherwise goes as a paid broadcast (Telegram charges for each of those), up
    to `paid_per_s` messages in all; `permit()` says which.
    """

    def __init__(
        self,
        *,
        free_per_s: float,
        paid_per_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`monotonic` and `sleep` are the clock's, for tests to replace. (The event loop's own
        clock is the same one, but on Python 3.11 each lookup of the running loop is a getpid()
        system call.)"""
        self._free = _Window(free_per_s, monotonic, sleep)
        self._all = _Window(paid_per_s, monotonic, sleep) if paid_per_s > free_per_s else None

    def permit(self, *, may_pay: bool = True) -> _Permit:
        """Hold a permit while sending (`async with`): it says True when the message goes as a
        paid broadcast (never unless `may_pay`: then it waits for a free permit)."""
        return _Permit(self._free, self._all, may_pay)


class _Permit:
    """One send's permit, as an `async with`. A class, not an @asynccontextmanager: that one's
    generator and wrapper objects were a visible share of each message sent (bench/README.md,
    "Profiles")."""

    __slots__ = ("_all", "_free", "_may_pay", "_took_free")

    def __init__(self, free: _Window, every: _Window | None, may_pay: bool) -> None:
        self._free = free
        self._all = every
        self._may_pay = may_pay
        self._took_free = False

    async def __aenter__(self) -> bool:
        every = self._all
        if every is not None:
            await every.take()
        try:
            if every is None or not self._may_pay:
                await self._free.take()
                self._took_free = True
            else:
                self._took_free = self._free.take_if_free()
        except BaseException:
            if every is not None:  # cancelled while waiting for a free one
                every.give_back_later()
            raise
        return not self._took_free

    async def __aexit__(self, *_exc: object) -> None:
        if self._took_free:
            self._free.give_back_later()
        if self._all is not None:
            self._all.give_back_later()


class _Window:
    """floor(rate) permits, each given back one window of floor(rate)/rate seconds later.

    A permit given back is noted with the time it is free again, and counted back in by the
    next `take` that finds it due: no timer per message. A timer per message (`call_later`)
    woke an otherwise idle client once more for each one it sent, at ~40 µs of CPU a wake-up
    (bench/README.md, "Profiles"). Waiters take their turn in order, the first one sleeping
    until the oldest permit is back."""

    def __init__(
        self,
        per_s: float,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        count = max(1, math.floor(per_s))
        self._window_s = count / per_s
        self._free = count
        self._back_at: deque[float] = deque()  # when each given-back permit is free, in order
        self._turns = asyncio.Lock()  # waiters, first come first served
        self._given: asyncio.Future[None] | None = None  # a waiter for the next give-back

    def _count_back(self, now: float) -> None:
        while self._back_at and self._back_at[0] <= now:
            self._back_at.popleft()
            self._free += 1

    async def take(self) -> None:
        if self.take_if_free():
            return
        async with self._turns:
            while True:
                now = self._monotonic()
                self._count_back(now)
                if self._free > 0:
                    self._free -= 1
                    return
                if self._back_at:
                    await self._sleep(self._back_at[0] - now)
                else:  # every permit is out with a message: wait until one is given back
                    self._given = asyncio.get_running_loop().create_future()
                    await self._given

    def take_if_free(self) -> bool:
        """Take a permit only if one is free now (and nobody is waiting for one)."""
        if self._turns.locked():
            return False
        self._count_back(self._monotonic())
        if self._free > 0:
            self._free -= 1
            return True
        return False

    def give_back_later(self) -> None:
        self._back_at.append(self._monotonic() + self._window_s)
        if self._given is not None and not self._given.done():
            self._given.set_result(None)
