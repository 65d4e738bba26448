"""One webhook intake replica assembled (docs/webhook.md): the webhook's updates go into the
chats' queues (`accept`), the chat workers handle them, and the replica that holds Bot Logic's
poller lease runs the two timers and publishes the command menu.

The lease is the one a polling Telegram Client takes (`POST /v1/poller/lease`), so however many
replicas run (and a polling client beside them, while switching modes), each timer ticks once;
its shards are spread over the Bot Logic replicas as in polling mode. Every replica sends within
the limits they share (`pacing.py`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from tggate.client.base import CallbackPress, IncomingMessage, LogicApi, TelegramApi
from tggate.client.forwarder import Forwarder
from tggate.client.identity import learn_bot_username
from tggate.client.journal import DeliveryJournal
from tggate.client.lease import LeaseKeeper
from tggate.client.menu import publish_menu_until
from tggate.client.retry import first_of
from tggate.client.sender import Sender
from tggate.client.service import ClientOptions
from tggate.client.timers import CycleTimer
from tggate.core.commands import CommandTable
from tggate.core.ports import OutboxKind

from .base import IntakeQueue, Stored
from .entries import entry_of
from .metrics import IntakeMetrics
from .worker import ChatWorkers, WorkerOptions

__all__ = ["Intake"]

logger = logging.getLogger("tggate.intake.service")


class Intake:
    def __init__(
        self,
        *,
        telegram: TelegramApi,
        logic: LogicApi,
        queue: IntakeQueue,
        table: CommandTable,
        options: ClientOptions | None = None,
        worker: WorkerOptions | None = None,
        metrics: IntakeMetrics | None = None,
        instance: str | None = None,
    ) -> None:
        self.instance = instance or uuid.uuid4().hex
        self.metrics = metrics or IntakeMetrics()
        self._telegram = telegram
        self._logic = logic
        self._queue = queue
        self._table = table
        self._options = o = options or ClientOptions()
        # Paid broadcasts are the shared pace's to decide (src/tggate/intake/pacing.py), so this
        # Sender never pays, and its own overall rate is the highest one allowed.
        self._sender = Sender(
            telegram,
            global_per_s=max(o.send_global_per_s, o.send_paid_broadcast_per_s),
            per_chat_interval_s=o.send_per_chat_interval_s,
            group_per_minute=o.send_group_per_minute,
            backoff=o.retry,
        )
        self._forwarder = forwarder = Forwarder(
            telegram=telegram,
            logic=logic,
            sender=self._sender,
            table=table,
            backoff=o.retry,
            notice_after_s=o.unavailable_notice_after_s,
        )
        self.workers = ChatWorkers(
            queue=queue,
            forwarder=forwarder,
            sender=self._sender,
            instance=self.instance,
            options=worker,
            metrics=self.metrics,
        )
        self._menu_published = False

    async def accept(self, update: IncomingMessage | CallbackPress) -> Stored:
        """Store an update Telegram delivered (before the webhook answers 200); raises
        `QueueUnavailable` when it could not be stored."""
        stored = await self._queue.enqueue(entry_of(update))
        if stored is Stored.STORED:
            self.workers.hint(update.chat_id)
        return stored

    async def ready(self) -> bool:
        return await self._queue.ping()

    async def run(self, stop: asyncio.Event) -> None:
        """Work the queues (and, while this replica holds the lease, the timers) until `stop`."""
        o = self._options
        # Updates are stored meanwhile (accept() needs no name); they are worked once the bot's
        # name is known, so `/command@other_bot` in a group is never taken for ours (issue 9).
        username = await learn_bot_username(self._telegram, stop, o.poll_backoff)
        if username is None:
            return
        self._forwarder.bot_username = username
        lease = LeaseKeeper(logic=self._logic, instance=self.instance, ttl_s=o.lease_ttl_s)
        tasks = [
            asyncio.create_task(lease.run(stop), name="tggate-intake-lease"),
            asyncio.create_task(self.workers.run(stop), name="tggate-intake-workers"),
            asyncio.create_task(self._lead(stop, lease), name="tggate-intake-timers"),
        ]
        logger.info("intake replica %s started", self.instance)
        try:
            # Each ends by itself on `stop`; a failure of one stops the replica.
            for task in asyncio.as_completed(tasks):
                await task
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        logger.info("intake replica %s stopped", self.instance)

    async def _lead(self, stop: asyncio.Event, lease: LeaseKeeper) -> None:
        """While the lease is held: the timers and (once) the command menu."""
        o = self._options
        journal = DeliveryJournal(o.journal_path) if o.journal_path is not None else None
        try:
            while not stop.is_set():
                await first_of(stop.wait(), lease.wait_held())
                if stop.is_set():
                    return
                if journal:
                    journal.open()  # the previous leader's deliveries, if it shared the file
                inactive = asyncio.Event()
                watcher = asyncio.create_task(_set_when_lost(stop, lease, inactive))
                work = [
                    asyncio.create_task(self._timer(kind, interval_s, journal).run(inactive))
                    for kind, interval_s in (
                        (OutboxKind.LOGIN, o.login_cycle_interval_s),
                        (OutboxKind.NOTIFICATION, o.notification_cycle_interval_s),
                    )
                ]
                if not self._menu_published:
                    work.append(asyncio.create_task(self._publish_menu(inactive)))
                try:
                    await inactive.wait()
                    # A running tick may finish (its messages are acked only if sent).
                    await asyncio.wait(work, timeout=o.shutdown_grace_s)
                finally:
                    watcher.cancel()
                    for task in work:
                        task.cancel()
                    await asyncio.gather(watcher, *work, return_exceptions=True)
                if not stop.is_set():
                    logger.warning("lease lost: the timers run on another replica now")
        finally:
            if journal:
                journal.close()

    def _timer(
        self, kind: OutboxKind, interval_s: float, journal: DeliveryJournal | None
    ) -> CycleTimer:
        o = self._options
        return CycleTimer(
            kind=kind,
            interval_s=interval_s,
            shards=o.cycle_shards,
            logic=self._logic,
            sender=self._sender,
            max_concurrent_chats=o.max_concurrent_chats,
            backoff=o.retry,
            journal=journal,
        )

    async def _publish_menu(self, inactive: asyncio.Event) -> None:
        self._menu_published = await publish_menu_until(
            self._telegram, self._table, inactive, self._options.poll_backoff
        )


async def _set_when_lost(stop: asyncio.Event, lease: LeaseKeeper, inactive: asyncio.Event) -> None:
    await first_of(stop.wait(), lease.wait_lost())
    inactive.set()
