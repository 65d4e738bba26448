"""N2 in the bulk mode (docs/scenarios.md#n2-bulk): Bot Logic reads the reference Main module's
notification feed once per tick with the service token and routes each notification to the
chats of its person by the access token's subject. Real Redis, real HTTP, the reference modules
as servers."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from tests.integration.logic.conftest import (
    INTERNAL_TOKEN,
    JWT_SECRET,
    Bot,
    ModuleUrls,
    open_bot,
)
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.adapters.http_base import JsonHttp
from tggate.adapters.http_pool import HttpPool
from tggate.adapters.main_http import HttpMainModule
from tggate.adapters.redis_store import RedisSessionStore
from tggate.bootstrap import build_logic_app
from tggate.core.machine import FeedPageOutcome, decide_feed_page
from tggate.core.ports import ActionDone, FeedPage, OutboxKind
from tggate.core.session import Authorized
from tggate.logic.feed import FeedPuller
from tggate.logic.metrics import LogicMetrics
from tggate.settings import load_settings
from tggate_sandbox.reference.auth.app import create_app as create_auth_app
from tggate_sandbox.reference.main.app import create_app as create_main_app

SERVICE_TOKEN = "test-service-token-0123456789abcdef0123"
AUTH_PUBLIC_URL = "http://auth.example"


@pytest.fixture(scope="module")
def modules() -> Iterator[ModuleUrls]:
    """The reference modules, the Main module with its feed on."""
    auth = create_auth_app(
        jwt_secret=JWT_SECRET, public_url=AUTH_PUBLIC_URL, test_api_secret=TEST_API_SECRET
    )
    main = create_main_app(
        jwt_secret=JWT_SECRET,
        admin_secret=ADMIN_SECRET,
        test_api_secret=TEST_API_SECRET,
        service_token=SERVICE_TOKEN,
    )
    with run_asgi(auth) as auth_url, run_asgi(main) as main_url:
        yield ModuleUrls(auth=auth_url, main=main_url)


@pytest.fixture(scope="module")
def logic_url(modules: ModuleUrls, redis_url: str) -> Iterator[str]:
    settings = load_settings(
        redis_url=redis_url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        http_timeout_s=5.0,
        notification_mode="bulk",
        main_service_token=SERVICE_TOKEN,
    )
    with run_asgi(build_logic_app(settings, redis_url=redis_url)) as url:
        yield url


@pytest.fixture
async def bot(logic_url: str, modules: ModuleUrls, redis_client: Redis) -> AsyncIterator[Bot]:
    async with open_bot(logic_url, modules, redis_client) as found:
        # What earlier tests left in the feed and the outbox is read and delivered first.
        await _drain(found)
        await found.main.post("/test/stats/reset")
        yield found


async def _drain(bot: Bot) -> None:
    messages = await bot.cycle("notifications")
    await bot.logic.post("/v1/messages/ack", json={"ids": [m["id"] for m in messages]})


_chat_ids = itertools.count(51_000)


def _chat() -> int:
    return next(_chat_ids)


def _person() -> str:
    """A person no other test logged in, so no chat of an earlier test is theirs."""
    return f"p{secrets.token_hex(4)}"


async def _notify(bot: Bot, person: str, text: str) -> None:
    created = await bot.main.post("/notifications", json={"to": person, "text": text})
    assert created.status_code == 201, created.text


def _delivered(messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return sorted((m["chat_id"], m["text"]) for m in messages)


async def test_N2_bulk_routes_to_every_chat_of_the_person_and_no_one_else(bot: Bot) -> None:
    alice, bob = _person(), _person()
    phone, laptop, other = _chat(), _chat(), _chat()
    await bot.login(phone, identity=alice)
    await bot.login(laptop, identity=alice)
    await bot.login(other, identity=bob)
    await _notify(bot, alice, "Deadline!")
    messages = await bot.cycle("notifications")
    assert _delivered(messages) == [(phone, "🔔 Deadline!"), (laptop, "🔔 Deadline!")]
    stats = await bot.main_stats()
    # One feed read (and the empty page that ends it), no per-chat read, nothing deleted.
    assert stats.get("GET /notifications") == 2
    assert "GET /notification" not in stats
    assert "DELETE /notification" not in stats
    # Durable until acknowledged, then gone; the feed is not read into the outbox twice.
    assert _delivered(await bot.cycle("notifications")) == _delivered(messages)
    await bot.logic.post("/v1/messages/ack", json={"ids": [m["id"] for m in messages]})
    assert await bot.cycle("notifications") == []


async def test_N2_bulk_logout_removes_the_chat_from_routing(bot: Bot) -> None:
    alice = _person()
    kept, left = _chat(), _chat()
    await bot.login(kept, identity=alice)
    await bot.login(left, identity=alice)
    await bot.command(left, "logout")
    await _notify(bot, alice, "after logout")
    assert _delivered(await bot.cycle("notifications")) == [(kept, "🔔 after logout")]
    index = bot.store.keys.subject(alice)
    assert await bot.redis.smembers(index) == {str(kept).encode()}


async def test_N2_bulk_logout_everywhere_drops_every_chat_of_the_person(bot: Bot) -> None:
    """Z3 revokes the person's refresh tokens; their other chat keeps its session until it next
    acts (then Z8), and the feed reaches neither meanwhile."""
    alice = _person()
    chat, other_device = _chat(), _chat()
    await bot.login(chat, identity=alice)
    await bot.login(other_device, identity=alice)
    assert await bot.texts(chat, "logout", {"all": "true"}) == "Session ended on all devices."
    assert (await bot.session(other_device))["status"] == "authorized"
    before = _dropped((await bot.logic.get("/metrics")).text)
    await _notify(bot, alice, "nobody hears this")
    assert await bot.cycle("notifications") == []
    assert _dropped((await bot.logic.get("/metrics")).text) == before + 1


def _dropped(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("tggate_feed_dropped_total "):
            return float(line.split()[1])
    return 0.0


async def test_N2_bulk_person_with_no_chat_is_dropped_and_counted(bot: Bot) -> None:
    before = _dropped((await bot.logic.get("/metrics")).text)
    await _notify(bot, _person(), "for nobody")
    assert await bot.cycle("notifications") == []
    assert _dropped((await bot.logic.get("/metrics")).text) == before + 1


async def test_N2_bulk_only_shard_0_reads_the_feed(bot: Bot) -> None:
    alice = _person()
    chats = [_chat(), _chat()]
    for chat in chats:
        await bot.login(chat, identity=alice)
    await _notify(bot, alice, "sharded")
    odd = [c for c in chats if c % 2 == 1]
    assert await bot.cycle("notifications", shard=1, shards=2) == []
    assert "GET /notifications" not in await bot.main_stats()
    # Shard 0 pulls the feed for everybody; shard 1's chats get theirs at shard 1's tick.
    zero = await bot.cycle("notifications", shard=0, shards=2)
    assert [m["chat_id"] for m in zero] == [c for c in chats if c % 2 == 0]
    one = await bot.cycle("notifications", shard=1, shards=2)
    assert [m["chat_id"] for m in one] == odd


# ---- the pull step by step: a replica dying between any two steps ----


def _token(subject: str) -> str:
    """An access token of `subject`, as an Authorization module would sign it."""
    return jwt.encode({"sub": subject, "typ": "access"}, "k" * 32, algorithm="HS256")


class _Feed:
    """The pull's parts over the reference Main module with its feed, and a fresh Redis
    prefix (an empty database as far as the store sees)."""

    def __init__(self, redis: Redis, main_url: str, pool: HttpPool, *, token: str) -> None:
        prefix = f"bulk{secrets.token_hex(4)}"
        self.store = RedisSessionStore(redis, prefix=prefix, subject_index=True)
        # The same database as a Bot Logic in the per-chat mode writes it (no subject index).
        self.per_chat_store = RedisSessionStore(redis, prefix=prefix)
        self.main = HttpMainModule(JsonHttp(pool=pool, name="main"), service_token=token)
        self.puller = FeedPuller(
            store=self.store,
            feed_store=self.store,
            feed=self.main,
            metrics=LogicMetrics(),
            page_size=2,
            max_pages=10,
            lock_ttl_ms=60_000,
        )

    async def login(self, chat_id: int, subject: str, *, per_chat: bool = False) -> None:
        session = Authorized(_token(subject), "refresh", "en")
        store = self.per_chat_store if per_chat else self.store
        assert await store.replace(chat_id, session, expect=None) is not None

    async def pending(self) -> list[tuple[int, str]]:
        found = await self.store.pending_outbox(kind=OutboxKind.NOTIFICATION)
        return sorted((m.chat_id, m.reply.text) for m in found)

    async def deliver(self) -> list[tuple[int, str]]:
        """What the client sends now, acknowledged."""
        found = await self.store.pending_outbox(kind=OutboxKind.NOTIFICATION)
        await self.store.ack_outbox([m.id for m in found])
        return sorted((m.chat_id, m.reply.text) for m in found)

    async def die_after(self, steps: int) -> None:
        """A pull whose replica dies after performing `steps` requests of the machine."""
        cursor = await self.store.feed_cursor()
        answers: list[object] = []
        for _ in range(steps):
            step = decide_feed_page(cursor, answers, limit=2)
            if isinstance(step, FeedPageOutcome):
                if step.next_cursor is None:
                    return
                cursor, answers = step.next_cursor, []
                step = decide_feed_page(cursor, answers, limit=2)
                assert not isinstance(step, FeedPageOutcome)
            answers.append(await self.puller.perform(step))


@pytest.fixture(scope="module")
def feed_module() -> Iterator[str]:
    """A Main module of its own: these tests read its feed from the start."""
    main = create_main_app(
        jwt_secret=JWT_SECRET, admin_secret=ADMIN_SECRET, service_token=SERVICE_TOKEN
    )
    with run_asgi(main) as url:
        yield url


@pytest.fixture(scope="module")
def feed_notes(feed_module: str) -> list[tuple[str, str]]:
    """Three notifications (more than a page) of alice, one of bob, one of carol (no chat)."""
    notes = [("alice", "a1"), ("bob", "b1"), ("alice", "a2"), ("carol", "c1"), ("alice", "a3")]
    with httpx.Client(base_url=feed_module, headers=ADMIN) as main:
        for person, text in notes:
            assert main.post("/notifications", json={"to": person, "text": text}).is_success
    return notes


@pytest.fixture
async def pool(feed_module: str) -> AsyncIterator[HttpPool]:
    pool = HttpPool(feed_module, max_connections=4, timeout_s=5.0)
    try:
        yield pool
    finally:
        await pool.aclose()


# Chats: alice on 1 and 2, bob on 3.
_EXPECTED = sorted(
    [
        *[(1, "🔔 a1"), (2, "🔔 a1"), (3, "🔔 b1")],
        *[(1, "🔔 a2"), (2, "🔔 a2")],
        *[(1, "🔔 a3"), (2, "🔔 a3")],
    ]
)
# Page 1 (a1, b1): fetch, find, queue, advance; page 2 (a2, c1) likewise; page 3 (a3) likewise;
# page 4: the empty fetch.
_STEPS = 13


@pytest.mark.parametrize("delivered_before_restart", [False, True], ids=["pending", "acked"])
@pytest.mark.parametrize("steps", range(_STEPS + 1))
async def test_N2_bulk_nothing_lost_nothing_doubled_when_the_replica_dies(
    redis_client: Redis,
    feed_module: str,
    feed_notes: list[tuple[str, str]],
    pool: HttpPool,
    steps: int,
    delivered_before_restart: bool,
) -> None:
    """The replica dies after any step of the pull (docs/scenarios.md#n2-bulk); the client
    delivers what is in the outbox by then or not; the next pull completes. Every notification
    reaches every chat of its person exactly once: the cursor moves only after the outbox
    write, and the outbox drops an id it holds or delivered."""
    feed = _Feed(redis_client, feed_module, pool, token=SERVICE_TOKEN)
    for chat_id, person in ((1, "alice"), (2, "alice"), (3, "bob")):
        await feed.login(chat_id, person)
    await feed.die_after(steps)
    sent = await feed.deliver() if delivered_before_restart else []
    pulled = await feed.puller.pull()
    assert not pulled.locked
    sent += await feed.deliver()
    assert sorted(sent) == _EXPECTED
    # Caught up: the next pull reads one empty page and queues nothing.
    again = await feed.puller.pull()
    assert (again.pages, again.queued) == (1, 0)


async def test_N2_bulk_wrong_service_token_reads_nothing(
    redis_client: Redis, feed_module: str, feed_notes: list[tuple[str, str]], pool: HttpPool
) -> None:
    feed = _Feed(redis_client, feed_module, pool, token="wrong-" + SERVICE_TOKEN)
    await feed.login(1, "alice")
    assert await feed.main.notification_feed(after=None, limit=2) == ActionDone(
        401, {"detail": "the feed needs the service token"}
    )
    pulled = await feed.puller.pull()
    assert (pulled.pages, pulled.queued) == (1, 0)
    assert await feed.store.feed_cursor() is None
    assert await feed.pending() == []


async def test_N2_bulk_stale_index_entry_is_checked_and_dropped(
    redis_client: Redis, feed_module: str, pool: HttpPool
) -> None:
    """A chat filed under alice whose session is now bob's (or gone) is not alice's route."""
    feed = _Feed(redis_client, feed_module, pool, token=SERVICE_TOKEN)
    await feed.login(7, "alice")
    await feed.login(8, "alice")
    stored = await feed.store.load(7)
    assert stored is not None
    bob = Authorized(_token("bob"), "refresh", "en")
    assert await feed.store.replace(7, bob, expect=stored.revision)
    gone = await feed.store.load(8)
    assert gone is not None
    assert await feed.store.replace(8, None, expect=gone.revision) == ""
    found = await feed.store.subject_chats(["alice", "bob"])
    assert {s: [c.chat_id for c in chats] for s, chats in found.items()} == {
        "alice": [],
        "bob": [7],
    }
    assert await redis_client.smembers(feed.store.keys.subject("alice")) == set()


async def test_feed_page_is_read_through_the_contract(
    feed_module: str, feed_notes: list[tuple[str, str]], pool: HttpPool
) -> None:
    main = HttpMainModule(JsonHttp(pool=pool, name="main"), service_token=SERVICE_TOKEN)
    page = await main.notification_feed(after=None, limit=2)
    assert isinstance(page, FeedPage)
    assert [(n.subject, n.text) for n in page.notifications] == [("alice", "a1"), ("bob", "b1")]
    assert page.cursor == "2"


async def test_N2_bulk_chats_logged_in_under_the_per_chat_mode_are_reached(
    redis_client: Redis, feed_module: str, feed_notes: list[tuple[str, str]], pool: HttpPool
) -> None:
    """Switching per-chat -> bulk loses nobody: the per-chat mode keeps no subject index, and a
    replica's first pull files every Authorized chat."""
    feed = _Feed(redis_client, feed_module, pool, token=SERVICE_TOKEN)
    for chat_id, person in ((1, "alice"), (2, "alice"), (3, "bob")):
        await feed.login(chat_id, person, per_chat=True)
    assert await redis_client.exists(feed.store.keys.subject("alice")) == 0
    await feed.puller.pull()
    assert await feed.deliver() == _EXPECTED
