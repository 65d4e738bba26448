"""Long polling of getUpdates with confirmation only after handling (C2, C3;
docs/contract.md#reliability).

Telegram forgets every update below the offset of a getUpdates call, and the offset is also the
only cursor for fetching more. So while updates are in flight the poller asks again from the
lowest unfinished one (with timeout 0, since Telegram answers at once anyway), skips what it
already has, and waits for progress before asking again while any is in flight. A consequence
of the Bot API worth knowing: with limit=100, at most 100 updates beyond the oldest unfinished
one can be in flight.

Each of those calls answers every update it already holds again, which is what a busy client
spends its time on if it asks after every finished update (bench/README.md, "Profiles"). So once
an answer filled the whole window (limit updates), the poller asks again only when a quarter of
the window is free, or sooner when the chats' workers have nothing left to start; below a full
window it asks again after progress, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from .base import (
    CallbackPress,
    Incoming,
    IncomingMessage,
    PollingConflict,
    Rejected,
    TelegramApi,
    TelegramFailure,
    Unavailable,
)
from .dispatch import ChatDispatcher
from .offsets import OffsetTracker
from .retry import Backoff, OutageLog

__all__ = ["Poller"]

logger = logging.getLogger("tggate.client.poller")

FETCH_LIMIT = 100  # the Bot API's maximum
# After a full answer: ask again once this much of the window is free (see above).
_REFILL = FETCH_LIMIT // 4


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Poller:
    def __init__(
        self,
        *,
        telegram: TelegramApi,
        handle: Callable[[IncomingMessage | CallbackPress], Awaitable[None]],
        max_concurrent_chats: int,
        poll_timeout_s: int,
        start_offset: int | None = None,
        max_in_flight: int = 1000,
        busy_wait_s: float = 0.5,
        grace_s: float = 10.0,
        confirm_timeout_s: float = 5.0,
        backoff: Backoff | None = None,
        on_conflict: Callable[[], None] = lambda: None,
    ) -> None:
        self._telegram = telegram
        # Told of each 409: the lease keeper stands by on it when its lease is unconfirmed.
        self._on_conflict = on_conflict
        self._handle = handle
        self._max_concurrent_chats = max_concurrent_chats
        self._poll_timeout_s = poll_timeout_s
        self._max_in_flight = max_in_flight
        self._busy_wait_s = busy_wait_s
        self._grace_s = grace_s
        self._confirm_timeout_s = confirm_timeout_s
        self._backoff = backoff or Backoff(initial_s=1.0, max_s=30.0)
        self._tracker = OffsetTracker(start=start_offset)
        # An update finished since the flag was last cleared; `_waiter` waits for the next one.
        self._progressed = False
        self._waiter: asyncio.Future[None] | None = None
        # The fetched updates at or above the offset, in order: the window Telegram answers.
        self._window: deque[int] = deque()
        self._sent_offset: int | None = None  # the offset of the last answered getUpdates
        self._conflicts = OutageLog(logger, "getUpdates (409: another poller uses this bot token)")
        self._outage = OutageLog(logger, "getUpdates")

    @property
    def offset(self) -> int | None:
        """The offset that is safe to confirm: every update below it is handled."""
        return self._tracker.offset

    def _finished(self, update_id: int) -> None:
        self._tracker.finish(update_id)
        self._progressed = True
        _wake(self._waiter)

    async def run(self, stop: asyncio.Event) -> int | None:
        """Poll until `stop`; then finish in-flight updates (within the grace period), confirm
        the offset and return it (for the next time this process holds the lease)."""
        dispatcher: ChatDispatcher[IncomingMessage | CallbackPress] = ChatDispatcher(
            self._handle, max_concurrent=self._max_concurrent_chats, on_done=self._finished
        )
        # `stop` abandons whatever the fetch loop waits for: a long poll may take its full
        # timeout, and an abandoned request confirms nothing we have not handled. One waiter for
        # the whole period, not one beside every call: a waiting task per getUpdates and per
        # wait for progress was much of what a quiet bot spent per command (bench/README.md,
        # "Profiles").
        fetching = asyncio.create_task(self._fetch_loop(stop, dispatcher), name="tggate-fetch")
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: fetching.cancel())
        try:
            await fetching
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not stop.is_set() or (current is not None and current.cancelling()):
                raise  # cancelled from outside, not stopped
        finally:
            stopping.cancel()
            if not await dispatcher.join(self._grace_s):
                logger.warning(
                    "%d updates unfinished after %.0fs; Telegram will deliver them again",
                    self._tracker.in_flight,
                    self._grace_s,
                )
                await dispatcher.cancel()
            await self._confirm()
        return self._tracker.offset

    async def _fetch_loop(
        self, stop: asyncio.Event, dispatcher: ChatDispatcher[IncomingMessage | CallbackPress]
    ) -> None:
        """Fetch and hand out updates until `stop`, which cancels this task at its next wait."""
        failures = 0
        while not stop.is_set():
            if self._tracker.in_flight >= self._max_in_flight:
                self._progressed = False
                await self._wait_progress(self._busy_wait_s)
                continue
            busy = self._tracker.in_flight > 0
            self._progressed = False
            offset = self._tracker.offset
            try:
                # While updates are in flight Telegram answers at once anyway (see above).
                updates = await self._telegram.get_updates(
                    offset=offset,
                    long_poll_s=0 if busy else self._poll_timeout_s,
                    limit=FETCH_LIMIT,
                )
            except PollingConflict as error:
                failures += 1
                self._conflicts.failed(str(error))
                self._on_conflict()
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            except (Unavailable, Rejected) as error:
                failures += 1
                self._outage.failed(str(error))
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            self._sent_offset = offset
            failures = 0
            self._conflicts.succeeded()
            self._outage.succeeded()
            self._accept(updates, dispatcher)
            if len(updates) >= FETCH_LIMIT:
                # Nothing beyond the window is visible until part of it is handled.
                await self._wait_room(dispatcher)
            elif self._tracker.in_flight > 0:
                # Asked again at once, Telegram would answer the held updates again and, at a
                # steady rate, rarely a new one: a call per update for nothing
                # (bench/README.md, "e2e"). After progress the offset has moved on.
                await self._wait_progress(self._busy_wait_s)

    def _room(self) -> int:
        """How many new updates the next answer could hold."""
        offset = self._tracker.offset
        while self._window and offset is not None and self._window[0] < offset:
            self._window.popleft()
        return FETCH_LIMIT - len(self._window)

    async def _wait_room(self, dispatcher: ChatDispatcher[IncomingMessage | CallbackPress]) -> None:
        """Until a quarter of the window is free, or any of it while every held update has
        started (a chat's worker would wait for the next fetch), or `busy_wait_s` passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_wait_s
        while True:
            room = self._room()
            if room >= _REFILL or (room > 0 and dispatcher.waiting == 0):
                return
            left = deadline - loop.time()
            if left <= 0:
                return
            self._progressed = False
            await self._wait_progress(left)

    def _accept(
        self,
        updates: Sequence[Incoming],
        dispatcher: ChatDispatcher[IncomingMessage | CallbackPress],
    ) -> int:
        fresh = 0
        for update in sorted(updates, key=lambda u: u.update_id):
            if not self._tracker.is_new(update.update_id):
                continue  # still in flight (or done but not yet confirmable)
            fresh += 1
            self._tracker.add(update.update_id)
            self._window.append(update.update_id)
            if isinstance(update, IncomingMessage | CallbackPress):
                dispatcher.submit(update)
            else:
                self._finished(update.update_id)
        return fresh

    async def _wait_progress(self, within_s: float) -> None:
        """Until an update finished since `_progressed` was cleared, or `within_s` passed."""
        if self._progressed:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(within_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def _confirm(self) -> None:
        """Tell Telegram the final offset; updates it returns are ignored (not confirmed)."""
        offset = self._tracker.offset
        if offset is None or offset == self._sent_offset:
            return
        try:
            await asyncio.wait_for(
                self._telegram.get_updates(offset=offset, long_poll_s=0, limit=1),
                self._confirm_timeout_s,
            )
        except (TelegramFailure, TimeoutError) as error:
            logger.warning("could not confirm offset %s: %s", offset, error)
            return
        self._sent_offset = offset
        logger.info("confirmed updates below %s", offset)
