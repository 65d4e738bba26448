"""Tokens at rest: encrypted in Redis when TGGATE_SESSION_KEYS is set (docs/contract.md#secrets)."""

from __future__ import annotations

import hashlib
import json

import pytest
from redis.asyncio import Redis

from tggate.adapters.answer_dictionary import ANSWER_DICTIONARY_V1
from tggate.adapters.redis_store import RedisSessionStore, SessionCodec
from tggate.adapters.token_cipher import TokenCipher, TokenCipherError
from tggate.core.machine import login_offer
from tggate.core.ports import UpdateAnswered, UpdateClaimed
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
from tggate_sandbox.reference.auth.tokens import TokenCodec

ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
# A /me answer, as bench/redis_memory.py measures it.
ME = (Reply("👤 Алиса Иванова\nLogin: alice\nRole: student"),)
OFFER = (
    login_offer("en"),
    Reply("Open it:", ((Button("Open the login page", url="https://auth.test/l/x"),),)),
)


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


async def answer(
    store: RedisSessionStore, chat_id: int, update_id: int, replies: tuple[Reply, ...]
) -> None:
    assert isinstance(
        await store.begin_update(chat_id, update_id, owner="o", ttl_ms=60_000), UpdateClaimed
    )
    await store.finish_update(chat_id, update_id, replies, owner="o", ttl_s=86_400)


async def test_a_kept_answer_is_unreadable_in_redis_and_read_back(redis_client: Redis) -> None:
    store = RedisSessionStore(redis_client, cipher=TokenCipher([TokenCipher.generate_key()]))
    await answer(store, 1, 10, ME)
    await answer(store, 1, 11, OFFER)
    raw = b"".join((await redis_client.hgetall(store.keys.updates(1))).values())
    assert "Алиса".encode() not in raw and b"alice" not in raw and b"auth.test" not in raw
    assert await store.begin_update(1, 10, owner="x", ttl_ms=1000) == UpdateAnswered(ME)
    assert await store.begin_update(1, 11, owner="x", ttl_ms=1000) == UpdateAnswered(OFFER)


async def test_kept_answers_of_the_text_formats_are_still_read(redis_client: Redis) -> None:
    """A rolling upgrade: a retried update whose answer the release before kept (for a day)
    gets that answer, not a second run of its command."""
    cipher = TokenCipher([TokenCipher.generate_key()])
    store = RedisSessionStore(redis_client, cipher=cipher)
    text = json.dumps([ME[0].text], ensure_ascii=False)
    sealed = f"s1:{cipher.seal_bytes(text.encode())}"  # as the release before sealed it
    await redis_client.hset(
        store.keys.updates(1), mapping={"10": f"29000000:{sealed}", "11": f"29000000:{text}"}
    )
    assert await store.begin_update(1, 10, owner="o", ttl_ms=1000) == UpdateAnswered(ME)
    assert await store.begin_update(1, 11, owner="o", ttl_ms=1000) == UpdateAnswered(ME)


async def test_a_kept_answer_opens_after_a_key_rotation(redis_client: Redis) -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    await answer(RedisSessionStore(redis_client, cipher=TokenCipher([old])), 1, 10, ME)
    rotated = RedisSessionStore(redis_client, cipher=TokenCipher([new, old]))
    assert await rotated.begin_update(1, 10, owner="o", ttl_ms=1000) == UpdateAnswered(ME)
    only_new = RedisSessionStore(redis_client, cipher=TokenCipher([new]))
    # No key opens it: the answer is lost, and the update handled anew.
    assert isinstance(await only_new.begin_update(1, 10, owner="o", ttl_ms=1000), UpdateClaimed)


# Positions in a record: the format byte and expiry minute (0-4, bound to the seal), the
# nonce (5-16), the ciphertext, the tag (the last 16).
@pytest.mark.parametrize(
    "position", [2, 4, 5, 20, -1], ids=["minute", "minute-low", "nonce", "ciphertext", "tag"]
)
async def test_a_changed_sealed_answer_is_not_accepted(redis_client: Redis, position: int) -> None:
    """Whoever can write to Redis cannot make the bot repeat an answer of their own; it is
    dropped as unreadable and the update handled anew (docs/state-machine.md)."""
    store = RedisSessionStore(redis_client, cipher=TokenCipher([TokenCipher.generate_key()]))
    await answer(store, 1, 10, ME)
    key = store.keys.updates(1)
    record = bytearray(await redis_client.hget(key, "10") or b"")
    record[position] ^= 0x01
    await redis_client.hset(key, "10", bytes(record))
    assert isinstance(await store.begin_update(1, 10, owner="o", ttl_ms=1000), UpdateClaimed)
    assert await redis_client.hget(key, "10") is None


