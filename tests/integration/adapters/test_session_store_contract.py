"""One contract for every SessionStore (STYLE §7): the in-memory store and the Redis store.

Time-based cases move a fake clock for the memory store and sleep for Redis, so the Redis run
takes about a second more.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from tests.support.clock import FakeClock

from tggate.adapters.memory_store import MemorySessionStore
from tggate.adapters.redis_store import RedisSessionStore
from tggate.core.ports import OutboxKind, OutboxMessage, SessionStore
from tggate.core.replies import Button, Reply
from tggate.core.session import Anonymous, Authorized, LoginPrompt, Session, Status

ANON = Anonymous(
    login_token="lt-1",
    login_type="github",
    prompt=LoginPrompt(text="Open the link", url="https://example.test/login", code=None),
)
ANON_CODE = Anonymous(
    login_token="lt-2", login_type="code", prompt=LoginPrompt(text="Your code", code="123-456")
)
AUTH = Authorized(access_token="access-1", refresh_token="refresh-1")
AUTH_2 = Authorized(access_token="access-2", refresh_token="refresh-2")


def message(
    message_id: str,
    chat_id: int = 42,
    text: str = "hi",
    kind: OutboxKind = OutboxKind.NOTIFICATION,
) -> OutboxMessage:
    buttons = ((Button("GitHub", command="/login github"), Button("Код", url="u")),)
    return OutboxMessage(message_id, chat_id, kind, Reply(text, buttons))


@dataclass
class Backend:
    store: SessionStore
    # Let `seconds` pass for the store's TTLs.
    advance: Callable[[float], Awaitable[None]]


def memory_backend() -> Backend:
    clock = FakeClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return Backend(MemorySessionStore(clock=clock), advance)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return memory_backend()
    client: Redis = request.getfixturevalue("redis_client")
    return Backend(RedisSessionStore(client), asyncio.sleep)


@pytest.fixture
def store(backend: Backend) -> SessionStore:
    return backend.store


async def all_chats(
    store: SessionStore, status: Status, shard: int = 0, shards: int = 1
) -> set[int]:
    found = [chat async for chat in store.chats(status, shard=shard, shards=shards)]
    assert len(found) == len(set(found)), "a chat was listed twice"
    return set(found)


class TestSessionStoreContract:
    # -- sessions: compare-and-set

    async def test_unknown_chat_loads_none(self, store: SessionStore) -> None:
        assert await store.load(42) is None

    @pytest.mark.parametrize("session", [ANON, ANON_CODE, AUTH], ids=["url", "code", "auth"])
    async def test_create_then_load(self, store: SessionStore, session: Session) -> None:
        revision = await store.replace(42, session, expect=None)

        assert revision
        stored = await store.load(42)
        assert stored is not None
        assert stored.session == session
        assert stored.revision == revision

    async def test_create_fails_when_a_session_exists(self, store: SessionStore) -> None:
        first = await store.replace(42, ANON, expect=None)

        assert await store.replace(42, ANON_CODE, expect=None) is None
        assert await store.replace(42, ANON_CODE, expect="") is None
        stored = await store.load(42)
        assert stored is not None
        assert (stored.session, stored.revision) == (ANON, first)

    async def test_stale_revision_conflicts(self, store: SessionStore) -> None:
        first = await store.replace(42, ANON, expect=None)
        second = await store.replace(42, AUTH, expect=first)
        assert second and second != first

        assert await store.replace(42, None, expect=first) is None
        assert await store.replace(42, AUTH_2, expect="no-such-revision") is None
        stored = await store.load(42)
        assert stored is not None
        assert (stored.session, stored.revision) == (AUTH, second)

    async def test_aba_stale_write_after_delete_and_recreate_fails(
        self, store: SessionStore
    ) -> None:
        # The same values written again get a new revision: a writer holding the first one loses.
        first = await store.replace(42, AUTH, expect=None)
        assert await store.replace(42, None, expect=first) == ""
        again = await store.replace(42, AUTH, expect=None)

        assert again and again != first
        assert await store.replace(42, AUTH_2, expect=first) is None
        assert await store.replace(42, None, expect=first) is None
        stored = await store.load(42)
        assert stored is not None
        assert stored.revision == again

    async def test_delete(self, store: SessionStore) -> None:
        revision = await store.replace(42, AUTH, expect=None)

        assert await store.replace(42, None, expect=revision) == ""
        assert await store.load(42) is None
        # Deleting an Unknown chat that must be Unknown is a no-op that succeeds.
        assert await store.replace(42, None, expect=None) == ""
        assert await store.replace(42, None, expect=revision) is None

    async def test_indexes_follow_the_status(self, store: SessionStore) -> None:
        anonymous = await store.replace(1, ANON, expect=None)
        await store.replace(2, AUTH, expect=None)
        assert await all_chats(store, Status.ANONYMOUS) == {1}
        assert await all_chats(store, Status.AUTHORIZED) == {2}

        authorized = await store.replace(1, AUTH, expect=anonymous)  # A5
        assert await all_chats(store, Status.ANONYMOUS) == set()
        assert await all_chats(store, Status.AUTHORIZED) == {1, 2}

        await store.replace(1, None, expect=authorized)  # Z2
        assert await all_chats(store, Status.ANONYMOUS) == set()
        assert await all_chats(store, Status.AUTHORIZED) == {2}

    async def test_chats_are_sharded_by_chat_id(self, store: SessionStore) -> None:
        chats = {*range(1, 25), -1001234567890, 10**15}
        for chat in chats:
            await store.replace(chat, ANON, expect=None)

        shards = [await all_chats(store, Status.ANONYMOUS, shard, 3) for shard in range(3)]

        assert set().union(*shards) == chats
        assert sum(map(len, shards)) == len(chats)
        for shard, members in enumerate(shards):
            assert all(chat % 3 == shard for chat in members)
        with pytest.raises(ValueError):
            await all_chats(store, Status.ANONYMOUS, 3, 3)

    async def test_many_chats_are_listed_once(self, store: SessionStore) -> None:
        # More than one SSCAN page.
        for chat in range(1, 1201):
            await store.replace(chat, AUTH, expect=None)

        assert await all_chats(store, Status.AUTHORIZED) == set(range(1, 1201))

    async def test_outbox_is_added_with_the_session_change_only(self, store: SessionStore) -> None:
        revision = await store.replace(42, ANON, expect=None, outbox=[message("m1")])
        assert await store.replace(42, None, expect="stale", outbox=[message("m2")]) is None
        await store.replace(42, None, expect=revision, outbox=[message("m3")])  # A4 "login failed"

        assert await store.pending_outbox() == [message("m1"), message("m3")]

    # -- TTLs

    async def test_ttls_expire(self, backend: Backend) -> None:
        store = backend.store
        await store.replace(1, ANON, expect=None, ttl_s=1)
        logged_in = await store.replace(2, ANON, expect=None, ttl_s=1)
        await store.replace(2, AUTH, expect=logged_in)  # Authorized sessions do not expire
        await store.replace(3, ANON_CODE, expect=None)
        assert await store.claim_update(1, 10, ttl_s=1) is True
        await store.finish_update(1, 11, '{"replies": []}', ttl_s=1)
        assert await store.acquire_lock(1, "refresh", owner="a", ttl_ms=1000)
        assert await store.lease("poller", instance="a", ttl_ms=1000)

        await backend.advance(1.1)

        assert await store.load(1) is None
        stored = await store.load(2)
        assert stored is not None
        assert stored.session == AUTH
        assert await all_chats(store, Status.ANONYMOUS) == {3}
        assert await all_chats(store, Status.AUTHORIZED) == {2}
        assert await store.replace(1, ANON, expect=None)  # Unknown again
        assert await all_chats(store, Status.ANONYMOUS) == {1, 3}
        assert await store.claim_update(1, 10, ttl_s=1) is True
        assert await store.claim_update(1, 11, ttl_s=1) is True
        assert await store.acquire_lock(1, "refresh", owner="b", ttl_ms=1000)
        assert await store.lease("poller", instance="b", ttl_ms=1000)

    async def test_ttl_must_be_positive(self, store: SessionStore) -> None:
        with pytest.raises(ValueError):
            await store.replace(42, ANON, expect=None, ttl_s=0)
        assert await store.load(42) is None

    # -- idempotency of updates

    async def test_claim_finish_release_update(self, store: SessionStore) -> None:
        assert await store.claim_update(42, 10, ttl_s=60) is True
        assert await store.claim_update(42, 10, ttl_s=60) is False  # still being processed
        assert await store.claim_update(43, 10, ttl_s=60) is True  # update ids are per chat

        await store.finish_update(42, 10, '{"replies": [1]}', ttl_s=60)
        await store.release_update(42, 10)  # a finished answer is kept

        assert await store.claim_update(42, 10, ttl_s=60) == '{"replies": [1]}'

    async def test_released_claim_can_be_claimed_again(self, store: SessionStore) -> None:
        assert await store.claim_update(42, 11, ttl_s=60) is True
        await store.release_update(42, 11)

        assert await store.claim_update(42, 11, ttl_s=60) is True

    # -- locks

    async def test_lock_is_released_by_its_owner_only(self, store: SessionStore) -> None:
        assert await store.acquire_lock(42, "refresh", owner="a", ttl_ms=60_000) is True
        assert await store.acquire_lock(42, "refresh", owner="b", ttl_ms=60_000) is False
        assert await store.acquire_lock(43, "refresh", owner="b", ttl_ms=60_000) is True
        assert await store.acquire_lock(42, "other", owner="b", ttl_ms=60_000) is True

        await store.release_lock(42, "refresh", owner="b")
        assert await store.acquire_lock(42, "refresh", owner="b", ttl_ms=60_000) is False

        await store.release_lock(42, "refresh", owner="a")
        assert await store.acquire_lock(42, "refresh", owner="b", ttl_ms=60_000) is True

    # -- the outbox

    async def test_outbox_add_is_idempotent_and_ordered(self, store: SessionStore) -> None:
        await store.add_outbox([message("m1"), message("m2", chat_id=7)])
        await store.add_outbox([message("m1", text="changed"), message("m3")])
        await store.add_outbox([])

        assert await store.pending_outbox() == [
            message("m1"),
            message("m2", chat_id=7),
            message("m3"),
        ]

    async def test_acked_messages_are_not_added_again(self, store: SessionStore) -> None:
        await store.add_outbox([message("m1"), message("m2")])

        assert await store.ack_outbox(["m1", "unknown"]) == 1
        assert await store.ack_outbox(["m1"]) == 0
        assert await store.ack_outbox([]) == 0
        await store.add_outbox([message("m1")])
        await store.replace(42, ANON, expect=None, outbox=[message("m1")])

        assert await store.pending_outbox() == [message("m2")]

    async def test_pending_outbox_by_shard(self, store: SessionStore) -> None:
        messages = [message(f"m{chat}", chat_id=chat) for chat in (-5, 1, 2, 3, 4, 5, 6)]
        await store.add_outbox(messages)

        for shard in range(2):
            assert await store.pending_outbox(shard=shard, shards=2) == [
                m for m in messages if m.chat_id % 2 == shard
            ]
        with pytest.raises(ValueError):
            await store.pending_outbox(shard=0, shards=0)

    async def test_pending_outbox_by_kind(self, store: SessionStore) -> None:
        login = message("m1", text="logged in", kind=OutboxKind.LOGIN)
        notification = message("m2", text="🔔 hi", kind=OutboxKind.NOTIFICATION)
        await store.add_outbox([login, notification])
        await store.replace(42, ANON, expect=None, outbox=[message("m3", kind=OutboxKind.LOGIN)])

        assert await store.pending_outbox(kind=OutboxKind.LOGIN) == [
            login,
            message("m3", kind=OutboxKind.LOGIN),
        ]
        assert await store.pending_outbox(kind=OutboxKind.NOTIFICATION) == [notification]
        assert len(await store.pending_outbox()) == 3

    # -- the poller lease

    async def test_lease_grant_renew_and_takeover(self, backend: Backend) -> None:
        store = backend.store
        assert await store.lease("poller", instance="a", ttl_ms=300) is True
        assert await store.lease("poller", instance="a", ttl_ms=300) is True  # renewed
        assert await store.lease("poller", instance="b", ttl_ms=300) is False
        assert await store.lease("other", instance="b", ttl_ms=300) is True

        await backend.advance(0.4)

        assert await store.lease("poller", instance="b", ttl_ms=60_000) is True
        assert await store.lease("poller", instance="a", ttl_ms=60_000) is False

    # -- concurrency and health

    async def test_one_of_many_concurrent_writers_wins(self, store: SessionStore) -> None:
        revision = await store.replace(42, ANON, expect=None)
        sessions = [Authorized(f"access-{i}", f"refresh-{i}") for i in range(50)]

        results = await asyncio.gather(*(store.replace(42, s, expect=revision) for s in sessions))

        winners = [(r, s) for r, s in zip(results, sessions, strict=True) if r is not None]
        assert len(winners) == 1
        stored = await store.load(42)
        assert stored is not None
        assert (stored.revision, stored.session) == winners[0]

    async def test_ping(self, store: SessionStore) -> None:
        assert await store.ping() is True


# ---- the same observable behaviour, for random sequences of operations

CHATS = st.sampled_from([1, 2, 3])
SESSIONS = st.sampled_from([ANON, ANON_CODE, AUTH, AUTH_2, None])
EXPECTS = st.sampled_from(["latest", "previous", "none", "bogus"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("replace"), CHATS, SESSIONS, EXPECTS),
        st.tuples(st.just("load"), CHATS),
        st.tuples(st.just("chats"), st.sampled_from(list(Status)), st.integers(0, 1)),
        st.tuples(st.just("add"), st.lists(st.sampled_from("abc"), max_size=3), CHATS),
        st.tuples(st.just("ack"), st.lists(st.sampled_from("abcd"), max_size=3)),
        st.tuples(st.just("pending"), st.sampled_from([None, *OutboxKind]), st.integers(0, 1)),
        st.tuples(st.just("lock"), CHATS, st.sampled_from("xy")),
        st.tuples(st.just("unlock"), CHATS, st.sampled_from("xy")),
        st.tuples(st.just("claim"), CHATS, st.integers(1, 2)),
        st.tuples(st.just("finish"), CHATS, st.integers(1, 2)),
        st.tuples(st.just("release"), CHATS, st.integers(1, 2)),
    ),
    max_size=25,
)


async def run(store: SessionStore, operations: list[tuple[object, ...]]) -> list[object]:
    """Apply operations; revisions are random, so they are replaced by their history position."""
    history: dict[int, list[str]] = {}
    observed: list[object] = []
    for operation in operations:
        match operation:
            case ("replace", int(chat), session, str(mode)):
                revisions = history.setdefault(chat, [])
                expect = {
                    "latest": revisions[-1] if revisions else None,
                    "previous": revisions[-2] if len(revisions) > 1 else None,
                    "none": None,
                    "bogus": "bogus",
                }[mode]
                assert session is None or isinstance(session, Anonymous | Authorized)
                revision = await store.replace(chat, session, expect=expect)
                if revision:
                    revisions.append(revision)
                observed.append(revision is not None)
            case ("load", int(chat)):
                stored = await store.load(chat)
                observed.append(stored and stored.session)
                if stored and stored.revision not in history.get(chat, []):
                    observed.append("unknown revision")
            case ("chats", Status() as status, int(shard)):
                observed.append(await all_chats(store, status, shard, 2))
            case ("add", list(ids), int(chat)):
                # Ids a and c are login messages, b a notification.
                kinds = {"b": OutboxKind.NOTIFICATION}
                await store.add_outbox(
                    [message(i, chat_id=chat, kind=kinds.get(i, OutboxKind.LOGIN)) for i in ids]
                )
            case ("ack", list(ids)):
                observed.append(await store.ack_outbox([str(i) for i in ids]))
            case ("pending", kind, int(shard)):
                assert kind is None or isinstance(kind, OutboxKind)
                observed.append(await store.pending_outbox(kind=kind, shard=shard, shards=2))
            case ("lock", int(chat), str(owner)):
                observed.append(await store.acquire_lock(chat, "l", owner=owner, ttl_ms=60_000))
            case ("unlock", int(chat), str(owner)):
                await store.release_lock(chat, "l", owner=owner)
            case ("claim", int(chat), int(update)):
                observed.append(await store.claim_update(chat, update, ttl_s=60))
            case ("finish", int(chat), int(update)):
                await store.finish_update(chat, update, f'"{chat}/{update}"', ttl_s=60)
            case ("release", int(chat), int(update)):
                await store.release_update(chat, update)
            case _:
                raise AssertionError(operation)
    return observed


@settings(
    max_examples=60,
    deadline=None,
    # The client is reused across examples; each example flushes the database first.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
async def test_memory_and_redis_stores_agree(
    redis_client: Redis, operations: list[tuple[object, ...]]
) -> None:
    await redis_client.flushdb()

    expected = await run(MemorySessionStore(clock=FakeClock()), operations)
    actual = await run(RedisSessionStore(redis_client), operations)

    assert actual == expected


# ---- Redis specifics: the key layout other tools (and operators) rely on


async def test_redis_key_layout(redis_client: Redis) -> None:
    store = RedisSessionStore(redis_client, prefix="tg")
    revision = await store.replace(42, ANON, expect=None, ttl_s=600)

    assert revision
    assert await redis_client.hgetall("tg:{42}:session") == {
        b"status": b"anonymous",
        b"rev": revision.encode(),
        b"language": b"ru",
        b"login_token": b"lt-1",
        b"login_type": b"github",
        b"prompt_text": b"Open the link",
        b"prompt_url": b"https://example.test/login",
        b"prompt_code": b"",
    }
    assert 0 < await redis_client.ttl("tg:{42}:session") <= 600
    assert await redis_client.smembers("tg:index:anonymous") == {b"42"}

    await store.replace(42, AUTH, expect=revision)

    assert await redis_client.ttl("tg:{42}:session") == -1  # no expiry once Authorized
    assert await redis_client.hgetall("tg:{42}:session") == {
        b"status": b"authorized",
        b"rev": await redis_client.hget("tg:{42}:session", "rev"),
        b"language": b"ru",
        b"access_token": b"access-1",
        b"refresh_token": b"refresh-1",
    }
    assert await redis_client.smembers("tg:index:anonymous") == set()
    assert await redis_client.smembers("tg:index:authorized") == {b"42"}


async def test_redis_index_drops_expired_sessions_when_listed(redis_client: Redis) -> None:
    store = RedisSessionStore(redis_client)
    await store.replace(1, ANON, expect=None)
    await store.replace(2, ANON, expect=None)
    await redis_client.delete(store.keys.session(1))  # as if its TTL ran out

    assert await all_chats(store, Status.ANONYMOUS) == {2}
    assert await redis_client.smembers(store.keys.index(Status.ANONYMOUS)) == {b"2"}


async def test_redis_store_works_with_decoded_responses(
    redis_client: Redis, redis_url: str
) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisSessionStore(client, prefix="decoded")
        revision = await store.replace(42, ANON, expect=None, outbox=[message("m1")])
        stored = await store.load(42)
        assert stored is not None
        assert (stored.session, stored.revision) == (ANON, revision)
        assert await all_chats(store, Status.ANONYMOUS) == {42}
        assert await store.pending_outbox() == [message("m1")]
        assert await store.claim_update(42, 1, ttl_s=60) is True
        await store.finish_update(42, 1, "{}", ttl_s=60)
        assert await store.claim_update(42, 1, ttl_s=60) == "{}"
    finally:
        await client.aclose()


async def test_redis_outbox_entries_written_before_kinds_are_still_delivered(
    redis_client: Redis,
) -> None:
    # An upgrade finds entries whose kind was their id's prefix ("l:" login, "n:" notification).
    store = RedisSessionStore(redis_client, prefix="legacy")
    old = [
        {"id": "l:42:rev1", "chat_id": 42, "text": "Logged in."},
        {"id": "n:42:n7", "chat_id": 42, "text": "🔔 hi", "buttons": []},
        {
            "id": "n:42:z8:rev2",
            "chat_id": 42,
            "text": "Log in:",
            "buttons": [
                [{"text": "GitHub", "command": "/login github"}, {"text": "Open", "url": "u"}]
            ],
        },
    ]
    for seq, entry in enumerate(old, start=1):
        value = json.dumps([seq, entry], ensure_ascii=False)
        await redis_client.hset(store.keys.outbox, entry["id"], value)

    assert await store.pending_outbox(kind=OutboxKind.LOGIN) == [
        OutboxMessage("l:42:rev1", 42, OutboxKind.LOGIN, Reply("Logged in."))
    ]
    offer = ((Button("GitHub", command="/login github"), Button("Open", url="u")),)
    assert await store.pending_outbox(kind=OutboxKind.NOTIFICATION) == [
        OutboxMessage("n:42:n7", 42, OutboxKind.NOTIFICATION, Reply("🔔 hi")),
        OutboxMessage("n:42:z8:rev2", 42, OutboxKind.NOTIFICATION, Reply("Log in:", offer)),
    ]


async def test_redis_ping_is_false_when_redis_is_unreachable() -> None:
    # Port 1 on loopback refuses connections.
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    try:
        assert await RedisSessionStore(client, ping_timeout_s=0.3).ping() is False
    finally:
        await client.aclose()
