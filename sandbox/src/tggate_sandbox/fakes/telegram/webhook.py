"""The fake Telegram's webhook delivery, as the Bot API server does it (tdlib/telegram-bot-api,
`WebhookActor.cpp`):

- updates wait in queues: a message's queue is its chat, a callback query's its user (apart from
  the chat's messages, as Telegram keeps them), anything else a queue of its own; one update of
  a queue is in flight at a time, and the next one leaves only after it was answered with a 2xx;
- queues go in parallel, at most `max_connections` requests at once;
- a non-2xx answer, a timeout or a refused connection is retried: at once the first time, then
  after 2, 4, 8 … seconds (at most 60–120), or after the answer's `Retry-After` (at most an
  hour), which pauses that queue only; `last_error_date` and `last_error_message` say why;
- every request carries `X-Telegram-Bot-Api-Secret-Token` when a secret was set;
- deleting or replacing the webhook drops the requests in flight: their updates stay pending, for
  the next webhook or getUpdates (so one may reach the bot twice, as it may from Telegram).

`time_scale` shortens every retry delay for tests (0.01: a "2 seconds" delay takes 20 ms); the
delays as Telegram would wait them are recorded per update (`attempts`) so tests check those.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

__all__ = ["WebhookDelivery", "queue_of"]

logger = logging.getLogger("tggate_sandbox.fakes.telegram.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_MAX_RETRY_AFTER_S = 3600
_MAX_RESEND_S = 60  # WEBHOOK_MAX_RESEND_TIMEOUT: the longest delay is 60–120 s
_CALLBACK_QUEUES = 3 << 33
_OWN_QUEUES = 1 << 60


def queue_of(update: Mapping[str, Any]) -> int:
    """The queue an update waits in (Client.cpp's `webhook_queue_id`)."""
    message = update.get("message")
    if message is not None:
        return int(message["chat"]["id"])
    query = update.get("callback_query")
    if query is not None:
        return int(query["from"]["id"]) + _CALLBACK_QUEUES
    return _OWN_QUEUES + int(update["update_id"])


@dataclass(slots=True)
class _Retry:
    delay: int = 1  # seconds; doubled from the second failure on
    failures: int = 0
    wait: int = 0  # before the next attempt, in Telegram's seconds


@dataclass(slots=True)
class _Queue:
    updates: deque[int] = field(default_factory=deque)
    in_flight: bool = False
    retry: _Retry = field(default_factory=_Retry)


class WebhookDelivery:
    """Posts the pending updates of a `FakeTelegram` to its webhook until stopped.

    Runs under the fake's condition (`changed`): `add` and `forget` are called with it held, and
    every change it makes notifies it.
    """

    def __init__(
        self,
        *,
        url: str,
        secret: str | None,
        max_connections: int,
        pending: Mapping[int, dict[str, Any]],
        changed: asyncio.Condition,
        delivered: Callable[[int], None],
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        timeout_s: float,
        time_scale: float,
    ) -> None:
        self.url = url
        self.max_connections = max_connections
        self._secret = secret
        self._pending = pending
        self._changed = changed
        self._delivered = delivered
        self._clock = clock
        self._wall_clock = wall_clock
        self._timeout_s = timeout_s
        self._time_scale = time_scale
        self._queues: dict[int, _Queue] = {}
        self._ready: list[tuple[float, int]] = []  # (when, queue id), a heap
        self._in_flight = 0
        self.peak_in_flight = 0
        self.requests = 0
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self.attempts: dict[int, list[dict[str, Any]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.Task[None] | None = None
        self._posts: set[asyncio.Task[None]] = set()
        for update_id in sorted(pending):
            self.add(update_id)

    # ---- called with the condition held ----

    def add(self, update_id: int) -> None:
        """A new pending update."""
        queue_id = queue_of(self._pending[update_id])
        queue = self._queues.setdefault(queue_id, _Queue())
        queue.updates.append(update_id)
        if len(queue.updates) == 1 and not queue.in_flight:
            heapq.heappush(self._ready, (self._clock(), queue_id))

    # ---- life cycle ----

    def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.max_connections)
        self._session = aiohttp.ClientSession(connector=connector)
        self._loop = asyncio.create_task(self._run(), name="fake-telegram-webhook")

    async def stop(self) -> None:
        """Drop the requests in flight (their updates stay pending) and close the session."""
        tasks = [task for task in (self._loop, *self._posts) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # ---- delivering ----

    async def _run(self) -> None:
        async with self._changed:
            while True:
                while self._sendable():
                    self._send_next()
                try:
                    async with asyncio.timeout(self._next_wakeup()):
                        await self._changed.wait()
                except TimeoutError:
                    pass

    def _sendable(self) -> bool:
        return (
            self._in_flight < self.max_connections
            and bool(self._ready)
            and self._ready[0][0] <= self._clock()
        )

    def _next_wakeup(self) -> float | None:
        """Seconds until the next queue may send, if nothing else happens first."""
        if self._in_flight >= self.max_connections or not self._ready:
            return None
        return max(0.0, self._ready[0][0] - self._clock())

    def _send_next(self) -> None:
        _, queue_id = heapq.heappop(self._ready)
        queue = self._queues[queue_id]
        while queue.updates and queue.updates[0] not in self._pending:
            queue.updates.popleft()  # dropped meanwhile (drop_pending_updates)
        if not queue.updates or queue.in_flight:
            return
        queue.in_flight = True
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        update_id = queue.updates[0]
        task = asyncio.create_task(self._post(queue_id, update_id, self._pending[update_id]))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, queue_id: int, update_id: int, update: dict[str, Any]) -> None:
        assert self._session is not None
        headers = {SECRET_HEADER: self._secret} if self._secret else {}
        error, retry_after = None, 0
        self.requests += 1
        try:
            async with self._session.post(
                self.url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as response:
                await response.read()
                if not 200 <= response.status <= 299:
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
                    retry_after = _seconds(response.headers.get("Retry-After"))
        except TimeoutError:
            error = "Timeout expired"
        except aiohttp.ClientError as failure:
            error = f"Connection failed: {type(failure).__name__}"
        async with self._changed:
            queue = self._queues[queue_id]
            queue.in_flight = False
            self._in_flight -= 1
            if error is None:
                self._ok(queue, update_id)
            else:
                self._failed(queue, update_id, error, retry_after)
            if queue.updates:
                when = self._clock() + self._wait_s(queue)
                heapq.heappush(self._ready, (when, queue_id))
            else:
                del self._queues[queue_id]
            self._changed.notify_all()

    def _ok(self, queue: _Queue, update_id: int) -> None:
        self.attempts.setdefault(update_id, []).append({"ok": True})
        if queue.updates and queue.updates[0] == update_id:
            queue.updates.popleft()
        queue.retry = _Retry()
        self._delivered(update_id)

    def _failed(self, queue: _Queue, update_id: int, error: str, retry_after: int) -> None:
        retry = queue.retry
        delay, wait = retry.delay, min(retry_after, _MAX_RETRY_AFTER_S)
        if wait == 0 and retry.failures > 0:
            delay = min(random.randint(_MAX_RESEND_S, 2 * _MAX_RESEND_S), delay * 2)
            wait = delay
        retry.delay, retry.failures, retry.wait = delay, retry.failures + 1, wait
        self.attempts.setdefault(update_id, []).append({"ok": False, "error": error, "wait": wait})
        self.last_error_date = int(self._wall_clock())
        self.last_error_message = error

    def _wait_s(self, queue: _Queue) -> float:
        return queue.retry.wait * self._time_scale if queue.retry.failures else 0.0


def _seconds(value: str | None) -> int:
    try:
        return max(0, int(value)) if value is not None else 0
    except ValueError:
        return 0