@pytest.mark.parametrize("replies", [ME, OFFER], ids=["me", "offer"])
async def test_a_sealed_answer_takes_at_most_128_bytes(
    redis_client: Redis, replies: tuple[Reply, ...]
) -> None:
    """Issue 11: the idempotency record of a command takes at most 128 bytes of Redis, sealed
    as deployed (bench/README.md, redis_memory: 10 commands a chat, whose answers share one
    hash; here its MEMORY USAGE, the key's own cost included, over its 10 records: 86 bytes
    for the /me answer, 93 for the offer)."""
    store = RedisSessionStore(redis_client, cipher=TokenCipher([TokenCipher.generate_key()]))
    for update_id in range(7_000_000, 7_000_010):
        await answer(store, 123_456_789, update_id, replies)
    used = await redis_client.memory_usage(store.keys.updates(123_456_789))
    assert used is not None and used / 10 <= 128, used / 10


def test_the_answer_dictionary_is_frozen() -> None:
    """Records deflated against it live a day: a new dictionary is a new format byte
    (tggate.adapters.answer_dictionary), never an edit of this one. It fits, whole, in the
    4 KiB deflate window less zlib's 262 bytes of lookahead."""
    assert hashlib.sha256(ANSWER_DICTIONARY_V1).hexdigest() == (
        "8c9ae0ae3f489a4f5c3eba4bd2a01edbaa8c7fdb27feb8473d8ba96fa3822499"
    )
    assert len(ANSWER_DICTIONARY_V1) <= 4096 - 262


class CountingCipher(TokenCipher):
    """A real cipher that counts the sealed values it opens."""

    opened = 0

    def open_bytes(self, value: str) -> bytes:
        self.opened += 1
        return super().open_bytes(value)


async def _claimed(store: RedisSessionStore, update_id: int) -> Session | LostSession | None:
    claim = await store.begin_update(1, update_id, owner=f"o{update_id}", ttl_ms=10_000)
    assert isinstance(claim, UpdateClaimed)
    return claim.stored.session if claim.stored is not None else None


async def test_a_command_opens_a_chats_session_once_and_reads_every_change(
    redis_client: Redis,
) -> None:
    """Issue 11: a session opened for a command is kept, by its sealed text, for the chat's next
    command; a session written since (a refresh here or on another replica) is read anew."""
    cipher = CountingCipher([TokenCipher.generate_key()])
    store = RedisSessionStore(redis_client, cipher=cipher)
    other_replica = RedisSessionStore(redis_client, cipher=cipher)
    revision = await store.replace(1, Authorized("access-1", "refresh-1"), expect=None)
    assert await _claimed(store, 10) == Authorized("access-1", "refresh-1")
    opened = cipher.opened
    assert await _claimed(store, 11) == Authorized("access-1", "refresh-1")
    assert cipher.opened == opened  # kept, not opened again
    revision = await other_replica.replace(1, Authorized("access-2", "refresh-2"), expect=revision)
    assert await _claimed(store, 12) == Authorized("access-2", "refresh-2")
    await store.replace(1, Authorized("access-3", "refresh-3"), expect=revision)
    assert await _claimed(store, 13) == Authorized("access-3", "refresh-3")


def test_the_codec_keeps_at_most_its_bound_of_opened_sessions() -> None:
    cipher = CountingCipher([TokenCipher.generate_key()])
    codec = SessionCodec(cipher, remember=2)
    sealed = [codec.encode(Authorized(f"access-{n}", f"refresh-{n}")) for n in range(3)]
    for data in sealed:
        codec.decode(1, Status.AUTHORIZED.value, "r", data, remember=True)
    assert cipher.opened == 3
    codec.decode(1, Status.AUTHORIZED.value, "r", sealed[2], remember=True)  # kept
    assert cipher.opened == 3
    first = codec.decode(1, Status.AUTHORIZED.value, "r", sealed[0], remember=True)
    assert first.session == Authorized("access-0", "refresh-0")
    assert cipher.opened == 4  # the oldest was let go, so opened again
    codec.decode(1, Status.AUTHORIZED.value, "r", sealed[2])  # a timer cycle's read: not kept
    assert cipher.opened == 5
