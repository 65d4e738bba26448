"""`BotLogic`, the service behind Bot Logic's HTTP API (docs/contract.md#bot-logic): it composes the
commands (`commands`), the single-flight refresh they and the notification cycle share (`refresh`),
the timer cycles with their outbox (`cycles`), and the poller lease."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from tggate.core.commands import CommandTable
from tggate.core.machine import Command
from tggate.core.ports import AuthModule, MainModule, OutboxMessage, SessionStore
from tggate.core.replies import Reply
from tggate.logic.commands import Commands
from tggate.logic.cycles import Cycles
from tggate.logic.feed import FeedPuller
from tggate.logic.metrics import LogicMetrics
from tggate.logic.refresh import SingleFlightRefresh

__all__ = ["BotLogic"]

_POLLER_LEASE = "poller"


class BotLogic:
    """The state machine over real ports. Stateless itself: every replica may run it."""

    def __init__(
        self,
        *,
        store: SessionStore,
        auth: AuthModule,
        main: MainModule,
        table: CommandTable,
        metrics: LogicMetrics | None = None,
        update_ttl_s: int = 86_400,
        claim_ttl_s: float = 3.0,
        refresh_lock_ttl_ms: int = 10_000,
        cycle_concurrency: int = 32,
        new_login_token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        in_progress_wait_s: float = 5.0,
        feed: FeedPuller | None = None,
    ) -> None:
        metrics = metrics or LogicMetrics()
        refresh = SingleFlightRefresh(
            store=store, auth=auth, metrics=metrics, lock_ttl_ms=refresh_lock_ttl_ms
        )
        self._store = store
        self._table = table
        self._commands = Commands(
            store=store,
            auth=auth,
            main=main,
            table=table,
            refresh=refresh,
            metrics=metrics,
            new_login_token=new_login_token,
            update_ttl_s=update_ttl_s,
            claim_ttl_s=claim_ttl_s,
            in_progress_wait_s=in_progress_wait_s,
        )
        self._cycles = Cycles(
            store=store,
            auth=auth,
            main=main,
            refresh=refresh,
            metrics=metrics,
            concurrency=cycle_concurrency,
            feed=feed,
        )

    @property
    def table(self) -> CommandTable:
        return self._table

    async def handle_update(self, update_id: int, command: Command) -> str:
        """The JSON answer to one update; a repeated update_id gets the stored first answer."""
        return await self._commands.handle_update(update_id, command)

    async def run_command(self, command: Command) -> tuple[Reply, ...]:
        """The replies to one command, without idempotency (for tests and benchmarks)."""
        return await self._commands.run_command(command)

    async def login_cycle(self, *, shard: int = 0, shards: int = 1) -> list[OutboxMessage]:
        return await self._cycles.login_cycle(shard=shard, shards=shards)

    async def notification_cycle(self, *, shard: int = 0, shards: int = 1) -> list[OutboxMessage]:
        return await self._cycles.notification_cycle(shard=shard, shards=shards)

    async def acknowledge(self, ids: Sequence[str]) -> int:
        return await self._cycles.acknowledge(ids)

    async def lease(self, *, instance: str, ttl_s: float) -> bool:
        return await self._store.lease(_POLLER_LEASE, instance=instance, ttl_ms=int(ttl_s * 1000))

    async def ready(self) -> bool:
        return await self._store.ping()
