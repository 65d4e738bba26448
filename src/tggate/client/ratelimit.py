"""Telegram's sending limits (docs/contract.md#limits: ~30 messages/s overall, 1 message/s a chat).

Telegram counts a message when it processes it, which is some time after it left here and before
its answer came back. So the limits are kept from the *answer* on: a chat's next message leaves
one interval after the previous one was answered, and a global permit is returned one window
after its message was answered. Requests bunched up by the network then still cannot exceed the
limit. `SendLimiter` is the pure part (the monotonic time is a parameter); `GlobalPermits` the
asyncio one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["GlobalPermits", "SendLimiter"]

_PRUNE_AT = 4096


class SendLimiter:
    """Per-chat intervals and 429 pauses, plus even spacing of all messages (1/rate apart)."""

    def __init__(self, *, global_per_s: float, per_chat_interval_s: float) -> None:
        if global_per_s <= 0 or per_chat_interval_s < 0:
            raise ValueError("global_per_s must be > 0 and per_chat_interval_s >= 0")
        self._global_gap = 1.0 / global_per_s
        self._chat_gap = per_chat_interval_s
        self._global_next = -math.inf
        self._chat_next: dict[int, float] = {}

    def chat_wait(self, chat_id: int, now: float) -> float:
        """Seconds until the chat may get its next message (its interval, or a 429 pause)."""
        return max(0.0, self._chat_next.get(chat_id, -math.inf) - now)

    def reserve_global(self, now: float) -> float:
        """Take the next global slot; returns how long to wait for it."""
        slot = max(now, self._global_next)
        self._global_next = slot + self._global_gap
        return slot - now

    def sent(self, chat_id: int, now: float) -> None:
        """Telegram accepted a message to the chat at `now`."""
        self.hold_chat(chat_id, now + self._chat_gap)
        if len(self._chat_next) > _PRUNE_AT:
            self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}

    def hold_chat(self, chat_id: int, until: float) -> None:
        """Nothing goes to the chat before `until` (a 429's retry_after is for that chat only)."""
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, -math.inf), until)


class GlobalPermits:
    """At most floor(rate) messages in any window of floor(rate)/rate seconds (1 s for 30/s).

    A send holds a permit from before it leaves until one window after its answer arrived.
    """

    def __init__(self, *, global_per_s: float) -> None:
        self._count = max(1, math.floor(global_per_s))
        self._window_s = self._count / global_per_s
        self._permits = asyncio.Semaphore(self._count)

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[None]:
        await self._permits.acquire()
        try:
            yield
        finally:
            asyncio.get_running_loop().call_later(self._window_s, self._permits.release)
