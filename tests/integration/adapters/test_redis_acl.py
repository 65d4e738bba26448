"""A production Redis with a user of tggate's own (issue 10): deploy/redis.conf's example `user`
lines, as written there, on a real server; tggate does all it does as that user, and nothing
else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError
from tests.support.redis_servers import RedisProcess, free_port, server_args

from tggate.adapters.redis_connect import RedisOptions, connect_redis
from tggate.adapters.redis_legacy import move_legacy_layout
from tggate.adapters.redis_store import RedisSessionStore
from tggate.core.ports import OutboxKind, OutboxMessage, StoreUnavailable, UpdateAnswered
from tggate.core.replies import Reply
from tggate.core.session import Authorized, Status

DEPLOY_CONF = Path(__file__).resolve().parents[3] / "deploy" / "redis.conf"
PASSWORD = "a-long-random-password-for-the-test"


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    workdir = tmp_path_factory.mktemp("acl")
    users = [
        line.removeprefix("# ").replace("CHANGE-ME-a-long-random-password", PASSWORD)
        for line in DEPLOY_CONF.read_text().splitlines()
        if line.startswith("# user ")
    ]
    assert len(users) == 2, "deploy/redis.conf names the default user and tggate's"
    (workdir / "acl.conf").write_text("\n".join(users) + "\n")
    port = free_port()
    server = RedisProcess("acl", port, workdir, ["acl.conf", *server_args(port)])
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_tggate_works_as_its_own_user(acl_server: RedisProcess) -> None:
    url = f"redis://127.0.0.1:{acl_server.port}/0"
    options = RedisOptions(username="tggate", password=PASSWORD)
    async with connect_redis(url, options) as redis:
        store = RedisSessionStore(redis)
        await store.check_layout()
        await move_legacy_layout(redis, store, cipher=None)
        revision = await store.replace(1, Authorized("a", "r"), expect=None)
        assert revision
        assert [c async for batch in store.sessions(Status.AUTHORIZED) for c, _ in batch] == [1]
        await store.begin_update(1, 5, owner="o", ttl_ms=1000)
        assert await store.extend_update(1, 5, owner="o", ttl_ms=1000)
        await store.finish_update(1, 5, [Reply("hi")], owner="o", ttl_s=60)
        assert await store.begin_update(1, 5, owner="o", ttl_ms=1000) == UpdateAnswered(
            (Reply("hi"),)
        )
        message = OutboxMessage("n:1:x", 1, OutboxKind.NOTIFICATION, Reply("hi"))
        await store.add_outbox([message])
        assert await store.pending_outbox() == [message]
        assert await store.ack_outbox([message.id]) == 1
        assert await store.acquire_lock(1, "refresh", owner="o", ttl_ms=1000)
        await store.release_lock(1, "refresh", owner="o")
        assert await store.lease("poller", instance="i", ttl_ms=1000)
        assert await store.ping()
        # The user may do nothing beyond that.
        with pytest.raises(NoPermissionError):
            await redis.flushall()
        with pytest.raises(NoPermissionError):
            await redis.set("someone-else:key", "x")


async def test_no_one_else_gets_in(acl_server: RedisProcess) -> None:
    anonymous = Redis(port=acl_server.port)
    try:
        with pytest.raises(AuthenticationError):
            await anonymous.set("tggate:x", "1")
    finally:
        await anonymous.aclose()
    url = f"redis://tggate:wrong-password@127.0.0.1:{acl_server.port}/0"
    async with connect_redis(url, RedisOptions()) as redis:
        with pytest.raises(StoreUnavailable):
            await RedisSessionStore(redis).load(1)


async def test_the_settings_password_wins_over_the_urls(acl_server: RedisProcess) -> None:
    url = f"redis://tggate:wrong-password@127.0.0.1:{acl_server.port}/0"
    async with connect_redis(url, RedisOptions(password=PASSWORD)) as redis:
        assert await RedisSessionStore(redis).load(404) is None
