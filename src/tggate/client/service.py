"""The Telegram Client assembled: lease → (poller + dispatcher + forwarder, timers) → sender.

While this instance holds the poller lease it is active: it polls Telegram and runs the two
timers. When the lease is lost, or on `stop`, it stops fetching, finishes the updates in flight
(bounded by the grace period), confirms the offset and goes back to standby (or returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tggate.core.commands import CommandTable
from tggate.core.ports import OutboxKind

from .base import InvalidToken, LogicApi, TelegramApi, TelegramFailure
from .forwarder import Forwarder
from .identity import learn_bot_username
from .journal import DeliveryJournal
from .lease import LeaseKeeper
from .menu import publish_menu
from .metrics import ClientMetrics
from .poller import Poller
from .retry import Backoff, OutageLog, first_of, sleep_or_stop
from .sender import Sender
from .timers import CycleTimer

__all__ = ["ClientOptions", "TelegramClient"]

logger = logging.getLogger("tggate.client.service")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """The client's knobs (`tggate.bootstrap.client_options` takes them from the settings)."""

    max_concurrent_chats: int = 64
    poll_timeout_s: int = 25
    lease_ttl_s: float = 10.0
    login_cycle_interval_s: float = 3.0
    notification_cycle_interval_s: float = 5.0
    cycle_shards: int = 2
    send_global_per_s: float = 30.0
    send_per_chat_interval_s: float = 1.0
    send_group_per_minute: int = 20
    send_paid_broadcast_per_s: float = 0.0  # 0: no paid broadcasts
    shutdown_grace_s: float = 10.0
    max_in_flight: int = 1000
    busy_wait_s: float = 0.5
    # After this long without an answer from Bot Logic the person is told the reply is delayed.
    unavailable_notice_after_s: float = 10.0
    # Bot Logic and sending retries; tests make them near-instant.
    retry: Backoff = field(default_factory=Backoff)
    # getUpdates after a 409 or a network error.
    poll_backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, max_s=30.0))
    # Where the replies Telegram accepted are written down (see journal.py); None: nowhere.
    journal_path: Path | None = None


class TelegramClient:
    def __init__(
        self,
        *,
        telegram: TelegramApi,
        logic: LogicApi,
        table: CommandTable,
        options: ClientOptions | None = None,
        instance: str | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        self._telegram = telegram
        self._logic = logic
        self._table = table
        self._options = options or ClientOptions()
        self.instance = instance or uuid.uuid4().hex
        self.metrics = metrics or ClientMetrics()
        self._menu_published = False
        path = self._options.journal_path
        self._journal = DeliveryJournal(path) if path is not None else None
        self._offset: int | None = None
        self._username: str | None = None

    @property
    def offset(self) -> int | None:
        """The last offset this instance confirmed (None before the first active period)."""
        return self._offset

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then finish in-flight updates and return."""
        o = self._options
        sender = Sender(
            self._telegram,
            global_per_s=o.send_global_per_s,
            per_chat_interval_s=o.send_per_chat_interval_s,
            paid_per_s=o.send_paid_broadcast_per_s,
            group_per_minute=o.send_group_per_minute,
            backoff=o.retry,
            metrics=self.metrics,
        )
        lease = LeaseKeeper(logic=self._logic, instance=self.instance, ttl_s=o.lease_ttl_s)
        lease_task = asyncio.create_task(lease.run(stop), name="tggate-client-lease")
        logger.info("Telegram Client %s started, waiting for the poller lease", self.instance)
        try:
            while not stop.is_set():
                await first_of(stop.wait(), lease.wait_held())
                if stop.is_set():
                    break
                await self._active(stop, lease, sender)
        except InvalidToken:
            logger.error("Telegram refused the bot token (401): stopping")
            raise
        finally:
            # The lease task ends by itself on `stop` (releasing the lease); after a crash, cancel.
            if not stop.is_set():
                lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease_task
            if self._journal:
                self._journal.close()
        logger.info("Telegram Client %s stopped", self.instance)

    async def _active(self, stop: asyncio.Event, lease: LeaseKeeper, sender: Sender) -> None:
        o = self._options
        if self._journal:
            # Read afresh: the previous holder (a crashed process, or another instance on this
            # data directory) may have sent replies of updates Telegram now delivers again.
            self._journal.open()
        timers = [
            CycleTimer(
                kind=kind,
                interval_s=interval_s,
                shards=o.cycle_shards,
                logic=self._logic,
                sender=sender,
                max_concurrent_chats=o.max_concurrent_chats,
                backoff=o.retry,
                journal=self._journal,
            )
            for kind, interval_s in _cycles(o)
        ]
        inactive = asyncio.Event()

        async def watch() -> None:
            await first_of(stop.wait(), lease.wait_lost())
            inactive.set()

        watcher = asyncio.create_task(watch(), name="tggate-client-watch")
        background = [
            asyncio.create_task(timer.run(inactive), name=f"tggate-client-{timer.kind}-timer")
            for timer in timers
        ]
        if not self._menu_published:
            background.append(
                asyncio.create_task(self._publish_menu(inactive), name="tggate-client-menu")
            )
        try:
            await self._poll(inactive, sender, lease)
        finally:
            inactive.set()
            watcher.cancel()
            # A running tick may finish (its messages are acked only if sent), within the grace.
            _, unfinished = await asyncio.wait(background, timeout=o.shutdown_grace_s)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(watcher, *background, return_exceptions=True)
        if not stop.is_set():
            logger.warning("no longer active: standing by for the poller lease")

    async def _poll(self, inactive: asyncio.Event, sender: Sender, lease: LeaseKeeper) -> None:
        """Handle updates until `inactive`; first learn the bot's name, once per process."""
        o = self._options
        if self._username is None:
            self._username = await learn_bot_username(
                self._telegram, inactive, self._options.poll_backoff
            )
            if self._username is None:
                return
        forwarder = Forwarder(
            telegram=self._telegram,
            logic=self._logic,
            sender=sender,
            table=self._table,
            bot_username=self._username,
            backoff=o.retry,
            notice_after_s=o.unavailable_notice_after_s,
            journal=self._journal,
        )
        poller = Poller(
            telegram=self._telegram,
            handle=forwarder.handle,
            max_concurrent_chats=o.max_concurrent_chats,
            poll_timeout_s=o.poll_timeout_s,
            start_offset=self._offset,
            max_in_flight=o.max_in_flight,
            busy_wait_s=o.busy_wait_s,
            grace_s=o.shutdown_grace_s,
            backoff=o.poll_backoff,
            on_conflict=lease.conflicted,
        )
        self._offset = await poller.run(inactive)

    async def _publish_menu(self, inactive: asyncio.Event) -> None:
        """setMyCommands once, retried with back-off while Telegram refuses or is away."""
        outage = OutageLog(logger, "publishing the command menu (setMyCommands)")
        attempt = 0
        while not inactive.is_set():
            try:
                await publish_menu(self._telegram, self._table)
            except TelegramFailure as error:
                attempt += 1
                outage.failed(str(error))
                await sleep_or_stop(inactive, self._options.poll_backoff.delay(attempt))
                continue
            self._menu_published = True
            outage.succeeded()
            logger.info("command menu published")
            return


def _cycles(options: ClientOptions) -> tuple[tuple[OutboxKind, float], ...]:
    return (
        (OutboxKind.LOGIN, options.login_cycle_interval_s),
        (OutboxKind.NOTIFICATION, options.notification_cycle_interval_s),
    )
