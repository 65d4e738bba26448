"""Working the chats' queues (docs/webhook.md#queues): one chat's updates strictly in order,
different chats in parallel, any replica.

A replica takes a chat by claiming it, then handles the head of its queue, drops it and goes on
with the next one, until the queue is empty and the chat is let go. Claims lapse unless renewed
(every third of their TTL, all held chats at once), so a dead replica's chats go to the others
within a TTL. Chats come from two places: the chats this replica's webhook just stored updates
for while nobody worked them (`hint`), and a look over every bucket for chats nobody holds (those
stored by a replica that was busy, or that died), more often while it finds some.

An update is handled exactly as in polling mode: the Telegram Client's `Forwarder` decides the
replies (C4–C6) and its `Sender` sends them. How many replies of the head Telegram accepted is
written down as they go (when there are several), so a chat taken over in the middle of an
update does not show the person its first replies twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tggate.client.forwarder import Forwarder
from tggate.client.retry import Backoff, OutageLog, first_of, sleep_or_stop
from tggate.client.sender import Sender

from .base import Claim, IntakeQueue, QueueUnavailable
from .entries import decode
from .metrics import IntakeMetrics

__all__ = ["ChatWorkers", "WorkerOptions"]

logger = logging.getLogger("tggate.intake.worker")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    max_concurrent_chats: int = 64
    claim_ttl_s: float = 5.0
    # Looking for chats nobody holds: this often while some are found, backing off to the
    # longest when none are (a dead replica's chats are found within claim_ttl_s + this).
    sweep_min_s: float = 0.05
    sweep_max_s: float = 1.0
    # On a stop, chats finish the update in hand within this; the rest is let go at once.
    grace_s: float = 10.0
    # Redis retries; tests make them near-instant.
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.1, max_s=2.0))


@dataclass(slots=True)
class _Held:
    claim: Claim
    lost: bool = False


class ChatWorkers:
    def __init__(
        self,
        *,
        queue: IntakeQueue,
        forwarder: Forwarder,
        sender: Sender,
        instance: str,
        options: WorkerOptions | None = None,
        metrics: IntakeMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._forwarder = forwarder
        self._sender = sender
        self._options = options or WorkerOptions()
        self._metrics = metrics or IntakeMetrics()
        self._monotonic = monotonic
        self._tokens = (f"{instance}:{n}" for n in itertools.count(1))
        self._held: dict[int, _Held] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._hints: deque[int] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._queue_outage = OutageLog(logger, "the intake's queues in Redis")

    @property
    def held(self) -> int:
        """Chats this replica is working on now."""
        return len(self._held)

    def hint(self, chat_id: int) -> None:
        """The webhook stored an update for a chat nobody worked: try to take it soon."""
        # Bounded: when this replica is far behind, the look over the buckets finds the rest.
        if len(self._hints) < 16 * self._options.max_concurrent_chats:
            self._hints.append(chat_id)
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Take and work chats until `stop`; then let the chats in hand finish their current
        update (within the grace period) and let every chat go."""
        renewing = asyncio.Event()
        renewer = asyncio.create_task(self._renew(renewing), name="tggate-intake-renew")
        try:
            await self._take(stop)
        finally:
            self._stopping = True
            if self._tasks:
                _, unfinished = await asyncio.wait(self._tasks, timeout=self._options.grace_s)
                for task in unfinished:
                    task.cancel()
                await asyncio.gather(*unfinished, return_exceptions=True)
            renewing.set()
            await asyncio.gather(renewer, return_exceptions=True)
            await self._let_go([held.claim for held in self._held.values()])
            self._held.clear()

    # ---- taking chats ----

    async def _take(self, stop: asyncio.Event) -> None:
        o = self._options
        found: deque[int] = deque()
        next_look, look_every = 0.0, o.sweep_min_s
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            if len(self._held) >= o.max_concurrent_chats:
                await first_of(stop.wait(), self._wake.wait())
                continue
            chat_id = self._next_hint() or (found.popleft() if found else None)
            if chat_id is None:
                now = self._monotonic()
                if now < next_look:
                    await first_of(stop.wait(), self._wake.wait(), within_s=next_look - now)
                    continue
                try:
                    due = await self._queue.due(limit=2 * o.max_concurrent_chats)
                except QueueUnavailable as error:
                    failures += 1
                    self._queue_outage.failed(str(error))
                    await sleep_or_stop(stop, o.backoff.delay(failures))
                    continue
                failures = 0
                self._queue_outage.succeeded()
                found.extend(c for c in due if c not in self._held)
                look_every = o.sweep_min_s if due else min(2 * look_every, o.sweep_max_s)
                next_look = self._monotonic() + look_every
                continue
            if chat_id in self._held:
                continue
            try:
                claim = await self._queue.claim(chat_id, token=next(self._tokens))
            except QueueUnavailable as error:
                failures += 1
                self._queue_outage.failed(str(error))
                await sleep_or_stop(stop, o.backoff.delay(failures))
                continue
            if claim is not None:
                self._start(claim)

    def _next_hint(self) -> int | None:
        while self._hints:
            chat_id = self._hints.popleft()
            if chat_id not in self._held:
                return chat_id
        return None

    def _start(self, claim: Claim) -> None:
        self._metrics.claims.labels("taken_over" if claim.taken_over else "idle").inc()
        if claim.taken_over:
            logger.info("took chat %s over from a replica whose claim lapsed", claim.chat_id)
        held = self._held[claim.chat_id] = _Held(claim)
        self._metrics.held.set(len(self._held))
        task = asyncio.create_task(self._work(held), name=f"tggate-intake-chat-{claim.chat_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- working one chat ----

    async def _work(self, held: _Held) -> None:
        chat_id = held.claim.chat_id
        still_held = True  # until the queue let the chat go or another replica took it
        try:
            while True:
                await self._handle(held)
                if held.lost:
                    still_held = False
                    return
                following = await self._done(held)
                if following is None:
                    still_held = False
                    return
                held.claim = following
                if self._stopping:
                    return  # `run` lets the chat go: another replica goes on with the rest
        finally:
            if not still_held:
                self._held.pop(chat_id, None)
            self._metrics.held.set(len(self._held))
            self._wake.set()

    async def _handle(self, held: _Held) -> None:
        claim = held.claim
        try:
            update = decode(claim.head.payload)
        except ValueError as error:
            logger.error("dropping an unreadable entry of chat %s: %s", claim.chat_id, error)
            self._metrics.updates.labels("failed").inc()
            return
        try:
            replies = await self._forwarder.replies(update)
            for index, reply in enumerate(replies):
                if index < claim.sent:
                    continue  # accepted by Telegram before the chat changed hands
                if held.lost:
                    return
                await self._sender.send(reply.chat_id, reply.reply)
                if index + 1 < len(replies):
                    await self._record_sent(claim, index + 1)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not an outage (those are retried inside): skipping the update beats a
            # chat stuck on it forever, as in polling mode (src/tggate/client/dispatch.py).
            logger.exception(
                "update %s of chat %s failed; skipping it", update.update_id, claim.chat_id
            )
            self._metrics.updates.labels("failed").inc()
            return
        self._metrics.updates.labels("done").inc()

    async def _record_sent(self, claim: Claim, sent: int) -> None:
        try:
            if not await self._queue.record_sent(claim, sent):
                logger.warning("chat %s changed hands while its replies went out", claim.chat_id)
        except QueueUnavailable as error:
            # Costs a repeated reply if the chat changes hands now, never a lost one.
            logger.warning(
                "could not write down the replies sent to chat %s: %s", claim.chat_id, error
            )

    async def _done(self, held: _Held) -> Claim | None:
        """Drop the handled head; the next one, or None (the chat was let go, or lost)."""
        failures = 0
        while True:
            try:
                following = await self._queue.done(held.claim)
            except QueueUnavailable as error:
                failures += 1
                self._queue_outage.failed(str(error))
                await asyncio.sleep(self._options.backoff.delay(failures))
                continue
            self._queue_outage.succeeded()
            return following

    # ---- keeping the claims ----

    async def _renew(self, stop: asyncio.Event) -> None:
        interval = self._options.claim_ttl_s / 3
        while not await sleep_or_stop(stop, interval):
            held = list(self._held.values())
            if not held:
                continue
            try:
                lost = await self._queue.renew([h.claim for h in held])
            except QueueUnavailable as error:
                self._queue_outage.failed(str(error))
                continue
            for h in held:
                # A chat let go meanwhile (its queue ran empty) is no longer ours to lose.
                still = self._held.get(h.claim.chat_id) is h
                if h.claim.chat_id in lost and still and not h.lost:
                    h.lost = True
                    self._metrics.lost.inc()
                    logger.warning("lost the claim on chat %s to another replica", h.claim.chat_id)

    async def _let_go(self, claims: list[Claim]) -> None:
        for claim in claims:
            with contextlib.suppress(QueueUnavailable):
                await self._queue.release(claim)
