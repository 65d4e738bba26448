"""The Redis `SessionStore` (docs/scenarios.md: #sessions, #atomic, #idempotency, #outbox, #lease).

Layout (prefix `tggate`). A chat belongs to the bucket `chat_id % buckets`; every key of a chat
and of its bucket carries the bucket's hash tag (`{b17}`), so one Lua script never spans two
Cluster slots, and a timer cycle reads a shard as a set of buckets (`RedisKeys`):

    tggate:{b17}:session:42          hash: status, rev, data (the session's values, encoded below)
    tggate:{b17}:updates:42          hash: update_id -> the answer and its expiry minute
                                       (idempotency; `SessionCodec.encode_record`)
    tggate:{b17}:claim:42:<update>   the owner handling an update (a short TTL, renewed)
    tggate:{b17}:lock:42:<name>      the owner of a short lock (single-flight refresh)
    tggate:{b17}:index:anonymous     set of the bucket's chat ids (may hold expired ones: pruned
    tggate:{b17}:index:authorized      while read)
    tggate:{b17}:outbox              hash: message id -> [seq, message JSON (with its kind)]
    tggate:{b17}:outbox:seq          counter giving the bucket's messages their order
    tggate:{b17}:delivered:<id>      "1" while an acked id is remembered
    tggate:{b9}:subject:<digest>     set of the Authorized chats of a person (bulk notification
                                       mode): the digest is the subject's SHA-256 (a subject may
                                       be an email address; it never appears in a key), its
                                       first bits give the bucket
    tggate:feed:cursor               where the last pull of the notification feed stopped
    tggate:feed:lock                 the replica pulling the feed now
    tggate:lease:<name>              the instance holding a lease
    tggate:meta                      hash: the layout's bucket count (checked at start)

A session's `data` is a JSON array of its values; with a `TokenCipher` it is compressed and
sealed as a whole ("s1:" + AES-GCM, `TokenCipher.seal_bytes`), which keeps an Authorized
session with two JWTs under 1 KiB (bench/README.md, redis_memory). An answer is recorded
compactly (`SessionCodec.encode_record`): sealed, as bytes, deflated against a preset
dictionary of the bot's texts, which keeps it under 128 bytes (issue 11).
Every multi-key change is one Lua script (`redis_scripts`); several scripts of one call go out
in one round trip. Redis failing becomes the port's `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import secrets
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from tggate.adapters import redis_scripts
from tggate.adapters.answer_dictionary import ANSWER_DICTIONARY_V1
from tggate.adapters.store_checks import require_positive, require_shard
from tggate.adapters.token_cipher import TokenCipher, TokenCipherError
from tggate.core.ports import (
    OutboxKind,
    OutboxMessage,
    SessionChange,
    SessionWrite,
    StoreUnavailable,
    SubjectChat,
    UpdateAnswered,
    UpdateBusy,
    UpdateClaim,
    UpdateClaimed,
    outbox_chat_id,
)
from tggate.core.replies import Button, Reply
from tggate.core.session import (
    Anonymous,
    Authorized,
    LoginPrompt,
    LostSession,
    Session,
    Status,
    StoredSession,
)
from tggate.core.subjects import token_subject

if TYPE_CHECKING:
    from tggate.core.ports import FeedStore, SessionStore

__all__ = [
    "DEFAULT_BUCKETS",
    "CorruptRecord",
    "LayoutMismatch",
    "RedisClient",
    "RedisKeys",
    "RedisSessionStore",
    "SessionCodec",
    "decode_outbox_entry",
]

log = logging.getLogger("tggate.adapters.redis")

RedisClient = Redis | RedisCluster

# A power of two, so any power-of-two shard count reads only its own buckets; 256 spreads
# evenly over the masters of a Cluster and keeps each bucket's index a compact intset at 100k
# chats (~400 ids each, under set-max-intset-entries' 512).
DEFAULT_BUCKETS = 256

_SEALED = "s1:"
# A sealed answer record as bytes (issue 11: at most 128 bytes per command): the format byte, the
# expiry minute (4 bytes, big-endian, which the Lua prune reads: redis_scripts.FINISH_UPDATE),
# then `TokenCipher.seal_raw` of the answer's JSON deflated against ANSWER_DICTIONARY_V1, the
# header bound to the seal. Records of the text formats ("<minute>:<JSON>", "<minute>:s1:…")
# start with a digit, and are still read (a rolling upgrade; they live a day).
_ANSWER_V1 = 1
_ANSWER_HEADER = struct.Struct(">BI")
# Raw deflate (no zlib header or checksum: the seal authenticates) with a 4 KiB window, which
# holds the dictionary whole; a smaller state than zlib's default is cheaper to copy.
_DEFLATE_WBITS = -12
_DEFLATE_MEM_LEVEL = 2
_TIGHT = (",", ":")
# How many sealed sessions a store keeps opened, by their sealed text, for the chats' next
# commands (`SessionCodec.decode(remember=True)`): about 1.5 KB each. Their tokens are then in
# plain text in this process's memory for longer than one command, where the keys that open
# them live anyway; sealing protects what Redis holds, not what a replica's memory holds.
OPENED_SESSIONS = 4096
# Chats per LOAD_SESSIONS call, and buckets per pipelined read.
_LOAD_BATCH = 200
_PIPELINE_BUCKETS = 64

_P = ParamSpec("_P")
_T = TypeVar("_T")


class CorruptRecord(ValueError):
    """A stored value does not have the shape this store writes."""


class LayoutMismatch(RuntimeError):
    """The Redis database was laid out with another bucket count than this store's."""


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The one place that names keys. Other Redis users (the webhook intake) build a chat's keys
    here too: `tag(chat_id)` puts a key into the chat's slot."""

    prefix: str = "tggate"
    buckets: int = DEFAULT_BUCKETS

    def bucket(self, chat_id: int) -> int:
        return chat_id % self.buckets

    def tag(self, chat_id: int) -> str:
        """The hash tag shared by the chat's keys and its bucket's keys, e.g. "{b17}"."""
        return self.bucket_tag(chat_id % self.buckets)

    @staticmethod
    def bucket_tag(bucket: int) -> str:
        return f"{{b{bucket}}}"

    def chat_key(self, chat_id: int, name: str, *rest: object) -> str:
        """A key of the chat: `<prefix>:{b<bucket>}:<name>:<chat_id>[:<rest>…]`."""
        tail = "".join(f":{part}" for part in rest)
        return f"{self.prefix}:{self.tag(chat_id)}:{name}:{chat_id}{tail}"

    def bucket_key(self, bucket: int, name: str) -> str:
        """A key of a whole bucket: `<prefix>:{b<bucket>}:<name>`."""
        return f"{self.prefix}:{self.bucket_tag(bucket)}:{name}"

    def session(self, chat_id: int) -> str:
        return f"{self.prefix}:{{b{chat_id % self.buckets}}}:session:{chat_id}"

    def updates(self, chat_id: int) -> str:
        return f"{self.prefix}:{{b{chat_id % self.buckets}}}:updates:{chat_id}"

    def claim(self, chat_id: int, update_id: int) -> str:
        return f"{self.prefix}:{{b{chat_id % self.buckets}}}:claim:{chat_id}:{update_id}"

    def lock(self, chat_id: int, name: str) -> str:
        return f"{self.prefix}:{{b{chat_id % self.buckets}}}:lock:{chat_id}:{name}"

    def index(self, bucket: int, status: Status) -> str:
        return self.bucket_key(bucket, f"index:{status.value}")

    def outbox(self, bucket: int) -> str:
        return self.bucket_key(bucket, "outbox")

    def outbox_seq(self, bucket: int) -> str:
        return self.bucket_key(bucket, "outbox:seq")

    def delivered(self, bucket: int, message_id: str) -> str:
        return self.bucket_key(bucket, f"delivered:{message_id}")

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def subject(self, subject: str) -> str:
        """The chats of a person (the bulk notification mode): a set in a bucket picked by the
        subject's digest, so the index spreads over a Cluster like the chats do."""
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return self.bucket_key(int(digest[:8], 16) % self.buckets, f"subject:{digest}")

    @property
    def feed_cursor(self) -> str:
        return f"{self.prefix}:feed:cursor"

    @property
    def feed_lock(self) -> str:
        return f"{self.prefix}:feed:lock"

    @property
    def meta(self) -> str:
        return f"{self.prefix}:meta"

    def shard_buckets(self, shard: int, shards: int) -> range:
        """The buckets that can hold chats with chat_id % shards == shard: every bucket when the
        shard count does not divide the bucket count (those chats are then filtered)."""
        step = shards if self.buckets % shards == 0 else 1
        return range(shard % step, self.buckets, step)


