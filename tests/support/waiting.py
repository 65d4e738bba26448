"""Waiting for the event itself (issue 9: no timed assertions).

A test waits until what it expects has happened, checked again and again; the deadline only
ends a wait that can no longer succeed, far above any time the event takes, so a busy machine
does not fail the test and a slow one does not pass it: what the test asserts is the event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["eventually", "eventually_sync"]

# Far above anything a test here waits for: reaching it means the event will not come.
HOPELESS_S = 120.0


async def eventually(
    condition: Callable[[], object | Awaitable[object]],
    *,
    within_s: float = HOPELESS_S,
    every_s: float = 0.01,
    what: str = "the condition",
) -> None:
    """Until `condition()` (sync or async) is true; AssertionError naming `what` if it never is."""
    deadline = time.monotonic() + within_s
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s:.0f} s for {what} in vain")
        await asyncio.sleep(every_s)


def eventually_sync(
    condition: Callable[[], object],
    *,
    within_s: float = HOPELESS_S,
    every_s: float = 0.02,
    what: str = "the condition",
) -> None:
    """`eventually` for tests without an event loop (the end-to-end ones)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s:.0f} s for {what} in vain")
        time.sleep(every_s)
