"""The artificial delay of a reference module's endpoints ("the module is slow"), for tests.

A delayed request waits `seconds`, or until the delay is set again, whichever comes first. So a
test can keep the module slow for exactly as long as it needs — set a long delay, wait for the
event it is after (so many calls arrived), then set 0 and every waiting request goes on — instead
of guessing a duration that a busy machine makes too short (issue 9: no timed assertions).
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Delay"]


class Delay:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.waiting = 0  # requests held up right now
        self._changed = asyncio.Event()

    def set(self, seconds: float) -> None:
        """The delay from now on; requests already waiting go on at once."""
        self.seconds = seconds
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self) -> None:
        if self.seconds <= 0:
            return
        changed = self._changed
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.seconds)
        finally:
            self.waiting -= 1
