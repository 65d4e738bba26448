"""Moves data of the layout before buckets (one key per chat tagged `{42}`, global indexes and
outbox) into the bucket layout of `redis_store`, once, at Bot Logic's start (issue 10).

Upgrade by stopping the old replicas, then starting the new ones: the first to start moves
sessions (with their TTL and revision), undelivered outbox messages (in their order) and the
ids of delivered ones; the others find nothing left. Each session moves with a compare-and-set
that never overwrites a session of the new layout, so two replicas moving at once do no harm.
Idempotency records of answered updates are left to expire (a day): the client retries only
updates it has no answer for. The old layout never ran on a Cluster (its writes spanned slots),
so there is nothing to move there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from tggate.adapters.redis_store import (
    CorruptRecord,
    RedisClient,
    RedisSessionStore,
    decode_outbox_entry,
)
from tggate.adapters.token_cipher import TokenCipher, TokenCipherError, open_session_fields
from tggate.core.ports import OutboxMessage, SessionChange, SessionWrite, outbox_chat_id
from tggate.core.session import Anonymous, Authorized, LoginPrompt, Session, Status

__all__ = ["LegacyMoved", "move_legacy_layout"]

log = logging.getLogger("tggate.adapters.redis")

_BATCH = 500


@dataclass(frozen=True, slots=True)
class LegacyMoved:
    sessions: int = 0
    messages: int = 0
    delivered: int = 0


async def move_legacy_layout(
    redis: RedisClient, store: RedisSessionStore, *, cipher: TokenCipher | None
) -> LegacyMoved:
    """Move what the old layout holds under the store's prefix; what was moved."""
    if isinstance(redis, RedisCluster):
        return LegacyMoved()
    prefix = store.keys.prefix
    sessions = 0
    for status in Status:
        sessions += await _move_sessions(redis, store, f"{prefix}:index:{status.value}", cipher)
    messages = await _move_outbox(redis, store, prefix)
    delivered = await _move_delivered(redis, store, prefix)
    moved = LegacyMoved(sessions, messages, delivered)
    if moved != LegacyMoved():
        log.info(
            "moved the layout before buckets: %s sessions, %s outbox messages, %s delivered ids",
            moved.sessions,
            moved.messages,
            moved.delivered,
        )
    return moved


async def _move_sessions(
    redis: RedisClient, store: RedisSessionStore, index: str, cipher: TokenCipher | None
) -> int:
    moved = 0
    while chats := [int(c) for c in await redis.srandmember(index, _BATCH) or ()]:
        keys = [f"{store.keys.prefix}:{{{chat}}}:session" for chat in chats]
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
            pipe.pttl(key)
        found = await pipe.execute()
        writes: list[SessionWrite] = []
        for i, chat in enumerate(chats):
            fields = {_text(k): _text(v) for k, v in found[2 * i].items()}
            ttl_ms = int(found[2 * i + 1])
            session = _legacy_session(chat, fields, cipher)
            if session is None or ttl_ms == -2:  # gone, or expired meanwhile
                continue
            ttl_s = None if ttl_ms < 0 else max(1, -(-ttl_ms // 1000))
            writes.append(SessionWrite(chat, SessionChange(session, None, ttl_s)))
        written = await store.write_sessions(writes)
        moved += sum(1 for revision in written if revision)
        pipe = redis.pipeline(transaction=False)
        for chat, key in zip(chats, keys, strict=True):
            pipe.delete(key)
            pipe.srem(index, chat)
        await pipe.execute()
    return moved


def _legacy_session(
    chat: int, fields: Mapping[str, str], cipher: TokenCipher | None
) -> Session | None:
    if not fields:
        return None
    try:
        fields = open_session_fields(cipher, fields)
        language = fields.get("language") or "ru"
        if fields["status"] == Status.AUTHORIZED.value:
            return Authorized(fields["access_token"], fields["refresh_token"], language)
        prompt = LoginPrompt(
            fields["prompt_text"],
            fields.get("prompt_url") or None,
            fields.get("prompt_code") or None,
        )
        return Anonymous(fields["login_token"], fields["login_type"], prompt, language)
    except (KeyError, TokenCipherError) as error:
        log.warning("session of chat %s not moved: %s", chat, type(error).__name__)
        return None


async def _move_outbox(redis: RedisClient, store: RedisSessionStore, prefix: str) -> int:
    outbox = f"{prefix}:outbox"
    entries = await redis.hgetall(outbox)
    if not entries:
        return 0
    messages: list[tuple[int, OutboxMessage]] = []
    for value in entries.values():
        try:
            messages.append(decode_outbox_entry(_text(value)))
        except CorruptRecord as error:
            log.warning("outbox entry not moved: %s", error)
    messages.sort(key=lambda entry: entry[0])
    await store.add_outbox([message for _, message in messages])
    await redis.delete(outbox)
    await redis.delete(f"{prefix}:outbox:seq")
    return len(messages)


async def _move_delivered(redis: RedisClient, store: RedisSessionStore, prefix: str) -> int:
    moved = 0
    async for key in redis.scan_iter(match=f"{prefix}:delivered:*", count=_BATCH):
        old = _text(key)
        message_id = old.removeprefix(f"{prefix}:delivered:")
        chat = outbox_chat_id(message_id)
        ttl_s = await redis.ttl(old)
        if chat is not None and ttl_s > 0:
            new = store.keys.delivered(store.keys.bucket(chat), message_id)
            await redis.set(new, "1", ex=ttl_s, nx=True)
            moved += 1
        await redis.delete(old)
    return moved


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
