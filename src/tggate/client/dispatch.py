"""Per-chat order, cross-chat concurrency (docs/scenarios.md#order, C3).

Each chat with pending updates has one worker that handles them one by one, in the order they
were submitted; workers of different chats run in parallel, at most `max_concurrent` handling at
once. `on_done(update_id)` is called once an update is fully handled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["ChatDispatcher", "ChatItem"]

logger = logging.getLogger("tggate.client.dispatch")


class ChatItem(Protocol):
    @property
    def update_id(self) -> int: ...

    @property
    def chat_id(self) -> int: ...


T = TypeVar("T", bound=ChatItem)


class ChatDispatcher(Generic[T]):
    def __init__(
        self,
        handler: Callable[[T], Awaitable[None]],
        *,
        max_concurrent: int,
        on_done: Callable[[int], None],
    ) -> None:
        self._handler = handler
        self._on_done = on_done
        self._slots = asyncio.Semaphore(max_concurrent)
        self._queues: dict[int, deque[T]] = {}
        self._submitted = 0
        self._started = 0
        self._workers: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    @property
    def waiting(self) -> int:
        """Submitted updates whose handling has not started yet."""
        return self._submitted - self._started

    def submit(self, item: T) -> None:
        self._submitted += 1
        queue = self._queues.get(item.chat_id)
        if queue is not None:
            queue.append(item)  # its worker is running and will get to it
            return
        self._queues[item.chat_id] = deque([item])
        self._idle.clear()
        worker = asyncio.create_task(self._work(item.chat_id), name=f"chat-{item.chat_id}")
        self._workers.add(worker)
        worker.add_done_callback(self._worker_finished)

    async def _work(self, chat_id: int) -> None:
        queue = self._queues[chat_id]
        while queue:
            item = queue[0]
            async with self._slots:
                self._started += 1
                try:
                    await self._handler(item)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A bug, not an outage (the handler retries those): confirming the update
                    # beats a bot stuck on it forever.
                    logger.exception("update %s failed; skipping it", item.update_id)
            queue.popleft()
            self._on_done(item.update_id)
        del self._queues[chat_id]

    def _worker_finished(self, worker: asyncio.Task[None]) -> None:
        self._workers.discard(worker)
        if not self._workers:
            self._idle.set()

    async def join(self, within_s: float | None = None) -> bool:
        """Wait until every submitted update is handled; False if `within_s` ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def cancel(self) -> None:
        """Abandon what is still unhandled (it stays unconfirmed, so Telegram repeats it)."""
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._queues.clear()
        self._started = self._submitted