@dataclass(frozen=True, slots=True)
class _Script:
    text: str
    sha: str

    @classmethod
    def of(cls, text: str) -> _Script:
        return cls(text, hashlib.sha1(text.encode()).hexdigest())


_WRITE_SESSIONS = _Script.of(redis_scripts.WRITE_SESSIONS)
_BEGIN_UPDATE = _Script.of(redis_scripts.BEGIN_UPDATE)
_FINISH_UPDATE = _Script.of(redis_scripts.FINISH_UPDATE)
_LOAD_SESSIONS = _Script.of(redis_scripts.LOAD_SESSIONS)
_ADD_OUTBOX = _Script.of(redis_scripts.ADD_OUTBOX)
_ACK_OUTBOX = _Script.of(redis_scripts.ACK_OUTBOX)
_DELETE_IF_EQUALS = _Script.of(redis_scripts.DELETE_IF_EQUALS)
_DELETE_FIELD_IF_EQUALS = _Script.of(redis_scripts.DELETE_FIELD_IF_EQUALS)
_EXTEND_IF_EQUALS = _Script.of(redis_scripts.EXTEND_IF_EQUALS)
_LEASE = _Script.of(redis_scripts.LEASE)

_Call = tuple[_Script, Sequence[str], Sequence[str | int]]


