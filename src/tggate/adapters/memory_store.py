"""An in-process `SessionStore` behaving like `RedisSessionStore`, for service-layer tests.

TTLs follow the injected clock, so tests expire sessions, claims, locks and leases by moving
time instead of sleeping. Every method completes without awaiting, which makes each one atomic
under asyncio, as the Lua scripts are in Redis. Not shared between processes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from tggate.adapters.store_checks import require_positive, require_shard
from tggate.core.ports import Clock, OutboxKind, OutboxMessage
from tggate.core.session import Session, Status, StoredSession

if TYPE_CHECKING:
    from tggate.core.ports import SessionStore

__all__ = ["MemorySessionStore"]

# Values of an update record, as RedisSessionStore writes them.
_PENDING = "pending"
_DONE = "done:"

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class _Expiring(Generic[_V]):
    value: _V
    expires_at: float | None  # None: never


@dataclass(frozen=True, slots=True)
class _Entry:
    session: Session
    revision: str
    expires_at: float | None


class MemorySessionStore:
    """Sessions, idempotency records, locks, the outbox and leases in dicts."""

    def __init__(self, *, clock: Clock = time.time, delivered_ttl_s: int = 86400) -> None:
        require_positive(delivered_ttl_s=delivered_ttl_s)
        self._clock = clock
        self._delivered_ttl_s = delivered_ttl_s
        self._sessions: dict[int, _Entry] = {}
        # Like the Redis index sets, these keep ids of expired sessions until chats() prunes them.
        self._index: dict[Status, set[int]] = {status: set() for status in Status}
        self._updates: dict[tuple[int, int], _Expiring[str]] = {}
        self._locks: dict[tuple[int, str], _Expiring[str]] = {}
        self._outbox: dict[str, tuple[int, OutboxMessage]] = {}
        self._outbox_seq = 0
        self._delivered: dict[str, float] = {}  # id -> forget at
        self._leases: dict[str, _Expiring[str]] = {}

    # -- sessions

    async def load(self, chat_id: int) -> StoredSession | None:
        entry = self._live_session(chat_id)
        return None if entry is None else StoredSession(entry.session, entry.revision)

    async def replace(
        self,
        chat_id: int,
        session: Session | None,
        *,
        expect: str | None,
        ttl_s: int | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> str | None:
        if ttl_s is not None:
            require_positive(ttl_s=ttl_s)
        current = self._live_session(chat_id)
        if (current.revision if current else "") != (expect or ""):
            return None
        for index in self._index.values():
            index.discard(chat_id)
        if session is None:
            self._sessions.pop(chat_id, None)
            revision = ""
        else:
            revision = secrets.token_hex(8)
            expires_at = None if ttl_s is None else self._clock() + ttl_s
            self._sessions[chat_id] = _Entry(session, revision, expires_at)
            self._index[session.status].add(chat_id)
        self._add(outbox)
        return revision

    async def chats(self, status: Status, *, shard: int = 0, shards: int = 1) -> AsyncIterator[int]:
        require_shard(shard, shards)
        index = self._index[status]
        for chat_id in sorted(index):  # a snapshot: the caller may write while iterating
            if chat_id % shards != shard:
                continue
            entry = self._live_session(chat_id)
            if entry is None or entry.session.status is not status:
                index.discard(chat_id)
                continue
            yield chat_id

    # -- idempotency of /v1/commands by update_id

    async def claim_update(self, chat_id: int, update_id: int, *, ttl_s: int) -> bool | str:
        require_positive(ttl_s=ttl_s)
        key = (chat_id, update_id)
        found = self._live(self._updates, key)
        if found is None:
            self._updates[key] = _Expiring(_PENDING, self._clock() + ttl_s)
            return True
        return found.removeprefix(_DONE) if found.startswith(_DONE) else False

    async def finish_update(self, chat_id: int, update_id: int, answer: str, *, ttl_s: int) -> None:
        require_positive(ttl_s=ttl_s)
        self._updates[(chat_id, update_id)] = _Expiring(_DONE + answer, self._clock() + ttl_s)

    async def release_update(self, chat_id: int, update_id: int) -> None:
        key = (chat_id, update_id)
        if self._live(self._updates, key) == _PENDING:
            del self._updates[key]

    # -- single-flight refresh

    async def acquire_lock(self, chat_id: int, name: str, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        key = (chat_id, name)
        if self._live(self._locks, key) is not None:
            return False
        self._locks[key] = _Expiring(owner, self._clock() + ttl_ms / 1000)
        return True

    async def release_lock(self, chat_id: int, name: str, *, owner: str) -> None:
        key = (chat_id, name)
        if self._live(self._locks, key) == owner:
            del self._locks[key]

    # -- the outbox

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        self._add(messages)

    async def pending_outbox(
        self, *, kind: OutboxKind | None = None, shard: int = 0, shards: int = 1
    ) -> list[OutboxMessage]:
        require_shard(shard, shards)
        entries = sorted(self._outbox.values(), key=lambda entry: entry[0])
        return [
            message
            for _, message in entries
            if message.chat_id % shards == shard and kind in (None, message.kind)
        ]

    async def ack_outbox(self, ids: Sequence[str]) -> int:
        # Forget ids remembered long enough (Redis expires those keys by itself).
        self._delivered = {i: t for i, t in self._delivered.items() if not self._expired(t)}
        forget_at = self._clock() + self._delivered_ttl_s
        removed = 0
        for message_id in ids:
            removed += self._outbox.pop(message_id, None) is not None
            self._delivered[message_id] = forget_at
        return removed

    # -- the poller lease

    async def lease(self, name: str, *, instance: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        holder = self._live(self._leases, name)
        if holder is not None and holder != instance:
            return False
        self._leases[name] = _Expiring(instance, self._clock() + ttl_ms / 1000)
        return True

    async def ping(self) -> bool:
        return True

    # -- helpers

    def _expired(self, expires_at: float | None) -> bool:
        return expires_at is not None and self._clock() >= expires_at

    def _live_session(self, chat_id: int) -> _Entry | None:
        entry = self._sessions.get(chat_id)
        if entry is not None and self._expired(entry.expires_at):
            del self._sessions[chat_id]  # the index keeps the id, as in Redis
            return None
        return entry

    def _live(self, table: dict[_K, _Expiring[_V]], key: _K) -> _V | None:
        found = table.get(key)
        if found is None:
            return None
        if self._expired(found.expires_at):
            del table[key]
            return None
        return found.value

    def _add(self, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            forget_at = self._delivered.get(message.id)
            if forget_at is not None and self._expired(forget_at):
                del self._delivered[message.id]
                forget_at = None
            if forget_at is None and message.id not in self._outbox:
                self._outbox_seq += 1
                self._outbox[message.id] = (self._outbox_seq, message)


if TYPE_CHECKING:
    _implements_port: type[SessionStore] = MemorySessionStore
