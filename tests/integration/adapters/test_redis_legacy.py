"""The layout before buckets is moved into the bucket layout at start, nothing lost (issue 10)."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from tggate.adapters.redis_legacy import LegacyMoved, move_legacy_layout
from tggate.adapters.redis_store import RedisSessionStore
from tggate.adapters.token_cipher import TokenCipher
from tggate.core.ports import OutboxKind, OutboxMessage
from tggate.core.replies import Reply
from tggate.core.session import Anonymous, Authorized, LoginPrompt, Status


async def write_legacy(redis: Redis, cipher: TokenCipher) -> None:
    """What the store wrote before buckets (as the version before this one did)."""
    await redis.hset(
        "tggate:{42}:session",
        mapping={
            "status": "authorized",
            "rev": "rev42",
            "language": "en",
            "access_token": cipher.seal_text("access-42"),
            "refresh_token": cipher.seal_text("refresh-42"),
        },
    )
    await redis.hset(
        "tggate:{-7}:session",
        mapping={
            "status": "anonymous",
            "rev": "rev7",
            "language": "ru",
            "login_token": "login-7",  # from before encryption was switched on
            "login_type": "code",
            "prompt_text": "Enter 123-456",
            "prompt_url": "",
            "prompt_code": "123-456",
        },
    )
    await redis.pexpire("tggate:{-7}:session", 600_000)
    await redis.sadd("tggate:index:authorized", 42, 99)  # 99: its session expired long ago
    await redis.sadd("tggate:index:anonymous", -7)
    for seq, (message_id, chat, text) in enumerate(
        [("n:42:a", 42, "first"), ("l:-7:rev7", -7, "login"), ("n:42:b", 42, "second")], 1
    ):
        entry = {"id": message_id, "chat_id": chat, "kind": "notification", "text": text}
        if message_id.startswith("l:"):
            entry["kind"] = "login"
        await redis.hset("tggate:outbox", message_id, json.dumps([seq, entry]))
    await redis.set("tggate:outbox:seq", 3)
    await redis.set("tggate:delivered:n:42:old", "1", ex=3600)


async def test_the_layout_before_buckets_is_moved_once(redis_client: Redis) -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    await write_legacy(redis_client, cipher)
    store = RedisSessionStore(redis_client, buckets=16, cipher=cipher)

    moved = await move_legacy_layout(redis_client, store, cipher=cipher)

    assert moved == LegacyMoved(sessions=2, messages=3, delivered=1)
    authorized = await store.load(42)
    assert authorized is not None
    assert authorized.session == Authorized("access-42", "refresh-42", "en")
    anonymous = await store.load(-7)
    assert anonymous is not None
    assert anonymous.session == Anonymous(
        "login-7", "code", LoginPrompt("Enter 123-456", code="123-456"), "ru"
    )
    assert 0 < await redis_client.ttl(store.keys.session(-7)) <= 600
    assert await redis_client.ttl(store.keys.session(42)) == -1
    found = {c async for batch in store.sessions(Status.AUTHORIZED) for c, _ in batch}
    assert found == {42}
    pending = await store.pending_outbox()
    assert [m.id for m in pending if m.chat_id == 42] == ["n:42:a", "n:42:b"]
    assert [m.kind for m in pending if m.chat_id == -7] == [OutboxKind.LOGIN]
    # A delivered id stays delivered: the same message is not queued again.
    await store.add_outbox([OutboxMessage("n:42:old", 42, OutboxKind.NOTIFICATION, Reply("x"))])
    assert "n:42:old" not in {m.id for m in await store.pending_outbox()}
    assert await redis_client.keys("tggate:{[-0-9]*") == []  # no session key of the old form
    assert await redis_client.exists("tggate:outbox", "tggate:index:authorized") == 0

    assert await move_legacy_layout(redis_client, store, cipher=cipher) == LegacyMoved()


async def test_a_session_of_the_new_layout_is_never_overwritten(redis_client: Redis) -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    await write_legacy(redis_client, cipher)
    store = RedisSessionStore(redis_client, buckets=16, cipher=cipher)
    await store.replace(42, Authorized("newer", "newer-refresh"), expect=None)

    await move_legacy_layout(redis_client, store, cipher=cipher)

    stored = await store.load(42)
    assert stored is not None and stored.session == Authorized("newer", "newer-refresh")
