"""One contract for every SessionStore (STYLE §7): the in-memory store, the Redis store on one
server (also with its values sealed, as deployed with TGGATE_SESSION_KEYS), and the Redis store
on a real three-master Cluster (which refuses a script or command over two slots with
CROSSSLOT).

On one server every test also runs under MONITOR, and fails if any command, or any command a
script ran, touched keys of two hash slots: the proof, on the server, that the layout is
Cluster-safe (issue 10).

Time-based cases move a fake clock for the memory store and sleep for Redis, so the Redis runs
take about a second more.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from tests.support.clock import FakeClock
from tests.support.redis_monitor import cross_slot_commands, watch_redis

from tggate.adapters.memory_store import MemorySessionStore
from tggate.adapters.redis_store import LayoutMismatch, RedisSessionStore
from tggate.adapters.token_cipher import TokenCipher
from tggate.core.ports import (
    OutboxKind,
    OutboxMessage,
    SessionChange,
    SessionStore,
    SessionWrite,
    UpdateAnswered,
    UpdateBusy,
    UpdateClaimed,
)
from tggate.core.replies import Button, Reply
from tggate.core.session import (
    Anonymous,
    Authorized,
    LoginPrompt,
    Session,
    Status,
    StoredSession,
)

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
ANSWER = (
    Reply("Профиль: Алиса"),
    Reply("Log in:", ((Button("GitHub", command="/login github"), Button("Open", url="u")),)),
)


def message(
    name: str,
    chat_id: int = 42,
    text: str = "hi",
    kind: OutboxKind = OutboxKind.NOTIFICATION,
) -> OutboxMessage:
    buttons = ((Button("GitHub", command="/login github"), Button("Код", url="u")),)
    return OutboxMessage(f"n:{chat_id}:{name}", chat_id, kind, Reply(text, buttons))


def by_chat(messages: list[OutboxMessage]) -> dict[int, list[OutboxMessage]]:
    """Messages per chat, in order: the order the contract promises."""
    found: dict[int, list[OutboxMessage]] = {}
    for m in messages:
        found.setdefault(m.chat_id, []).append(m)
    return found


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


@pytest.fixture
async def redis_backend(redis_client: Redis, redis_url: str) -> AsyncIterator[Backend]:
    """One server, watched: no command or script may touch two slots."""
    async with watch_redis(redis_url) as watch:
        yield Backend(RedisSessionStore(redis_client, buckets=16), asyncio.sleep)
        await watch.mark()
        assert await cross_slot_commands(redis_client, watch.seen) == []


@pytest.fixture
async def sealed_backend(redis_client: Redis, redis_url: str) -> AsyncIterator[Backend]:
    """One server, watched, its sessions and kept answers sealed (binary answer records)."""
    cipher = TokenCipher([TokenCipher.generate_key()])
    async with watch_redis(redis_url) as watch:
        yield Backend(RedisSessionStore(redis_client, buckets=16, cipher=cipher), asyncio.sleep)
        await watch.mark()
        assert await cross_slot_commands(redis_client, watch.seen) == []


@pytest.fixture
def cluster_backend(cluster_client: RedisCluster) -> Backend:
    return Backend(RedisSessionStore(cluster_client, buckets=16), asyncio.sleep)


@pytest.fixture(params=["memory", "redis", "sealed", "cluster"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return memory_backend()
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


@pytest.fixture
def store(backend: Backend) -> SessionStore:
    return backend.store


async def all_sessions(
    store: SessionStore, status: Status, shard: int = 0, shards: int = 1
) -> dict[int, StoredSession]:
    found = [
        item async for batch in store.sessions(status, shard=shard, shards=shards) for item in batch
    ]
    assert len(found) == len({chat for chat, _ in found}), "a chat was listed twice"
    return dict(found)


async def all_chats(
    store: SessionStore, status: Status, shard: int = 0, shards: int = 1
) -> set[int]:
    return set(await all_sessions(store, status, shard, shards))


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

    async def test_sessions_are_read_with_their_revision(self, store: SessionStore) -> None:
        first = await store.replace(1, ANON, expect=None)
        second = await store.replace(2, AUTH, expect=None)

        assert await all_sessions(store, Status.ANONYMOUS) == {1: StoredSession(ANON, first)}
        assert await all_sessions(store, Status.AUTHORIZED) == {2: StoredSession(AUTH, second)}

    async def test_many_writes_at_once_each_on_its_own(self, store: SessionStore) -> None:
        revision = await store.replace(1, ANON, expect=None)
        await store.replace(2, ANON, expect=None)
        writes = [
            SessionWrite(1, SessionChange(AUTH, revision), [message("in", chat_id=1)]),
            SessionWrite(2, SessionChange(None, "stale"), [message("lost", chat_id=2)]),
            SessionWrite(17, SessionChange(ANON_CODE, None, ttl_s=600)),
            SessionWrite(33, SessionChange(None, None)),
        ]

        written = await store.write_sessions(writes)

        assert written[0] and written[2] and written[3] == ""
        assert written[1] is None
        assert await all_chats(store, Status.AUTHORIZED) == {1}
        assert await all_chats(store, Status.ANONYMOUS) == {2, 17}
        assert await store.pending_outbox() == [message("in", chat_id=1)]
        assert await store.write_sessions([]) == []

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
        assert isinstance(await store.begin_update(1, 10, owner="a", ttl_ms=1000), UpdateClaimed)
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
        assert isinstance(await store.begin_update(1, 10, owner="b", ttl_ms=1000), UpdateClaimed)
        assert await store.acquire_lock(1, "refresh", owner="b", ttl_ms=1000)
        assert await store.lease("poller", instance="b", ttl_ms=1000)

    async def test_ttl_must_be_positive(self, store: SessionStore) -> None:
        with pytest.raises(ValueError):
            await store.replace(42, ANON, expect=None, ttl_s=0)
        assert await store.load(42) is None

    # -- idempotency of updates

    async def test_claim_reads_the_session_and_finish_keeps_the_answer(
        self, store: SessionStore
    ) -> None:
        revision = await store.replace(42, AUTH, expect=None)

        claim = await store.begin_update(42, 10, owner="a", ttl_ms=60_000)

        assert claim == UpdateClaimed(StoredSession(AUTH, revision or ""))
        assert await store.begin_update(42, 10, owner="b", ttl_ms=60_000) == UpdateBusy()
        assert await store.begin_update(43, 10, owner="b", ttl_ms=60_000) == UpdateClaimed(None)
        assert await store.finish_update(42, 10, ANSWER, owner="a", ttl_s=60) == ""
        assert await store.begin_update(42, 10, owner="b", ttl_ms=60_000) == UpdateAnswered(ANSWER)
        # A later finish (a holder whose claim lapsed) does not replace the first answer.
        await store.finish_update(42, 10, (Reply("second"),), owner="c", ttl_s=60)
        assert await store.begin_update(42, 10, owner="b", ttl_ms=60_000) == UpdateAnswered(ANSWER)

    async def test_finish_writes_the_session_with_the_answer(self, store: SessionStore) -> None:
        revision = await store.replace(42, ANON, expect=None)
        assert await store.begin_update(42, 1, owner="a", ttl_ms=60_000) == UpdateClaimed(
            StoredSession(ANON, revision or "")
        )

        written = await store.finish_update(
            42, 1, ANSWER, owner="a", ttl_s=60, change=SessionChange(AUTH, revision)
        )

        assert written
        assert await store.load(42) == StoredSession(AUTH, written)
        assert await all_chats(store, Status.AUTHORIZED) == {42}
        assert await all_chats(store, Status.ANONYMOUS) == set()

    async def test_finish_after_a_conflict_writes_nothing_and_keeps_the_claim(
        self, store: SessionStore
    ) -> None:
        revision = await store.replace(42, ANON, expect=None)
        await store.begin_update(42, 1, owner="a", ttl_ms=60_000)
        await store.replace(42, None, expect=revision)  # a timer cycle ended the login

        written = await store.finish_update(
            42, 1, ANSWER, owner="a", ttl_s=60, change=SessionChange(AUTH, revision)
        )

        assert written is None
        assert await store.load(42) is None
        assert await store.begin_update(42, 1, owner="b", ttl_ms=60_000) == UpdateBusy()
        assert await store.finish_update(42, 1, ANSWER, owner="a", ttl_s=60) == ""
        assert await store.begin_update(42, 1, owner="b", ttl_ms=60_000) == UpdateAnswered(ANSWER)

    async def test_released_claim_can_be_claimed_again_by_its_owner_only(
        self, store: SessionStore
    ) -> None:
        assert isinstance(await store.begin_update(42, 11, owner="a", ttl_ms=60_000), UpdateClaimed)
        await store.release_update(42, 11, owner="b")
        assert await store.begin_update(42, 11, owner="b", ttl_ms=60_000) == UpdateBusy()

        await store.release_update(42, 11, owner="a")

        assert isinstance(await store.begin_update(42, 11, owner="b", ttl_ms=60_000), UpdateClaimed)

    async def test_a_renewed_claim_holds_and_a_lapsed_one_is_taken_over(
        self, backend: Backend
    ) -> None:
        store = backend.store
        await store.begin_update(42, 12, owner="a", ttl_ms=600)
        await store.begin_update(42, 13, owner="dead", ttl_ms=600)
        await backend.advance(0.4)
        assert await store.extend_update(42, 12, owner="a", ttl_ms=600) is True
        assert await store.extend_update(42, 12, owner="b", ttl_ms=600) is False

        await backend.advance(0.4)  # 0.8 s: past the first TTL, within the renewed one

        assert await store.begin_update(42, 12, owner="b", ttl_ms=600) == UpdateBusy()
        assert isinstance(await store.begin_update(42, 13, owner="b", ttl_ms=600), UpdateClaimed)
        assert await store.extend_update(42, 13, owner="dead", ttl_ms=600) is False

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

        assert by_chat(await store.pending_outbox()) == {
            42: [message("m1"), message("m3")],
            7: [message("m2", chat_id=7)],
        }

    async def test_outbox_ids_name_their_chat(self, store: SessionStore) -> None:
        wrong = OutboxMessage("n:7:x", 42, OutboxKind.NOTIFICATION, Reply("hi"))
        with pytest.raises(ValueError):
            await store.add_outbox([wrong])
        with pytest.raises(ValueError):
            await store.replace(42, ANON, expect=None, outbox=[wrong])
        assert await store.load(42) is None
        # Ids naming no chat were never handed out: acknowledging them does nothing.
        assert await store.ack_outbox(["m1", "n:x:y", "n:42"]) == 0

    async def test_acked_messages_are_not_added_again(self, store: SessionStore) -> None:
        await store.add_outbox([message("m1"), message("m2")])

        assert await store.ack_outbox([message("m1").id, "n:42:unknown"]) == 1
        assert await store.ack_outbox([message("m1").id]) == 0
        assert await store.ack_outbox([]) == 0
        await store.add_outbox([message("m1")])
        await store.replace(42, ANON, expect=None, outbox=[message("m1")])

        assert await store.pending_outbox() == [message("m2")]

    async def test_pending_outbox_by_shard(self, store: SessionStore) -> None:
        messages = [message("m", chat_id=chat) for chat in (-5, 1, 2, 3, 4, 5, 6, 10**15)]
        await store.add_outbox(messages)

        for shards in (2, 3):
            for shard in range(shards):
                assert by_chat(await store.pending_outbox(shard=shard, shards=shards)) == by_chat(
                    [m for m in messages if m.chat_id % shards == shard]
                )
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

CHATS = st.sampled_from([1, 2, 3, 18])  # 2 and 18 share a bucket of 16
SESSIONS = st.sampled_from([ANON, ANON_CODE, AUTH, AUTH_2, None])
EXPECTS = st.sampled_from(["latest", "previous", "none", "bogus"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("replace"), CHATS, SESSIONS, EXPECTS),
        st.tuples(st.just("load"), CHATS),
        st.tuples(st.just("chats"), st.sampled_from(list(Status)), st.integers(0, 1)),
        st.tuples(st.just("add"), st.lists(st.sampled_from("abc"), max_size=3), CHATS),
        st.tuples(st.just("ack"), st.lists(st.sampled_from("abcd"), max_size=3), CHATS),
        st.tuples(st.just("pending"), st.sampled_from([None, *OutboxKind]), st.integers(0, 1)),
        st.tuples(st.just("lock"), CHATS, st.sampled_from("xy")),
        st.tuples(st.just("unlock"), CHATS, st.sampled_from("xy")),
        st.tuples(st.just("claim"), CHATS, st.integers(1, 2), st.sampled_from("pq")),
        st.tuples(st.just("finish"), CHATS, st.integers(1, 2), st.sampled_from("pq"), EXPECTS),
        st.tuples(st.just("release"), CHATS, st.integers(1, 2), st.sampled_from("pq")),
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
            case ("ack", list(ids), int(chat)):
                observed.append(await store.ack_outbox([f"n:{chat}:{i}" for i in ids]))
            case ("pending", kind, int(shard)):
                assert kind is None or isinstance(kind, OutboxKind)
                pending = await store.pending_outbox(kind=kind, shard=shard, shards=2)
                observed.append(by_chat(pending))
            case ("lock", int(chat), str(owner)):
                observed.append(await store.acquire_lock(chat, "l", owner=owner, ttl_ms=60_000))
            case ("unlock", int(chat), str(owner)):
                await store.release_lock(chat, "l", owner=owner)
            case ("claim", int(chat), int(update), str(owner)):
                claim = await store.begin_update(chat, update, owner=owner, ttl_ms=60_000)
                if isinstance(claim, UpdateClaimed) and claim.stored is not None:
                    claim = UpdateClaimed(StoredSession(claim.stored.session, "-"))
                observed.append(claim)
            case ("finish", int(chat), int(update), str(owner), str(mode)):
                revisions = history.setdefault(chat, [])
                expect = revisions[-1] if mode == "latest" and revisions else None
                change = SessionChange(AUTH, expect) if mode != "none" else None
                answer = (Reply(f"{chat}/{update}"),)
                revision = await store.finish_update(
                    chat, update, answer, owner=owner, ttl_s=60, change=change
                )
                if revision:
                    revisions.append(revision)
                observed.append(revision is not None)
            case ("release", int(chat), int(update), str(owner)):
                await store.release_update(chat, update, owner=owner)
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
    actual = await run(RedisSessionStore(redis_client, buckets=16), operations)

    assert actual == expected


# ---- Redis specifics: the key layout other tools (and operators) rely on


async def test_redis_key_layout(redis_client: Redis) -> None:
    store = RedisSessionStore(redis_client, prefix="tg", buckets=16)
    revision = await store.replace(42, ANON, expect=None, ttl_s=600)

    assert revision
    assert store.keys.session(42) == "tg:{b10}:session:42"  # 42 % 16 == 10
    assert await redis_client.hgetall("tg:{b10}:session:42") == {
        b"status": b"anonymous",
        b"rev": revision.encode(),
        b"data": b'["ru","lt-1","github","Open the link","https://example.test/login",""]',
    }
    assert 0 < await redis_client.ttl("tg:{b10}:session:42") <= 600
    assert await redis_client.smembers("tg:{b10}:index:anonymous") == {b"42"}

    await store.replace(42, AUTH, expect=revision)

    assert await redis_client.ttl("tg:{b10}:session:42") == -1  # no expiry once Authorized
    assert (
        await redis_client.hget("tg:{b10}:session:42", "data") == b'["ru","access-1","refresh-1"]'
    )
    assert await redis_client.smembers("tg:{b10}:index:anonymous") == set()
    assert await redis_client.smembers("tg:{b10}:index:authorized") == {b"42"}

    await store.begin_update(42, 7, owner="o", ttl_ms=60_000)
    assert await redis_client.get("tg:{b10}:claim:42:7") == b"o"
    await store.finish_update(42, 7, ANSWER, owner="o", ttl_s=3600)
    record = await redis_client.hget("tg:{b10}:updates:42", "7")
    assert record is not None
    assert record.decode().partition(":")[2] == (
        '["Профиль: Алиса",["Log in:",[[["GitHub",null,"/login github"],["Open","u"]]]]]'
    )
    assert await redis_client.exists("tg:{b10}:claim:42:7") == 0
    assert 0 < await redis_client.ttl("tg:{b10}:updates:42") <= 3600


async def test_redis_refuses_a_database_laid_out_with_another_bucket_count(
    redis_client: Redis,
) -> None:
    await RedisSessionStore(redis_client, buckets=16).check_layout()
    await RedisSessionStore(redis_client, buckets=16).check_layout()

    with pytest.raises(LayoutMismatch, match="16 buckets"):
        await RedisSessionStore(redis_client, buckets=64).check_layout()


async def test_redis_index_drops_expired_sessions_when_listed(redis_client: Redis) -> None:
    store = RedisSessionStore(redis_client, buckets=16)
    await store.replace(1, ANON, expect=None)
    await store.replace(17, ANON, expect=None)
    await redis_client.delete(store.keys.session(1))  # as if its TTL ran out

    assert await all_chats(store, Status.ANONYMOUS) == {17}
    assert await redis_client.smembers(store.keys.index(1, Status.ANONYMOUS)) == {b"17"}


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
async def test_redis_answers_of_a_chat_are_dropped_once_expired(
    redis_client: Redis, sealed: bool
) -> None:
    clock = FakeClock()
    cipher = TokenCipher([TokenCipher.generate_key()]) if sealed else None
    store = RedisSessionStore(redis_client, buckets=16, clock=clock, cipher=cipher)

    async def answer(update: int) -> None:
        await store.begin_update(42, update, owner="o", ttl_ms=60_000)
        await store.finish_update(42, update, ANSWER, owner="o", ttl_s=60)

    for update in range(32):
        await answer(update)
    # Records of the text format a release before kept (sealed: "<minute>:s1:<base64>") are
    # dropped by their stamps too.
    minute = int(clock() // 60) + 1
    for update in range(32, 40):
        answer_json = '["old"]'
        value = f"s1:{cipher.seal_bytes(answer_json.encode())}" if cipher else answer_json
        await redis_client.hset(store.keys.updates(42), str(update), f"{minute}:{value}")
    clock.advance(3600)  # all 40 expired, by their stamps; the hash lives while it is written
    for update in range(100, 116):
        await answer(update)  # the hash reaches 48 records: its expired ones are dropped

    assert set(await redis_client.hkeys(store.keys.updates(42))) <= {
        str(u).encode() for u in range(100, 116)
    }
    # And the answers not yet expired are all there.
    for update in range(100, 116):
        assert isinstance(
            await store.begin_update(42, update, owner="x", ttl_ms=1000), UpdateAnswered
        )


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
async def test_redis_store_works_with_decoded_responses(
    redis_client: Redis, redis_url: str, sealed: bool
) -> None:
    """Such a client could not read an answer kept as bytes: it keeps them as text."""
    client = Redis.from_url(redis_url, decode_responses=True)
    cipher = TokenCipher([TokenCipher.generate_key()]) if sealed else None
    try:
        store = RedisSessionStore(client, prefix="decoded", cipher=cipher)
        revision = await store.replace(42, ANON, expect=None, outbox=[message("m1")])
        stored = await store.load(42)
        assert stored is not None
        assert (stored.session, stored.revision) == (ANON, revision)
        assert await all_chats(store, Status.ANONYMOUS) == {42}
        assert await store.pending_outbox() == [message("m1")]
        assert await store.begin_update(42, 1, owner="o", ttl_ms=60_000) == UpdateClaimed(
            StoredSession(ANON, revision or "")
        )
        await store.finish_update(42, 1, ANSWER, owner="o", ttl_s=60)
        assert await store.begin_update(42, 1, owner="o", ttl_ms=60_000) == UpdateAnswered(ANSWER)
    finally:
        await client.aclose()


async def test_redis_outbox_entries_written_before_kinds_are_still_delivered(
    redis_client: Redis,
) -> None:
    # An upgrade finds entries whose kind was their id's prefix ("l:" login, "n:" notification).
    store = RedisSessionStore(redis_client, prefix="legacy", buckets=16)
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
        await redis_client.hset(store.keys.outbox(store.keys.bucket(42)), entry["id"], value)

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
