"""Telegram's flood limits, as a bot meets them: about 1 message/s per chat, 20 messages a minute
to one group, 30/s overall; with paid broadcasts (sendMessage's allow_paid_broadcast) up to
1,000/s overall, the messages beyond the free 30/s paid for in Telegram Stars.

Per chat: a token bucket of size 1 (no burst). Per group (a chat with a negative id, as Telegram
numbers groups): at most `group_per_minute` messages in any one-minute window. Overall: at most
`global_per_s` free messages in any one-second window, and at most `paid_per_s` messages of
either kind; a message marked paid goes when the second holds fewer than `paid_per_s`, and is
counted as paid (`RateDecision.paid`). A refused message
gets `retry_after` (whole seconds, at least 1); a message to the same chat before that time has
passed is refused again and counted as a violation, because a client that does not honour
`retry_after` is what the limits are there to catch (docs/contract.md#limits).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["GROUP_WINDOW_S", "RateDecision", "RateLimiter"]

# Requests spaced exactly 1/rate apart by a client arrive with a few ms of jitter: not punished.
_TOLERANCE_S = 0.02
GROUP_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """`retry_after` is None when the message may go; `ignored_retry_after` marks a violation;
    `paid` a paid broadcast that went."""

    retry_after: int | None = None
    ignored_retry_after: bool = False
    paid: bool = False


class _Window:
    """At most `count` events in any `length_s` window."""

    __slots__ = ("count", "events", "length_s")

    def __init__(self, count: int, length_s: float) -> None:
        self.count = count
        self.length_s = length_s
        self.events: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0: it fits now)."""
        while self.events and self.events[0] <= now - self.length_s:
            self.events.popleft()
        if len(self.events) < self.count:
            return 0.0
        return self.events[-self.count] + self.length_s - now


class RateLimiter:
    def __init__(
        self,
        *,
        per_chat_per_s: float,
        global_per_s: float,
        clock: Callable[[], float],
        group_per_minute: int = 20,
        paid_per_s: float = 1000.0,
    ) -> None:
        self._clock = clock
        self._per_chat_interval = 1.0
        self._free = _Window(1, 1.0)
        self._all = _Window(1, 1.0)
        self._group_per_minute = group_per_minute
        self.configure(
            per_chat_per_s=per_chat_per_s,
            global_per_s=global_per_s,
            group_per_minute=group_per_minute,
            paid_per_s=paid_per_s,
        )
        self._next_in_chat: dict[int, float] = {}
        self._retry_until: dict[int, float] = {}
        self._groups: dict[int, _Window] = {}

    def configure(
        self,
        *,
        per_chat_per_s: float,
        global_per_s: float,
        group_per_minute: int,
        paid_per_s: float,
    ) -> None:
        if min(per_chat_per_s, global_per_s, paid_per_s, group_per_minute) <= 0:
            raise ValueError("rates must be positive")
        self._per_chat_interval = 1.0 / per_chat_per_s
        burst = max(1, math.floor(global_per_s))
        self._free = _Window(burst, burst / global_per_s)
        paid_burst = max(1, math.floor(paid_per_s))
        self._all = _Window(paid_burst, paid_burst / paid_per_s)
        self._group_per_minute = group_per_minute
        self._groups = {}

    def reset(self) -> None:
        self._next_in_chat.clear()
        self._retry_until.clear()
        self._free.events.clear()
        self._all.events.clear()
        self._groups.clear()

    def check(self, chat_id: int, *, paid: bool = False) -> RateDecision:
        """Decide on one message to `chat_id` (a paid broadcast when `paid`); an allowed one is
        counted against the limits."""
        now = self._clock()
        retry_until = self._retry_until.get(chat_id)
        if retry_until is not None and now < retry_until - _TOLERANCE_S:
            return RateDecision(
                retry_after=_whole_seconds(retry_until - now), ignored_retry_after=True
            )
        wait = self._next_in_chat.get(chat_id, now) - now
        group = None
        if chat_id < 0:
            group = self._groups.get(chat_id)
            if group is None:
                group = self._groups[chat_id] = _Window(self._group_per_minute, GROUP_WINDOW_S)
            wait = max(wait, group.wait(now))
        wait = max(wait, self._all.wait(now), 0.0 if paid else self._free.wait(now))
        if wait > _TOLERANCE_S:
            retry_after = _whole_seconds(wait)
            self._retry_until[chat_id] = now + retry_after
            return RateDecision(retry_after=retry_after)
        self._retry_until.pop(chat_id, None)
        self._next_in_chat[chat_id] = now + self._per_chat_interval
        if group is not None:
            group.events.append(now)
        self._all.events.append(now)
        if not paid:
            self._free.events.append(now)
        return RateDecision(paid=paid)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))
