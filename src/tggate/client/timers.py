"""The login-check and notification timers (L1–L3, N1–N3).

A tick asks Bot Logic for every shard at once (Nginx spreads them over replicas), sends what comes
back and acknowledges it. Ticks never overlap: the next one is scheduled after the previous
finished. Messages stay in Bot Logic's outbox until acknowledged, so a message that could not be
delivered now comes back next tick. One that Telegram refuses for good (the person blocked the
bot, the chat is gone) is acknowledged too: it would otherwise come back every tick forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from tggate.core.ports import OutboxKind, OutboxMessage

from .base import LogicApi, LogicRejected, LogicUnavailable
from .journal import DeliveryJournal, outbox_key
from .retry import Backoff, OutageLog, sleep_or_stop
from .sender import Delivery, Sender

__all__ = ["CycleTimer"]

logger = logging.getLogger("tggate.client.timers")

_ACK_BATCH = 100
_ACK_ATTEMPTS = 3


class CycleTimer:
    def __init__(
        self,
        *,
        kind: OutboxKind,
        interval_s: float,
        shards: int,
        logic: LogicApi,
        sender: Sender,
        max_concurrent_chats: int = 64,
        send_attempts: int = 3,
        backoff: Backoff | None = None,
        journal: DeliveryJournal | None = None,
    ) -> None:
        self.kind = kind
        self._journal = journal
        self._interval_s = interval_s
        self._shards = shards
        self._logic = logic
        self._sender = sender
        self._chat_slots = asyncio.Semaphore(max_concurrent_chats)
        self._send_attempts = send_attempts
        self._backoff = backoff or Backoff(initial_s=0.2, max_s=2.0)
        self._outage = OutageLog(logger, f"the {kind} cycle")

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every interval until `stop` (a running tick is not interrupted by it)."""
        while not await sleep_or_stop(stop, self._interval_s):
            try:
                await self.tick()
            except Exception:
                # A bug must not silence the timer for good; outages are handled inside.
                logger.exception("the %s tick failed", self.kind)

    async def tick(self) -> None:
        await asyncio.gather(*(self._shard(shard) for shard in range(self._shards)))

    async def _shard(self, shard: int) -> None:
        try:
            items = await self._logic.cycle(self.kind, shard=shard, shards=self._shards)
        except (LogicUnavailable, LogicRejected) as error:
            self._outage.failed(f"shard {shard}/{self._shards}: {error}")
            return
        self._outage.succeeded()
        if items:
            await self._deliver(items)

    async def _deliver(self, items: Sequence[OutboxMessage]) -> None:
        """Chats in parallel, each in order; acks in batches as chats finish."""
        by_chat: dict[int, list[OutboxMessage]] = {}
        for item in items:
            by_chat.setdefault(item.chat_id, []).append(item)
        settled: list[str] = []

        async def deliver_chat(chat_items: Sequence[OutboxMessage]) -> None:
            settled.extend(await self._send_chat(chat_items))
            if len(settled) >= _ACK_BATCH:
                batch = settled.copy()
                settled.clear()
                await self._ack(batch)

        await asyncio.gather(*(deliver_chat(chat_items) for chat_items in by_chat.values()))
        if settled:
            await self._ack(settled)

    async def _send_chat(self, items: Sequence[OutboxMessage]) -> list[str]:
        """Send one chat's messages in order; the ids that are settled (sent or refused).

        A chat waits for its turn (a second between two messages, a group's minute) holding no
        slot: with the slots held through those waits, 64 chats of three messages each made
        ~90 messages a second the most a tick could deliver, far below paid broadcasts'
        1,000 (bench/README.md, "delivery")."""
        settled: list[str] = []
        for item in items:
            key = outbox_key(item.id)
            if self._journal and self._journal.sent(key):
                # Sent before a crash that came before its ack (see journal.py): ack only.
                settled.append(item.id)
                continue
            await self._sender.wait_turn(item.chat_id)
            async with self._chat_slots:
                result = await self._sender.send(
                    item.chat_id, item.reply, attempts=self._send_attempts
                )
            if result is Delivery.GAVE_UP:
                break  # keep the chat's order: the rest waits for the next tick too
            if self._journal and result is Delivery.SENT:
                self._journal.record(key, 1)
            settled.append(item.id)
        return settled

    async def _ack(self, ids: list[str]) -> None:
        for attempt in range(1, _ACK_ATTEMPTS + 1):
            try:
                await self._logic.ack(ids)
                return
            except (LogicUnavailable, LogicRejected) as error:
                if attempt == _ACK_ATTEMPTS or isinstance(error, LogicRejected):
                    # They come back next tick and are sent once more: at least once, not lost.
                    logger.warning("could not ack %d %s messages: %s", len(ids), self.kind, error)
                    return
                await asyncio.sleep(self._backoff.delay(attempt))
