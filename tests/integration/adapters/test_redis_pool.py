"""The lean pool and connections under redis-py's clients (tggate.adapters.redis_pool), on real
servers: the bound holds and those who wait are served, a write that cannot finish still times
out, and every kind of URL gets them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import hiredis
import pytest
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from tggate.adapters.redis_connect import RedisOptions, connect_redis
from tggate.adapters.redis_pool import LEAN_CONNECTIONS, LeanPool

# Longer than a loopback socket's buffers and asyncio's write limit together.
_UNSENDABLE = b"x" * (64 << 20)


def _connections_received(info: dict[str, object]) -> int:
    return int(str(info["total_connections_received"]))


async def test_the_bound_holds_and_those_who_wait_are_served(
    redis_url: str, redis_client: Redis
) -> None:
    before = _connections_received(await redis_client.info("stats"))
    async with connect_redis(redis_url, RedisOptions(max_connections=2)) as redis:
        assert isinstance(redis, Redis)
        pool = redis.connection_pool
        held = [await pool.get_connection(), await pool.get_connection()]
        waiting = [asyncio.create_task(redis.incr("counted")) for _ in range(5)]
        for _ in range(20):  # every task runs up to where it waits for a connection
            await asyncio.sleep(0)
        assert not any(task.done() for task in waiting)
        assert await redis_client.get("counted") is None
        for connection in held:
            await pool.release(connection)
        assert sorted(await asyncio.gather(*waiting)) == [1, 2, 3, 4, 5]
        # Lent again and again, now without anyone waiting.
        assert await asyncio.gather(*(redis.incr("counted") for _ in range(20)))
    assert int(await redis_client.get("counted") or 0) == 25
    after = _connections_received(await redis_client.info("stats"))
    assert after - before <= 2


async def test_a_connection_that_must_reconnect_does_so_before_it_is_lent_again(
    redis_url: str, redis_client: Redis
) -> None:
    async with connect_redis(redis_url, RedisOptions(max_connections=1)) as redis:
        assert isinstance(redis, Redis)
        await redis.client_setname("first")
        pool = redis.connection_pool
        connection = await pool.get_connection()
        connection.mark_for_reconnect()
        await pool.release(connection)
        assert await redis.client_getname() is None  # a new connection, without the name
        assert await redis.incr("counted") == 1


async def test_one_who_comes_to_wait_while_a_connection_reconnects_is_served(
    redis_url: str, redis_client: Redis
) -> None:
    async with connect_redis(redis_url, RedisOptions(max_connections=1, timeout_s=1)) as redis:
        assert isinstance(redis, Redis)
        pool = redis.connection_pool
        connection = await pool.get_connection()
        await connection.connect()
        connection.mark_for_reconnect()
        # The release starts first and disconnects; meanwhile the other finds nothing free
        # and waits. It must get the connection once it is back, not when its wait runs out.
        _, waited = await asyncio.gather(pool.release(connection), pool.get_connection())
        assert waited is connection
        await pool.release(waited)
        assert await redis.incr("counted") == 1


class _FakeRedis:
    """A server that answers PONG to PING and OK to anything else, and names what it was sent;
    with `stops_at_set`, at the start of a SET it stops reading: the client's write can never
    finish."""

    def __init__(self, *, stops_at_set: bool) -> None:
        self.stops_at_set = stops_at_set
        self.names: list[bytes] = []
        self.stalled = asyncio.Event()
        self.closing = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        while data := await reader.read(65536):
            if self.stops_at_set and b"$3\r\nSET\r\n" in data:  # its value is not read
                writer.transport.pause_reading()
                self.stalled.set()
                await self.closing.wait()
                writer.close()
                return
            parser.feed(data)
            while (command := parser.gets()) is not False:
                self.names.append(command[0].upper())
                writer.write(b"+PONG\r\n" if self.names[-1] == b"PING" else b"+OK\r\n")
        writer.close()


@asynccontextmanager
async def _fake_redis(*, stops_at_set: bool) -> AsyncIterator[tuple[str, _FakeRedis]]:
    fake = _FakeRedis(stops_at_set=stops_at_set)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0", fake
    finally:
        fake.closing.set()
        server.close()
        await server.wait_closed()


async def test_a_write_that_cannot_finish_times_out() -> None:
    async with (
        _fake_redis(stops_at_set=True) as (url, fake),
        connect_redis(url, RedisOptions(timeout_s=0.2)) as redis,
    ):
        with pytest.raises(RedisTimeoutError, match="writing"):
            # The bound turns a write that never times out into a failure, not a hang.
            await asyncio.wait_for(redis.set("key", _UNSENDABLE), 60)
        assert fake.stalled.is_set()


async def test_a_due_health_check_is_made_before_a_command() -> None:
    async with _fake_redis(stops_at_set=False) as (url, fake):
        pool = LeanPool.from_url(url, socket_timeout=1, health_check_interval=0.001)
        redis = Redis.from_pool(pool)
        try:
            await redis.get("key")
            await asyncio.sleep(0.01)  # the next check is due 1 ms after the last answer
            await redis.get("key")
        finally:
            await redis.aclose()
    assert fake.names.count(b"GET") == 2
    assert b"PING" in fake.names[fake.names.index(b"GET") :]


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///nowhere/redis.sock"],
)
async def test_one_server_of_any_kind_gets_the_lean_pool(url: str) -> None:
    async with connect_redis(url, RedisOptions()) as redis:  # nothing connects yet
        assert isinstance(redis, Redis)
        pool = redis.connection_pool
        assert isinstance(pool, LeanPool)
        assert pool.connection_class in LEAN_CONNECTIONS.values()


async def test_sentinel_gets_the_lean_pool() -> None:
    url = "redis+sentinel://127.0.0.1:1/tggate"
    async with connect_redis(url, RedisOptions()) as redis:  # nothing connects yet
        assert isinstance(redis, Redis)
        pool = redis.connection_pool
        assert isinstance(pool, LeanPool)
        assert pool.connection_class in LEAN_CONNECTIONS.values()
