"""Tokens at rest: encrypted in Redis when TGGATE_SESSION_KEYS is set (docs/contract.md#secrets)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tggate.adapters.redis_store import RedisSessionStore
from tggate.adapters.token_cipher import TokenCipher, TokenCipherError
from tggate.core.session import (
    Anonymous,
    Authorized,
    LoginPrompt,
    LostSession,
    Status,
    StoredSession,
)
from tggate_sandbox.reference.auth.tokens import TokenCodec

ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


async def test_tokens_are_unreadable_in_redis_and_read_back(redis_client: Redis) -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    store = RedisSessionStore(redis_client, cipher=cipher)
    await store.replace(1, Authorized(ACCESS, "refresh-secret"), expect=None)
    raw = await redis_client.hgetall(store.keys.session(1))
    assert ACCESS.encode() not in b"".join(raw.values())
    assert b"refresh-secret" not in b"".join(raw.values())
    loaded = await store.load(1)
    assert loaded is not None and loaded.session == Authorized(ACCESS, "refresh-secret")
    await store.replace(2, Anonymous("login-secret", "code", LoginPrompt("x")), expect=None)
    assert b"login-secret" not in b"".join(
        (await redis_client.hgetall(store.keys.session(2))).values()
    )


async def test_a_sealed_session_no_key_opens_is_read_as_lost(redis_client: Redis) -> None:
    """Not garbage and not an error: the chat is told to log in again, in its language
    (docs/state-machine.md#lost-sessions)."""
    cipher = TokenCipher([TokenCipher.generate_key()])
    revision = await RedisSessionStore(redis_client, cipher=cipher).replace(
        1, Authorized("a", "r", "en"), expect=None
    )
    lost = StoredSession(LostSession(Status.AUTHORIZED, "en"), revision or "")
    assert await RedisSessionStore(redis_client).load(1) == lost
    other = TokenCipher([TokenCipher.generate_key()])
    assert await RedisSessionStore(redis_client, cipher=other).load(1) == lost


async def test_keys_rotate_and_plaintext_from_before_still_reads(redis_client: Redis) -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    await RedisSessionStore(redis_client).replace(1, Authorized("a", "r"), expect=None)
    await RedisSessionStore(redis_client, cipher=TokenCipher([old])).replace(
        2, Authorized("a2", "r2"), expect=None
    )
    rotated = RedisSessionStore(redis_client, cipher=TokenCipher([new, old]))
    assert (await rotated.load(1)).session == Authorized("a", "r")  # type: ignore[union-attr]
    assert (await rotated.load(2)).session == Authorized("a2", "r2")  # type: ignore[union-attr]


def test_a_malformed_key_is_refused_with_a_message() -> None:
    with pytest.raises(TokenCipherError, match="not a Fernet key"):
        TokenCipher(["short"])


async def test_a_sealed_authorized_session_fits_in_a_kib(redis_client: Redis) -> None:
    """Issue 11: Redis holds at most 1 KiB per session (bench/README.md measures 724 bytes,
    its index entry included). A real JWT pair of the reference module, sealed as deployed;
    the embedded server keeps such hashes compact (tests/support/redis_servers.py)."""
    codec = TokenCodec("a-jwt-secret-for-sizes-0123456789abcdef")
    access, refresh = (
        codec.encode(codec.mint(sub="alice", name="Alice", typ=typ, now=1.8e9, ttl_s=86_400))
        for typ in ("access", "refresh")
    )
    store = RedisSessionStore(redis_client, cipher=TokenCipher([TokenCipher.generate_key()]))
    await store.replace(1, Authorized(access, refresh, "en"), expect=None)
    used = await redis_client.memory_usage(store.keys.session(1))
    assert used is not None and used <= 1024, used
