"""The modules' connection pool against a scripted HTTP/1.1 server on a real socket: keep-alive,
chunked bodies, a connection the server closed while idle, timeouts, the connection limit, header
injection, and TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support.tls import self_signed_certificate

from tggate.adapters.http_pool import HttpPool, HttpPoolError

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class Scripted:
    """Answers each request with `answer(request_number)`; None: no answer (hold the line)."""

    answer: Callable[[int], bytes | None] = lambda _: _OK
    close_after_answer: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    two_at_once: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                if self.in_flight >= 2:
                    self.two_at_once.set()
                answer = self.answer(len(self.requests))
                if answer is None:
                    await self.release.wait()
                    answer = _OK
                self.in_flight -= 1
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Scripted, str]]:
    module = Scripted()
    server = await asyncio.start_server(module.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield module, f"http://127.0.0.1:{port}/base"
        server.close()


async def test_connections_are_kept_alive_and_reused(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    pool = HttpPool(url, limit=4, timeout_s=5)
    for _ in range(3):
        answer = await pool.request("POST", "/login/check", body=b'{"a":1}')
        assert (answer.status, answer.body) == (200, b"{}")
    await pool.aclose()
    assert module.connections == 1
    assert module.requests[0].startswith(b"POST /base/login/check HTTP/1.1\r\n")
    assert b"Content-Length: 7\r\n" in module.requests[0]
    assert module.requests[0].endswith(b'\r\n\r\n{"a":1}')


async def test_a_chunked_answer_is_read_whole(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    module.answer = lambda _: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n"
    )
    pool = HttpPool(url, limit=1, timeout_s=5)
    assert (await pool.request("GET", "/notification")).body == b"[1,2]"
    assert (await pool.request("GET", "/notification")).body == b"[1,2]"
    await pool.aclose()
    assert module.connections == 1


async def test_a_connection_the_server_closed_is_replaced(scripted: tuple[Scripted, str]) -> None:
    """The server closes after each answer (as on its keep-alive timeout): the next request goes
    out on a new connection, once, and is answered."""
    module, url = scripted
    module.close_after_answer = True
    pool = HttpPool(url, limit=1, timeout_s=5)
    for _ in range(3):
        assert (await pool.request("GET", "/x")).status == 200
    await pool.aclose()
    assert len(module.requests) == 3
    assert module.connections >= 3


async def test_connection_close_is_honoured(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    module.answer = lambda _: _OK.replace(b"200 OK\r\n", b"200 OK\r\nConnection: close\r\n")
    pool = HttpPool(url, limit=1, timeout_s=5)
    for _ in range(2):
        assert (await pool.request("GET", "/x")).status == 200
    await pool.aclose()
    assert module.connections == 2


async def test_no_answer_in_time_is_a_timeout_and_the_line_is_dropped(
    scripted: tuple[Scripted, str],
) -> None:
    module, url = scripted
    module.answer = lambda n: None if n == 1 else _OK
    pool = HttpPool(url, limit=1, timeout_s=0.2)
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/slow")
    module.release.set()
    assert (await pool.request("GET", "/next")).status == 200  # on a new connection
    await pool.aclose()
    assert module.connections == 2


async def test_at_most_limit_requests_at_once(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    module.answer = lambda _: None
    pool = HttpPool(url, limit=2, timeout_s=10)
    calls = [asyncio.create_task(pool.request("GET", f"/{i}")) for i in range(6)]
    await asyncio.wait_for(module.two_at_once.wait(), timeout=10)
    module.release.set()
    answers = await asyncio.gather(*calls)
    await pool.aclose()
    assert [a.status for a in answers] == [200] * 6
    assert module.most_in_flight == 2
    assert module.connections == 2


async def test_a_line_break_in_a_header_is_refused_unsent(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    pool = HttpPool(url, limit=1, timeout_s=5)
    with pytest.raises(HttpPoolError):
        await pool.request("GET", "/x", headers={"Authorization": "Bearer a\r\nX-Evil: 1"})
    with pytest.raises(HttpPoolError):
        await pool.request("GET", "/x y")
    await pool.aclose()
    assert module.requests == []


async def test_a_refused_connection_is_an_error_not_a_hang() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = HttpPool(f"http://127.0.0.1:{port}", limit=1, timeout_s=5)
    with pytest.raises(HttpPoolError):
        await pool.request("GET", "/x")


async def test_https_with_a_verified_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    module = Scripted()
    server = await asyncio.start_server(module.handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cafile=str(cert))
    async with server:
        pool = HttpPool(
            f"https://127.0.0.1:{port}", limit=1, timeout_s=5, ssl_context=client_context
        )
        assert (await pool.request("GET", "/x")).status == 200
        await pool.aclose()
        untrusting = HttpPool(f"https://127.0.0.1:{port}", limit=1, timeout_s=5)
        with pytest.raises(HttpPoolError):
            await untrusting.request("GET", "/x")
