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
from tggate.core.ports import (
    Clock,
    OutboxKind,
    OutboxMessage,
    SessionChange,
    SessionWrite,
    SubjectChat,
    UpdateAnswered,
    UpdateBusy,
    UpdateClaim,
    UpdateClaimed,
    outbox_chat_id,
)
from tggate.core.replies import Reply
from tggate.core.session import Authorized, Session, Status, StoredSession
from tggate.core.subjects import token_subject

if TYPE_CHECKING:
    from tggate.core.ports import FeedStore, SessionStore

__all__ = ["MemorySessionStore"]

# Chats per batch of `sessions`, as the Redis store reads them.
_BATCH = 200

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
    """Sessions, idempotency records, locks, the outbox, leases and the feed cursor in dicts."""

    def __init__(self, *, clock: Clock = time.time, delivered_ttl_s: int = 86400) -> None:
        require_positive(delivered_ttl_s=delivered_ttl_s)
        self._clock = clock
        self._delivered_ttl_s = delivered_ttl_s
        self._sessions: dict[int, _Entry] = {}
        # Like the Redis index sets, these keep ids of expired sessions until sessions() prunes
        # them.
        self._index: dict[Status, set[int]] = {status: set() for status in Status}
        self._answers: dict[tuple[int, int], _Expiring[tuple[Reply, ...]]] = {}
        self._claims: dict[tuple[int, int], _Expiring[str]] = {}
        self._locks: dict[tuple[int, str], _Expiring[str]] = {}
        self._outbox: dict[str, tuple[int, OutboxMessage]] = {}
        self._outbox_seq = 0
        self._delivered: dict[str, float] = {}  # id -> forget at
        self._leases: dict[str, _Expiring[str]] = {}
        self._feed_cursor: str | None = None
        self._subjects: dict[str, set[int]] = {}  # the subject -> chats index
        self._feed_lock: _Expiring[str] | None = None

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
        return self._write(chat_id, SessionChange(session, expect, ttl_s), outbox)

    async def write_sessions(self, writes: Sequence[SessionWrite]) -> list[str | None]:
        return [self._write(w.chat_id, w.change, w.outbox) for w in writes]

    async def sessions(
        self, status: Status, *, shard: int = 0, shards: int = 1
    ) -> AsyncIterator[Sequence[tuple[int, StoredSession]]]:
        require_shard(shard, shards)
        index = self._index[status]
        batch: list[tuple[int, StoredSession]] = []
        for chat_id in sorted(index):  # a snapshot: the caller may write while iterating
            if chat_id % shards != shard:
                continue
            entry = self._live_session(chat_id)
            if entry is None or entry.session.status is not status:
                index.discard(chat_id)
                continue
            batch.append((chat_id, StoredSession(entry.session, entry.revision)))
            if len(batch) == _BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    # -- idempotency of /v1/commands by update_id

    async def begin_update(
        self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int
    ) -> UpdateClaim:
        require_positive(ttl_ms=ttl_ms)
        key = (chat_id, update_id)
        answered = self._live(self._answers, key)
        if answered is not None:
            return UpdateAnswered(answered)
        if self._live(self._claims, key) is not None:
            return UpdateBusy()
        self._claims[key] = _Expiring(owner, self._clock() + ttl_ms / 1000)
        return UpdateClaimed(await self.load(chat_id))

    async def extend_update(self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        key = (chat_id, update_id)
        if self._live(self._claims, key) != owner:
            return False
        self._claims[key] = _Expiring(owner, self._clock() + ttl_ms / 1000)
        return True

    async def finish_update(
        self,
        chat_id: int,
        update_id: int,
        replies: Sequence[Reply],
        *,
        owner: str,
        ttl_s: int,
        change: SessionChange | None = None,
    ) -> str | None:
        require_positive(ttl_s=ttl_s)
        revision = ""
        if change is not None:
            written = self._write(chat_id, change, ())
            if written is None:
                return None
            revision = written
        key = (chat_id, update_id)
        if self._live(self._answers, key) is None:  # the first answer stays
            self._answers[key] = _Expiring(tuple(replies), self._clock() + ttl_s)
        await self.release_update(chat_id, update_id, owner=owner)
        return revision

    async def release_update(self, chat_id: int, update_id: int, *, owner: str) -> None:
        key = (chat_id, update_id)
        if self._live(self._claims, key) == owner:
            del self._claims[key]

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
            if outbox_chat_id(message_id) is None:
                continue  # not an id of a message, as in Redis
            removed += self._outbox.pop(message_id, None) is not None
            self._delivered[message_id] = forget_at
        return removed

    # -- the notification feed (bulk mode)

    async def subject_chats(self, subjects: Sequence[str]) -> dict[str, list[SubjectChat]]:
        found: dict[str, list[SubjectChat]] = {subject: [] for subject in subjects}
        for subject in subjects:
            filed = self._subjects.get(subject, set())
            for chat_id in sorted(filed):
                entry = self._live_session(chat_id)
                if entry is None or _subject_of(entry.session) != subject:
                    filed.discard(chat_id)  # stale, as the Redis store drops it
                    continue
                found[subject].append(SubjectChat(chat_id, entry.session.language))
        return found

    async def file_subjects(self, chats: Sequence[tuple[int, str]]) -> None:
        for chat_id, subject in chats:
            self._subjects.setdefault(subject, set()).add(chat_id)

    async def forget_subject(self, subject: str) -> None:
        self._subjects.pop(subject, None)

    async def feed_cursor(self) -> str | None:
        return self._feed_cursor

    async def advance_feed_cursor(self, cursor: str) -> None:
        self._feed_cursor = cursor

    async def acquire_feed_lock(self, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        lock = self._feed_lock
        if lock is not None and not self._expired(lock.expires_at):
            return False
        self._feed_lock = _Expiring(owner, self._clock() + ttl_ms / 1000)
        return True

    async def release_feed_lock(self, *, owner: str) -> None:
        if self._feed_lock is not None and self._feed_lock.value == owner:
            self._feed_lock = None

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

    def _write(
        self, chat_id: int, change: SessionChange, outbox: Sequence[OutboxMessage]
    ) -> str | None:
        if change.ttl_s is not None:
            require_positive(ttl_s=change.ttl_s)
        _require_own_ids(outbox)
        current = self._live_session(chat_id)
        if (current.revision if current else "") != (change.expect or ""):
            return None
        for index in self._index.values():
            index.discard(chat_id)
        session = change.session
        if session is None:
            self._sessions.pop(chat_id, None)
            revision = ""
        else:
            revision = secrets.token_hex(8)
            expires_at = None if change.ttl_s is None else self._clock() + change.ttl_s
            self._sessions[chat_id] = _Entry(session, revision, expires_at)
            self._index[session.status].add(chat_id)
            subject = _subject_of(session)
            if subject is not None:
                self._subjects.setdefault(subject, set()).add(chat_id)
        self._add(outbox)
        return revision

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
        _require_own_ids(messages)
        for message in messages:
            forget_at = self._delivered.get(message.id)
            if forget_at is not None and self._expired(forget_at):
                del self._delivered[message.id]
                forget_at = None
            if forget_at is None and message.id not in self._outbox:
                self._outbox_seq += 1
                self._outbox[message.id] = (self._outbox_seq, message)


def _subject_of(session: Session) -> str | None:
    return token_subject(session.access_token) if isinstance(session, Authorized) else None


def _require_own_ids(messages: Sequence[OutboxMessage]) -> None:
    for message in messages:
        if outbox_chat_id(message.id) != message.chat_id:
            raise ValueError(f"outbox message id {message.id!r} does not name its chat")


if TYPE_CHECKING:
    _implements_port: type[SessionStore] = MemorySessionStore
    _implements_feed_store: type[FeedStore] = MemorySessionStore