def _unavailable_on_redis_error(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Redis failing (down, failing over, out of connections) becomes the port's
    `StoreUnavailable`; the class name is enough for the log (messages may quote values)."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except (RedisError, RedisClusterException) as error:
            raise StoreUnavailable(type(error).__name__) from error

    return wrapper


class RedisSessionStore:
    """Sessions, idempotency records, claims, locks, the outbox and leases in Redis: one server,
    a Sentinel-managed master or a Cluster (`tggate.adapters.redis_connect`).

    Works with clients built with or without `decode_responses`.
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = "tggate",
        buckets: int = DEFAULT_BUCKETS,
        delivered_ttl_s: int = 86400,
        ping_timeout_s: float = 2.0,
        scan_count: int = 1000,
        cipher: TokenCipher | None = None,
        clock: Callable[[], float] = time.time,
        subject_index: bool = False,
    ) -> None:
        require_positive(delivered_ttl_s=delivered_ttl_s, scan_count=scan_count, buckets=buckets)
        # The bulk notification mode's subject -> chats index, kept only in that mode: the
        # per-chat mode pays no round trip for it (bench/README.md).
        self._subject_index = subject_index
        self._redis = redis
        self._keys = RedisKeys(prefix, buckets)
        self._delivered_ttl_s = delivered_ttl_s
        self._ping_timeout_s = ping_timeout_s
        self._scan_count = scan_count
        # Answers are kept as bytes unless the client decodes every reply as UTF-8 (it could
        # not read them back): then in the text format.
        binary = not redis.get_encoder().decode_responses
        self._codec = SessionCodec(cipher, binary_answers=binary)
        self._clock = clock

    @property
    def keys(self) -> RedisKeys:
        return self._keys

    # -- the layout

    @_unavailable_on_redis_error
    async def check_layout(self) -> None:
        """Record this store's bucket count in a new database, or refuse one laid out with
        another (its chats would be looked for in the wrong buckets)."""
        key, field = self._keys.meta, "buckets"
        await self._redis.hsetnx(key, field, self._keys.buckets)
        found = await self._redis.hget(key, field)
        if found is None or _int(found) != self._keys.buckets:
            raise LayoutMismatch(
                f"Redis holds tggate data in {_text(found)} buckets, this Bot Logic is set to "
                f"{self._keys.buckets} (TGGATE_REDIS_BUCKETS must not change on a live database)"
            )

    # -- sessions

    @_unavailable_on_redis_error
    async def load(self, chat_id: int) -> StoredSession | None:
        found = await self._redis.hmget(self._keys.session(chat_id), ["status", "rev", "data"])
        status, revision, data = found
        if status is None:
            return None
        return self._codec.decode(chat_id, _text(status), _text(revision), _text(data))

    async def replace(
        self,
        chat_id: int,
        session: Session | None,
        *,
        expect: str | None,
        ttl_s: int | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> str | None:
        change = SessionChange(session, expect, ttl_s)
        [written] = await self.write_sessions([SessionWrite(chat_id, change, outbox)])
        return written

    async def write_sessions(self, writes: Sequence[SessionWrite]) -> list[str | None]:
        if not self._subject_index:
            return await self._write_sessions(writes)
        subjects = [_authorized_subject(write.change.session) for write in writes]
        filed = [(w.chat_id, s) for w, s in zip(writes, subjects, strict=True) if s is not None]
        await self.file_subjects(filed)
        written = await self._write_sessions(writes)
        await self.file_subjects(
            [
                (write.chat_id, subject)
                for write, subject, revision in zip(writes, subjects, written, strict=True)
                if subject is not None and revision is not None
            ]
        )
        return written

    @_unavailable_on_redis_error
    async def _write_sessions(self, writes: Sequence[SessionWrite]) -> list[str | None]:
        by_bucket: dict[int, list[int]] = {}
        encoded: list[tuple[list[str], list[str | int], str]] = []
        for position, write in enumerate(writes):
            keys: list[str] = [self._keys.session(write.chat_id)]
            args, revision = self._change_args(write.chat_id, write.change)
            bucket = self._keys.bucket(write.chat_id)
            args.append(len(write.outbox))
            for message in write.outbox:
                self._require_own_id(message)
                keys.append(self._keys.delivered(bucket, message.id))
                args += (message.id, _encode_outbox_message(message))
            encoded.append((keys, args, revision))
            by_bucket.setdefault(bucket, []).append(position)
        calls: list[_Call] = []
        for bucket, positions in by_bucket.items():
            keys = [
                self._keys.index(bucket, Status.ANONYMOUS),
                self._keys.index(bucket, Status.AUTHORIZED),
                self._keys.outbox(bucket),
                self._keys.outbox_seq(bucket),
            ]
            bucket_args: list[str | int] = []
            for position in positions:
                keys += encoded[position][0]
                bucket_args += encoded[position][1]
            calls.append((_WRITE_SESSIONS, keys, bucket_args))
        results: list[str | None] = [None] * len(writes)
        for positions, done in zip(by_bucket.values(), await self._run_many(calls), strict=True):
            for position, ok in zip(positions, done, strict=True):
                results[position] = encoded[position][2] if int(ok) else None
        return results

    def _change_args(self, chat_id: int, change: SessionChange) -> tuple[list[str | int], str]:
        """ARGV of `write_session` (redis_scripts) for `change`, and the revision it writes."""
        if change.ttl_s is not None:
            require_positive(ttl_s=change.ttl_s)
        session = change.session
        if session is None:
            return [chat_id, change.expect or "", 0, "", "", ""], ""
        revision = _new_revision()
        ttl_ms = 0 if change.ttl_s is None else change.ttl_s * 1000
        status, data = session.status.value, self._codec.encode(session)
        return [chat_id, change.expect or "", ttl_ms, status, revision, data], revision

    async def sessions(
        self, status: Status, *, shard: int = 0, shards: int = 1
    ) -> AsyncIterator[Sequence[tuple[int, StoredSession]]]:
        require_shard(shard, shards)
        buckets = self._keys.shard_buckets(shard, shards)
        for start in range(0, len(buckets), _PIPELINE_BUCKETS):
            group = buckets[start : start + _PIPELINE_BUCKETS]
            pages = await self._first_pages(status, group)
            for bucket, (cursor, members) in zip(group, pages, strict=True):
                async for batch in self._bucket_sessions(
                    status, bucket, cursor, members, shard, shards
                ):
                    yield batch

    @_unavailable_on_redis_error
    async def _first_pages(self, status: Status, buckets: range) -> list[tuple[int, list[Any]]]:
        pipe = self._redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.sscan(self._keys.index(bucket, status), 0, count=self._scan_count)
        return [(int(cursor), members) for cursor, members in await pipe.execute()]

    async def _bucket_sessions(
        self,
        status: Status,
        bucket: int,
        cursor: int,
        members: list[Any],
        shard: int,
        shards: int,
    ) -> AsyncIterator[list[tuple[int, StoredSession]]]:
        index = self._keys.index(bucket, status)
        seen: set[int] = set()
        while True:
            # SSCAN may repeat members; each chat is yielded once.
            candidates = sorted(
                {c for c in map(_int, members) if c % shards == shard and c not in seen}
            )
            seen.update(candidates)
            for start in range(0, len(candidates), _LOAD_BATCH):
                batch = await self._load_live(
                    index, status, candidates[start : start + _LOAD_BATCH]
                )
                if batch:
                    yield batch
            if cursor == 0:
                return
            cursor, members = await self._scan(index, cursor)

    @_unavailable_on_redis_error
    async def _scan(self, index: str, cursor: int) -> tuple[int, list[Any]]:
        found, members = await self._redis.sscan(index, cursor, count=self._scan_count)
        return int(found), members

    @_unavailable_on_redis_error
    async def _load_live(
        self, index: str, status: Status, chats: Sequence[int]
    ) -> list[tuple[int, StoredSession]]:
        keys = [index, *map(self._keys.session, chats)]
        flat = await self._run(_LOAD_SESSIONS, keys, [status.value, *chats])
        batch: list[tuple[int, StoredSession]] = []
        for i in range(0, len(flat), 3):
            chat_id = _int(flat[i])
            try:
                stored = self._codec.decode(
                    chat_id, status.value, _text(flat[i + 1]), _text(flat[i + 2])
                )
            except CorruptRecord as error:
                # One unreadable session must not stop a cycle over all the others.
                log.warning("session of chat %s skipped: %s", chat_id, error)
                continue
            batch.append((chat_id, stored))
        return batch

    # -- idempotency of /v1/commands by update_id

    @_unavailable_on_redis_error
    async def begin_update(
        self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int
    ) -> UpdateClaim:
        require_positive(ttl_ms=ttl_ms)
        keys = [
            self._keys.updates(chat_id),
            self._keys.claim(chat_id, update_id),
            self._keys.session(chat_id),
        ]
        found = await self._run(_BEGIN_UPDATE, keys, [update_id, owner, ttl_ms])
        state = int(found[0])
        if state == 0:
            record = found[1]
            try:
                return UpdateAnswered(self._codec.decode_record(record))
            except TokenCipherError:
                # Sealed with a key no longer configured: the answer is lost. The update is
                # handled anew rather than refused on every retry (docs/state-machine.md).
                await self._run(_DELETE_FIELD_IF_EQUALS, keys[:1], [update_id, record])
                return await self.begin_update(chat_id, update_id, owner=owner, ttl_ms=ttl_ms)
        if state == 2:
            return UpdateBusy()
        if len(found) == 1:
            return UpdateClaimed(None)
        status, revision, data = (_text(value) for value in found[1:4])
        return UpdateClaimed(self._codec.decode(chat_id, status, revision, data, remember=True))

    @_unavailable_on_redis_error
    async def extend_update(self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        keys = [self._keys.claim(chat_id, update_id)]
        return bool(await self._run(_EXTEND_IF_EQUALS, keys, [owner, ttl_ms]))

    @_unavailable_on_redis_error
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
        bucket = self._keys.bucket(chat_id)
        keys = [
            self._keys.updates(chat_id),
            self._keys.claim(chat_id, update_id),
            self._keys.session(chat_id),
            self._keys.index(bucket, Status.ANONYMOUS),
            self._keys.index(bucket, Status.AUTHORIZED),
        ]
        now_minute = int(self._clock() // 60)
        # The record expires at the end of the minute ttl_s ends in: never earlier than asked.
        record = self._codec.encode_record(replies, now_minute + -(-ttl_s // 60))
        args: list[str | bytes | int] = [update_id, owner, record, ttl_s * 1000, now_minute]
        revision = ""
        subject = None
        if change is None:
            args.append(0)
        else:
            change_args, revision = self._change_args(chat_id, change)
            args += [1, *change_args]
            subject = _authorized_subject(change.session) if self._subject_index else None
        filed = [] if subject is None else [(chat_id, subject)]
        await self.file_subjects(filed)
        done = await self._run(_FINISH_UPDATE, keys, args)
        if not int(done):
            return None
        await self.file_subjects(filed)
        return revision

    @_unavailable_on_redis_error
    async def release_update(self, chat_id: int, update_id: int, *, owner: str) -> None:
        await self._run(_DELETE_IF_EQUALS, [self._keys.claim(chat_id, update_id)], [owner])

    # -- single-flight refresh

    @_unavailable_on_redis_error
    async def acquire_lock(self, chat_id: int, name: str, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        acquired = await self._redis.set(self._keys.lock(chat_id, name), owner, nx=True, px=ttl_ms)
        return bool(acquired)

    @_unavailable_on_redis_error
    async def release_lock(self, chat_id: int, name: str, *, owner: str) -> None:
        await self._run(_DELETE_IF_EQUALS, [self._keys.lock(chat_id, name)], [owner])

    # -- the outbox

    @_unavailable_on_redis_error
    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        by_bucket: dict[int, list[OutboxMessage]] = {}
        for message in messages:
            self._require_own_id(message)
            by_bucket.setdefault(self._keys.bucket(message.chat_id), []).append(message)
        calls: list[_Call] = []
        for bucket, found in by_bucket.items():
            keys = [
                self._keys.outbox(bucket),
                self._keys.outbox_seq(bucket),
                *(self._keys.delivered(bucket, m.id) for m in found),
            ]
            calls.append((_ADD_OUTBOX, keys, _outbox_args(found)))
        await self._run_many(calls)

    @_unavailable_on_redis_error
    async def pending_outbox(
        self, *, kind: OutboxKind | None = None, shard: int = 0, shards: int = 1
    ) -> list[OutboxMessage]:
        require_shard(shard, shards)
        buckets = self._keys.shard_buckets(shard, shards)
        found: list[OutboxMessage] = []
        for start in range(0, len(buckets), _PIPELINE_BUCKETS):
            pipe = self._redis.pipeline(transaction=False)
            for bucket in buckets[start : start + _PIPELINE_BUCKETS]:
                pipe.hgetall(self._keys.outbox(bucket))
            for entries in await pipe.execute():
                messages = sorted(
                    (decode_outbox_entry(_text(v)) for v in entries.values()),
                    key=lambda entry: entry[0],
                )
                found += (
                    message
                    for _, message in messages
                    if message.chat_id % shards == shard and kind in (None, message.kind)
                )
        return found

    @_unavailable_on_redis_error
    async def ack_outbox(self, ids: Sequence[str]) -> int:
        by_bucket: dict[int, list[str]] = {}
        for message_id in dict.fromkeys(ids):
            chat_id = outbox_chat_id(message_id)
            if chat_id is not None:  # not an id this store ever handed out
                by_bucket.setdefault(self._keys.bucket(chat_id), []).append(message_id)
        calls: list[_Call] = [
            (
                _ACK_OUTBOX,
                [self._keys.outbox(bucket), *(self._keys.delivered(bucket, i) for i in found)],
                [self._delivered_ttl_s, *found],
            )
            for bucket, found in by_bucket.items()
        ]
        return sum(int(removed) for removed in await self._run_many(calls))

    # -- the notification feed (bulk mode, docs/scenarios.md#n2-bulk)

    @_unavailable_on_redis_error
    async def file_subjects(self, chats: Sequence[tuple[int, str]]) -> None:
        """File Authorized chats under their person's subject. A writer files a chat before its
        session write (a crash in between leaves an entry `subject_chats` drops, never a chat
        the feed cannot reach) and again after it: a stale entry dropped meanwhile by
        `subject_chats`, which read the session before this write, is back then."""
        if not chats:
            return
        pipe = self._redis.pipeline(transaction=False)
        for chat_id, subject in chats:
            pipe.sadd(self._keys.subject(subject), chat_id)
        await pipe.execute()

    @_unavailable_on_redis_error
    async def subject_chats(self, subjects: Sequence[str]) -> dict[str, list[SubjectChat]]:
        pipe = self._redis.pipeline(transaction=False)
        for subject in subjects:
            pipe.smembers(self._keys.subject(subject))
        filed = [
            (subject, chat_id)
            for subject, members in zip(subjects, await pipe.execute(), strict=True)
            for chat_id in sorted(map(_int, members))
        ]
        sessions = await self._read_sessions([chat_id for _, chat_id in filed])
        found: dict[str, list[SubjectChat]] = {subject: [] for subject in subjects}
        stale: list[tuple[str, int]] = []
        for (subject, chat_id), stored in zip(filed, sessions, strict=True):
            if _is_of(stored, subject):
                assert stored is not None
                found[subject].append(SubjectChat(chat_id, stored.session.language))
            else:
                stale.append((subject, chat_id))
        if stale:
            await self._drop_stale_subjects(stale)
        return found

    async def _drop_stale_subjects(self, stale: Sequence[tuple[str, int]]) -> None:
        """Drop index entries whose session ended (logout, logout everywhere, a lost or
        expired session) or belongs to another person now. The index is in another slot than
        the session, so no script covers both: each entry is removed, the session read again,
        and the entry filed back if a login wrote it meanwhile (see `file_subjects`)."""
        pipe = self._redis.pipeline(transaction=False)
        for subject, chat_id in stale:
            pipe.srem(self._keys.subject(subject), chat_id)
        await pipe.execute()
        again = await self._read_sessions([chat_id for _, chat_id in stale])
        await self.file_subjects(
            [
                (chat_id, subject)
                for (subject, chat_id), stored in zip(stale, again, strict=True)
                if _is_of(stored, subject)
            ]
        )

    @_unavailable_on_redis_error
    async def _read_sessions(self, chats: Sequence[int]) -> list[StoredSession | None]:
        if not chats:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for chat_id in chats:
            pipe.hmget(self._keys.session(chat_id), ["status", "rev", "data"])
        found: list[StoredSession | None] = []
        for chat_id, (status, revision, data) in zip(chats, await pipe.execute(), strict=True):
            try:
                found.append(
                    None
                    if status is None
                    else self._codec.decode(chat_id, _text(status), _text(revision), _text(data))
                )
            except CorruptRecord as error:
                log.warning("session of chat %s skipped: %s", chat_id, error)
                found.append(None)
        return found

    @_unavailable_on_redis_error
    async def forget_subject(self, subject: str) -> None:
        await self._redis.delete(self._keys.subject(subject))

    @_unavailable_on_redis_error
    async def feed_cursor(self) -> str | None:
        found = await self._redis.get(self._keys.feed_cursor)
        return None if found is None else _text(found)

    @_unavailable_on_redis_error
    async def advance_feed_cursor(self, cursor: str) -> None:
        await self._redis.set(self._keys.feed_cursor, cursor)

    @_unavailable_on_redis_error
    async def acquire_feed_lock(self, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        return bool(await self._redis.set(self._keys.feed_lock, owner, nx=True, px=ttl_ms))

    @_unavailable_on_redis_error
    async def release_feed_lock(self, *, owner: str) -> None:
        await self._run(_DELETE_IF_EQUALS, [self._keys.feed_lock], [owner])

    # -- the poller lease

    @_unavailable_on_redis_error
    async def lease(self, name: str, *, instance: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        return bool(await self._run(_LEASE, [self._keys.lease(name)], [instance, ttl_ms]))

    async def ping(self) -> bool:
        """True if Redis answers within `ping_timeout_s`; never raises (for /readyz)."""
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                return bool(await self._redis.ping())
        except Exception:
            return False

    # -- scripts

    async def _run(
        self, script: _Script, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> Any:
        """EVALSHA, loading the script once if the server does not know it (a restart, a new
        master or Cluster node)."""
        try:
            return await self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._redis.script_load(script.text)
            return await self._redis.evalsha(script.sha, len(keys), *keys, *args)

    async def _run_many(self, calls: Sequence[_Call]) -> list[Any]:
        """Several scripts in one round trip (a pipeline; on a Cluster, concurrent calls); any
        the server did not know are loaded and run again."""
        if len(calls) <= 1:
            return [await self._run(*call) for call in calls]
        if isinstance(self._redis, RedisCluster):
            # A Cluster pipeline refuses scripts; each goes to its node, all at once.
            return list(await asyncio.gather(*(self._run(*call) for call in calls)))
        pipe = self._redis.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        for position, result in enumerate(results):
            if isinstance(result, NoScriptError):
                results[position] = await self._run(*calls[position])
            elif isinstance(result, Exception):
                raise result
        return results

    def _require_own_id(self, message: OutboxMessage) -> None:
        if outbox_chat_id(message.id) != message.chat_id:
            raise ValueError(
                f"outbox message id {message.id!r} does not name chat {message.chat_id}"
            )


# ---- encoding


def _authorized_subject(session: Session | None) -> str | None:
    """The person an Authorized session being written belongs to (core.subjects)."""
    return token_subject(session.access_token) if isinstance(session, Authorized) else None


def _is_of(stored: StoredSession | None, subject: str) -> bool:
    """Whether a stored session is an Authorized one of the person `subject`."""
    return (
        stored is not None
        and isinstance(stored.session, Authorized)
        and token_subject(stored.session.access_token) == subject
    )


def _new_revision() -> str:
    return secrets.token_hex(8)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise CorruptRecord(f"expected a string from Redis, got {type(value).__name__}")


def _int(value: object) -> int:
    return int(value) if isinstance(value, int) else int(_text(value))


class SessionCodec:
    """A session's values, and a kept answer, as strings: JSON, or with a cipher that JSON
    sealed ("s1:", `TokenCipher.seal_bytes`); with `binary_answers` a sealed answer as bytes
    (`encode_record`). A session, and an answer kept as bytes, are compressed before sealing:
    an Authorized session with two JWTs stays under 1 KiB, an answer under 128 bytes.

    Compressing before sealing tells, by the stored length, how well a value compressed; a
    secret leaks that way only to someone who reads those lengths (access to Redis) and, again
    and again, puts text of their choice into the same sealed value next to it (CRIME). A
    session holds tokens and a login prompt, no text of anyone's choosing. An answer holds the
    bot's fixed texts (the preset dictionary, the same for everyone), the Main module's data for
    that person, and what that person typed: someone else's text (a course title) reaches it
    only through the Main module and only when that person sends a command, and without
    compression a reader of Redis sees the lengths too. A session's language stays readable,
    so a session no key opens can still be told apart and answered in it (`LostSession`)."""

    def __init__(
        self,
        cipher: TokenCipher | None,
        *,
        binary_answers: bool = False,
        remember: int = OPENED_SESSIONS,
    ) -> None:
        self._cipher = cipher
        # Sessions opened for a command, by (status, sealed text): a chat's next command finds
        # its session here rather than opening it again (base64, AES-GCM, zlib and JSON: ~15 µs
        # of the ~390 µs of CPU of an authorized command, issue 11). The sealed text names
        # one session exactly (a fresh nonce each time one is sealed), so an entry is never
        # stale: a changed session is another text. Oldest out first, at most `remember`.
        self._opened: OrderedDict[tuple[str, str], Session] = OrderedDict()
        self._remember = remember
        self._answer_cipher = cipher if binary_answers else None
        # Primed once: copying it is cheaper than loading the dictionary for every answer.
        self._deflate = zlib.compressobj(
            9, zlib.DEFLATED, _DEFLATE_WBITS, _DEFLATE_MEM_LEVEL, zdict=ANSWER_DICTIONARY_V1
        )

    def encode(self, session: Session) -> str:
        values: list[str]
        match session:
            case Anonymous(login_token=token, login_type=login_type, prompt=prompt):
                values = [token, login_type, prompt.text, prompt.url or "", prompt.code or ""]
            case Authorized(access_token=access, refresh_token=refresh):
                values = [access, refresh]
        if self._cipher is None:
            return json.dumps([session.language, *values], ensure_ascii=False, separators=_TIGHT)
        text = json.dumps(values, ensure_ascii=False, separators=_TIGHT)
        sealed = self._cipher.seal_bytes(zlib.compress(text.encode(), 6))
        return f"{_SEALED}{session.language}:{sealed}"

    def decode(
        self, chat_id: int, status: str, revision: str, data: str, *, remember: bool = False
    ) -> StoredSession:
        """A stored session; `remember`: one opened from sealed text is kept for the next
        command of the chat (not for timer cycles, which read every chat in turn)."""
        key = (status, data)
        opened = self._opened.get(key) if remember else None
        if opened is not None:
            return StoredSession(opened, revision)
        stored = self._decode(chat_id, status, revision, data)
        if remember and data.startswith(_SEALED) and not isinstance(stored.session, LostSession):
            self._opened[key] = stored.session
            if len(self._opened) > self._remember:
                self._opened.popitem(last=False)
        return stored

    def _decode(self, chat_id: int, status: str, revision: str, data: str) -> StoredSession:
        try:
            if data.startswith(_SEALED):
                language, _, sealed = data[len(_SEALED) :].partition(":")
                try:
                    values = [language, *json.loads(self._open(sealed, compressed=True))]
                except TokenCipherError:
                    # No configured key opens it (docs/state-machine.md#lost-sessions).
                    return StoredSession(LostSession(Status(status), language or "ru"), revision)
            else:
                values = json.loads(data)
            session: Session
            if status == Status.AUTHORIZED.value:
                language, access, refresh = values
                session = Authorized(access, refresh, language)
            elif status == Status.ANONYMOUS.value:
                language, token, login_type, text, url, code = values
                prompt = LoginPrompt(text=text, url=url or None, code=code or None)
                session = Anonymous(token, login_type, prompt, language)
            else:
                raise CorruptRecord(f"session of chat {chat_id} has unknown status {status!r}")
        except (ValueError, TypeError, zlib.error):
            # Not the values themselves: they are tokens and must not reach a log.
            raise CorruptRecord(f"session of chat {chat_id} is malformed") from None
        return StoredSession(session=session, revision=revision)

    def encode_record(self, replies: Sequence[Reply], expires_minute: int) -> str | bytes:
        """An idempotency record: the answer and the minute it may be dropped after; sealed as
        bytes (`_ANSWER_V1`) with a cipher and `binary_answers`, else "<minute>:<answer>"."""
        cipher = self._answer_cipher
        if cipher is None:
            return f"{expires_minute}:{self.encode_answer(replies)}"
        header = _ANSWER_HEADER.pack(_ANSWER_V1, expires_minute)
        deflate = self._deflate.copy()
        packed = deflate.compress(self._answer_json(replies).encode()) + deflate.flush()
        return header + cipher.seal_raw(packed, bound=header)

    def decode_record(self, record: object) -> tuple[Reply, ...]:
        """The replies of a record in any of its formats; `TokenCipherError` when no
        configured key opens it, or it was changed."""
        if isinstance(record, bytes) and record[:1] == bytes((_ANSWER_V1,)):
            if self._cipher is None:
                raise TokenCipherError("a stored value is sealed, and no keys are configured")
            header, sealed = record[: _ANSWER_HEADER.size], record[_ANSWER_HEADER.size :]
            packed = self._cipher.open_raw(sealed, bound=header)
            inflate = zlib.decompressobj(_DEFLATE_WBITS, zdict=ANSWER_DICTIONARY_V1)
            try:
                payload = (inflate.decompress(packed) + inflate.flush()).decode()
            except (zlib.error, UnicodeDecodeError):
                raise CorruptRecord("malformed answer record") from None
            return self.decode_answer(payload)
        return self.decode_answer(_text(record).partition(":")[2])

    def encode_answer(self, replies: Sequence[Reply]) -> str:
        """An answer, compactly: the chat is the key's, a reply without buttons is its text
        alone, a button is [text, url] or [text, null, command]; sealed like the session, since
        an answer may show personal data (docs/contract.md#secrets)."""
        text = self._answer_json(replies)
        if self._cipher is None:
            return text
        return _SEALED + self._cipher.seal_bytes(text.encode())

    @staticmethod
    def _answer_json(replies: Sequence[Reply]) -> str:
        encoded: list[object] = []
        for reply in replies:
            if not reply.buttons:
                encoded.append(reply.text)
                continue
            rows = [
                [[b.text, b.url] if b.url is not None else [b.text, None, b.command] for b in row]
                for row in reply.buttons
            ]
            encoded.append([reply.text, rows])
        return json.dumps(encoded, ensure_ascii=False, separators=_TIGHT)

    def decode_answer(self, payload: str) -> tuple[Reply, ...]:
        """The replies of an answer; `TokenCipherError` when no configured key opens it."""
        if payload.startswith(_SEALED):
            payload = self._open(payload[len(_SEALED) :], compressed=False)
        try:
            replies: list[Reply] = []
            for item in json.loads(payload):
                if isinstance(item, str):
                    replies.append(Reply(item))
                    continue
                text, rows = item
                keyboard = tuple(
                    tuple(
                        Button(b[0], url=b[1]) if b[1] is not None else Button(b[0], command=b[2])
                        for b in row
                    )
                    for row in rows
                )
                replies.append(Reply(text, keyboard))
        except (ValueError, TypeError, IndexError):
            raise CorruptRecord("malformed answer record") from None
        return tuple(replies)

    def _open(self, sealed: str, *, compressed: bool) -> str:
        if self._cipher is None:
            raise TokenCipherError("a stored value is sealed, and no keys are configured")
        data = self._cipher.open_bytes(sealed)
        return (zlib.decompress(data) if compressed else data).decode()


def _encode_outbox_message(message: OutboxMessage) -> str:
    return json.dumps(
        {
            "id": message.id,
            "chat_id": message.chat_id,
            "kind": message.kind.value,
            "text": message.reply.text,
            "buttons": [[_encode_button(b) for b in row] for row in message.reply.buttons],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _encode_button(button: Button) -> dict[str, str]:
    if button.url is not None:
        return {"text": button.text, "url": button.url}
    return {"text": button.text, "command": button.command or ""}


def _decode_button(data: Mapping[str, Any]) -> Button:
    text, url, command = data["text"], data.get("url"), data.get("command")
    optional = (url, command)
    if not isinstance(text, str) or not all(v is None or isinstance(v, str) for v in optional):
        raise TypeError("button fields must be strings")
    return Button(text=text, url=url, command=command)


def _legacy_kind(message_id: str) -> OutboxKind:
    # Entries written before messages carried their kind had it as the id's prefix ("l:" for a
    # login message, "n:" for a notification); read so they are still delivered after an upgrade.
    return OutboxKind.LOGIN if message_id.startswith("l:") else OutboxKind.NOTIFICATION


def _decode_outbox_message(data: Any) -> OutboxMessage:
    try:
        buttons = tuple(tuple(map(_decode_button, row)) for row in data.get("buttons", ()))
        message_id, chat_id, text = data["id"], data["chat_id"], data["text"]
        kind = data.get("kind")
        kind = _legacy_kind(message_id) if kind is None else OutboxKind(kind)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise CorruptRecord(f"malformed outbox message: {error!r}") from None
    if not (isinstance(message_id, str) and type(chat_id) is int and isinstance(text, str)):
        raise CorruptRecord(f"malformed outbox message {message_id!r}")
    return OutboxMessage(
        id=message_id, chat_id=chat_id, kind=kind, reply=Reply(text=text, buttons=buttons)
    )


def decode_outbox_entry(value: str) -> tuple[int, OutboxMessage]:
    """An outbox hash value: `[seq, message JSON]`."""
    try:
        seq, data = json.loads(value)
    except (TypeError, ValueError) as error:
        raise CorruptRecord(f"malformed outbox entry: {error}") from None
    if type(seq) is not int:
        raise CorruptRecord("outbox entry without a sequence number")
    return seq, _decode_outbox_message(data)


def _outbox_args(messages: Iterable[OutboxMessage]) -> list[str | int]:
    return [item for m in messages for item in (m.id, _encode_outbox_message(m))]


if TYPE_CHECKING:
    _implements_port: type[SessionStore] = RedisSessionStore
    _implements_feed_store: type[FeedStore] = RedisSessionStore
