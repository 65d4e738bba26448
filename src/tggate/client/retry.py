"""Back-off delays, stop-aware sleeping and once-per-outage logging."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

__all__ = ["Backoff", "OutageLog", "first_of", "sleep_or_stop"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential back-off with full jitter, capped; `Backoff(initial_s=0, max_s=0)` is instant."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
        if not self.jitter:
            return ceiling
        # Half fixed, half random: spreads retries of many chats without ever waiting ~0.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stop` is set first; True when stopped."""
    if stop.is_set():
        return True
    if seconds <= 0:
        await asyncio.sleep(0)
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def first_of(*awaitables: Awaitable[Any], within_s: float | None = None) -> None:
    """Wait until one of them is done (or `within_s` passed); cancel the rest."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(tasks, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class OutageLog:
    """Logs the first failure of a streak as a warning and the recovery as info, nothing between.

    A dependency that is down for an hour gives two log lines, not one per attempt.
    """

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._failures = 0

    @property
    def failing(self) -> bool:
        return self._failures > 0

    def failed(self, detail: str) -> None:
        self._failures += 1
        if self._failures == 1:
            self._logger.warning("%s failed, retrying with back-off: %s", self._what, detail)
        else:
            self._logger.debug("%s failed again (%d): %s", self._what, self._failures, detail)

    def succeeded(self) -> None:
        if self._failures:
            self._logger.info("%s works again after %d failures", self._what, self._failures)
            self._failures = 0
