"""Single-flight refresh (Z7–Z9, docs/scenarios.md#single-flight): one /refresh call per chat across
every replica.

Concurrent 401s on one chat (several commands, a command and the notification cycle, on any
replica) must cause one /refresh and no spurious logout: the Authorization module rotates the
refresh token, so a second call with the old one would be refused (Z8). The holder of the chat's
Redis lock calls and stores the new pair before it releases the lock; the others wait and read
that pair (docs/state-machine.md).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from tggate.core.ports import (
    AuthModule,
    ModuleUnavailable,
    Refreshed,
    RefreshRejected,
    SessionStore,
)
from tggate.core.session import Anonymous, Authorized, LostSession, StoredSession
from tggate.logic.metrics import LogicMetrics

__all__ = ["SingleFlightRefresh", "Step"]

_LOCK = "refresh"


@dataclass(frozen=True, slots=True)
class Step:
    """What performing one request of the machine gave: the answer to feed it, and the session
    revision a later write must expect (a refresh writes, so it moves the revision on)."""

    answer: object
    revision: str | None


class SingleFlightRefresh:
    def __init__(
        self,
        *,
        store: SessionStore,
        auth: AuthModule,
        metrics: LogicMetrics,
        lock_ttl_ms: int = 10_000,
    ) -> None:
        self._store = store
        self._auth = auth
        self._metrics = metrics
        self._lock_ttl_ms = lock_ttl_ms

    async def refresh(
        self, chat_id: int, refresh_token: str, revision: str | None, language: str
    ) -> Step:
        """Trade `refresh_token` for a new pair, stored for the chat; the answer is `Refreshed`
        (the pair now stored), `RefreshRejected` or `ModuleUnavailable`."""
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + self._lock_ttl_ms / 1000
        delay = 0.01
        while True:
            if await self._store.acquire_lock(
                chat_id, _LOCK, owner=owner, ttl_ms=self._lock_ttl_ms
            ):
                try:
                    return await self._refresh_holding_lock(
                        chat_id, refresh_token, revision, language
                    )
                finally:
                    await self._store.release_lock(chat_id, _LOCK, owner=owner)
            settled = _refreshed_by_other(await self._store.load(chat_id), refresh_token)
            if settled is not None:
                return settled
            if time.monotonic() > deadline:
                return Step(ModuleUnavailable("auth", "refresh lock wait timed out"), revision)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _refresh_holding_lock(
        self, chat_id: int, refresh_token: str, revision: str | None, language: str
    ) -> Step:
        stored = await self._store.load(chat_id)
        settled = _refreshed_by_other(stored, refresh_token)
        if settled is not None:
            return settled
        assert stored is not None
        if isinstance(stored.session, Anonymous) and stored.revision != revision:
            # A new login started meanwhile; this command's grant is stale.
            return Step(RefreshRejected(), stored.revision)
        refreshed = await self._auth.refresh(refresh_token=refresh_token)
        self._metrics.module_call("refresh", refreshed)
        if not isinstance(refreshed, Refreshed):
            return Step(refreshed, stored.revision)
        pair = Authorized(refreshed.access_token, refreshed.refresh_token, language)
        written = await self._store.replace(chat_id, pair, expect=stored.revision)
        if written is None:
            return Step(ModuleUnavailable("store", "session changed during refresh"), None)
        return Step(refreshed, written)


def _refreshed_by_other(stored: StoredSession | None, refresh_token: str) -> Step | None:
    """The result another request's refresh left in the store, if there is one."""
    if stored is None:  # logged out meanwhile: nothing to refresh
        return Step(RefreshRejected(), None)
    session = stored.session
    if isinstance(session, LostSession):  # replaced by one no key opens: no pair to refresh
        return Step(RefreshRejected(), stored.revision)
    if isinstance(session, Authorized) and session.refresh_token != refresh_token:
        return Step(Refreshed(session.access_token, session.refresh_token), stored.revision)
    return None
