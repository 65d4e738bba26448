"""Fixtures shared by every test folder.

`redis_url`: one embedded redis-server for the whole test session (or the server named by
`TGGATE_TEST_REDIS_URL`; point it at a throwaway database, tests flush it).

`redis_client`: a `redis.asyncio.Redis` on that server, after FLUSHDB, closed after the test.
Tests that share the server without this fixture (e.g. a service under test connecting to
`redis_url` itself) should request `redis_client` too, or flush the database themselves, so
no state leaks between tests.

Every test under tests/e2e is marked `e2e` here, so `uv run pytest -m "not e2e"` is the quick
run (README, "Tests").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tggate.adapters.embedded_redis import EmbeddedRedis

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
