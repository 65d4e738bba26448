"""Bot Logic on a real three-master Redis Cluster (issue 10): commands, both timer cycles and
the outbox, with TGGATE_REDIS_URL=redis+cluster://…. A script or command over two slots would
be refused there (CROSSSLOT), so these pass only if every step stays in one slot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster
from tests.integration.logic.conftest import Bot, ModuleUrls, logic_app, open_bot
from tests.support.servers import run_asgi

from tggate.core.session import Status

# Chats spread over the buckets, hence over the three masters.
CHATS = [91_001, 91_002, 91_003, 91_004, 91_005, 91_006]


@pytest.fixture(scope="module")
def cluster_logic_url(modules: ModuleUrls, redis_cluster_url: str) -> Iterator[str]:
    with run_asgi(logic_app(modules, redis_cluster_url)) as url:
        yield url


@pytest.fixture
async def cluster_bot(
    cluster_logic_url: str, modules: ModuleUrls, cluster_client: RedisCluster
) -> AsyncIterator[Bot]:
    async with open_bot(cluster_logic_url, modules, cluster_client) as bot:
        yield bot


async def test_commands_run_on_a_cluster(cluster_bot: Bot) -> None:
    bot = cluster_bot
    chat = CHATS[0]
    assert "not logged in" in await bot.texts(chat, "me")  # U1
    await bot.login(chat)  # U2, A5
    assert "Login: alice" in await bot.texts(chat, "me")  # Z4/Z5
    assert await bot.indexed(chat, Status.AUTHORIZED)
    replayed = await bot.command(chat, "me", update_id=777_001)
    assert await bot.command(chat, "me", update_id=777_001) == replayed  # idempotent
    assert await bot.texts(chat, "logout") == "Session ended."  # Z2
    assert await bot.session(chat) == {}


async def test_the_login_cycle_runs_on_a_cluster(cluster_bot: Bot) -> None:
    bot = cluster_bot
    granted, denied, pending = CHATS[1:4]
    for chat in (granted, denied, pending):
        await bot.command(chat, "login", {"type": "code"})
    await bot.resolve(granted, "granted")
    await bot.resolve(denied, "denied")

    messages = await bot.cycle("login", shard=0, shards=1)

    by_chat = {m["chat_id"]: m["text"] for m in messages}
    assert by_chat == {granted: "You are logged in.", denied: "Login failed."}
    assert (await bot.session(granted))["status"] == "authorized"
    assert await bot.session(denied) == {}
    assert (await bot.session(pending))["status"] == "anonymous"
    acked = await bot.logic.post("/v1/messages/ack", json={"ids": [m["id"] for m in messages]})
    assert acked.json() == {"acknowledged": 2}
    assert await bot.cycle("login") == []


async def test_the_notification_cycle_runs_on_a_cluster_in_shards(cluster_bot: Bot) -> None:
    bot = cluster_bot
    people = {chat: f"person{chat}" for chat in CHATS[3:]}
    for chat, person in people.items():
        await bot.login(chat, identity=person)
        await bot.main.post("/notifications", json={"to": person, "text": f"hi {person}"})

    shards = [await bot.cycle("notifications", shard=s, shards=2) for s in range(2)]

    texts = {m["chat_id"]: m["text"] for shard in shards for m in shard}
    assert texts == {chat: f"🔔 hi {person}" for chat, person in people.items()}
    for shard, messages in enumerate(shards):
        assert all(m["chat_id"] % 2 == shard for m in messages)
    ids = [m["id"] for shard in shards for m in shard]
    acked = await bot.logic.post("/v1/messages/ack", json={"ids": ids})
    assert acked.json() == {"acknowledged": len(people)}
    assert await bot.cycle("notifications") == []
