"""Fixtures shared by every test folder.

`redis_url`: one embedded redis-server for the whole test session (or the server named by
`TGGATE_TEST_REDIS_URL`; point it at a throwaway database, tests flush it).

`redis_client`: a `redis.asyncio.Redis` on that server, after FLUSHDB, closed after the test.
Tests that share the server without this fixture (e.g. a service under test connecting to
`redis_url` itself) should request `redis_client` too, or flush the database themselves, so
no state leaks between tests.

`redis_cluster_url`: a real Redis Cluster of three masters for the whole session (started on
first use); `cluster_client`: a `RedisCluster` on it, every master flushed, closed after the test.

Every test under tests/e2e is marked `e2e` here, so `uv run pytest -m "not e2e"` is the quick
run (README, "Tests").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from tests.support.redis_servers import redis_cluster

from tggate.adapters.embedded_redis import EmbeddedRedis
from tggate.adapters.redis_connect import RedisOptions, connect_redis

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TGGATE_TEST_REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis(data_dir=tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster.url


@pytest.fixture
async def cluster_client(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    async with connect_redis(redis_cluster_url, RedisOptions()) as client:
        assert isinstance(client, RedisCluster)
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        yield client
