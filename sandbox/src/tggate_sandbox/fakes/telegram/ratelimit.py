"""Telegram's flood limits, as a bot meets them: about 1 message/s per chat and 30/s overall.

Per chat: a token bucket of size 1 (no burst). Overall: at most `global_per_s` messages in any
one-second window. A refused message gets `retry_after` (whole seconds, at least 1); a message to
the same chat before that time has passed is refused again and counted as a violation, because a
client that does not honour `retry_after` is what the limits are there to catch
(docs/contract.md#limits).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "Verdict"]

# Requests spaced exactly 1/rate apart by a client arrive with a few ms of jitter: not punished.
_TOLERANCE_S = 0.02


@dataclass(frozen=True, slots=True)
class Verdict:
    """`retry_after` is None when the message may go; `ignored_retry_after` marks a violation."""

    retry_after: int | None = None
    ignored_retry_after: bool = False


class RateLimiter:
    def __init__(
        self, *, per_chat_per_s: float, global_per_s: float, clock: Callable[[], float]
    ) -> None:
        self._clock = clock
        self._per_chat_interval = 1.0
        self._global_burst = 1
        self._global_window = 1.0
        self.configure(per_chat_per_s=per_chat_per_s, global_per_s=global_per_s)
        self._next_in_chat: dict[int, float] = {}
        self._retry_until: dict[int, float] = {}
        self._recent: deque[float] = deque()

    def configure(self, *, per_chat_per_s: float, global_per_s: float) -> None:
        if per_chat_per_s <= 0 or global_per_s <= 0:
            raise ValueError("rates must be positive")
        self._per_chat_interval = 1.0 / per_chat_per_s
        self._global_burst = max(1, math.floor(global_per_s))
        self._global_window = self._global_burst / global_per_s

    def reset(self) -> None:
        self._next_in_chat.clear()
        self._retry_until.clear()
        self._recent.clear()

    def check(self, chat_id: int) -> Verdict:
        """Decide on one message to `chat_id`; an allowed one is counted against the limits."""
        now = self._clock()
        retry_until = self._retry_until.get(chat_id)
        if retry_until is not None and now < retry_until - _TOLERANCE_S:
            return Verdict(retry_after=_whole_seconds(retry_until - now), ignored_retry_after=True)
        while self._recent and self._recent[0] <= now - self._global_window:
            self._recent.popleft()
        wait = self._next_in_chat.get(chat_id, now) - now
        if len(self._recent) >= self._global_burst:
            wait = max(wait, self._recent[0] + self._global_window - now)
        if wait > _TOLERANCE_S:
            retry_after = _whole_seconds(wait)
            self._retry_until[chat_id] = now + retry_after
            return Verdict(retry_after=retry_after)
        self._retry_until.pop(chat_id, None)
        self._next_in_chat[chat_id] = now + self._per_chat_interval
        self._recent.append(now)
        return Verdict()


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))
