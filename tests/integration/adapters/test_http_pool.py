"""The one HTTP pool (adapters/http_pool.py), used by Bot Logic's module adapters and by the
Telegram Client, against real servers: uvicorn for what a server framework does (keep-alive,
chunked answers), a scripted asyncio server for what a module does request by request, and a raw
one for what a misbehaving peer does (closing mid-answer, answering unasked, being slow), over TCP
and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from tests.support.servers import run_asgi
from tests.support.tls import self_signed_certificate

from tggate.adapters.http_pool import HttpAnswer, HttpFailure, HttpPool
from tggate_sandbox.topology import free_port

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class Scripted:
    """Answers each request with `answer(request_number)` (None: no answer, hold the line until
    `release`), then hangs up if `close_after(request_number)`."""

    answer: Callable[[int], bytes | None] = lambda _: _OK
    close_after: Callable[[int], bool] = lambda _: False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    two_at_once: asyncio.Event = field(default_factory=asyncio.Event)
    received: asyncio.Event = field(default_factory=asyncio.Event)  # a request, at least one

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
                self.received.set()
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
                if self.close_after(len(self.requests)):
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
    pool = HttpPool(url, max_connections=4, timeout_s=5)
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
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    assert (await pool.request("GET", "/notification")).body == b"[1,2]"
    assert (await pool.request("GET", "/notification")).body == b"[1,2]"
    await pool.aclose()
    assert module.connections == 1


async def test_a_connection_the_server_closed_is_replaced(scripted: tuple[Scripted, str]) -> None:
    """The server closes after each answer (as on its keep-alive timeout): the next request goes
    out on a new connection, once, and is answered."""
    module, url = scripted
    module.close_after = lambda _: True
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    for _ in range(3):
        assert (await pool.request("GET", "/x")).status == 200
    await pool.aclose()
    assert len(module.requests) == 3
    assert module.connections >= 3


async def test_a_request_hung_up_on_unanswered_after_reuse_is_sent_once_more(
    scripted: tuple[Scripted, str],
) -> None:
    """The second request goes out on the kept connection and the server hangs up without a
    byte of answer (as when its keep-alive timeout strikes as the request arrives): it goes out
    once more on a new connection and is answered."""
    module, url = scripted
    module.answer = lambda n: b"" if n == 2 else _OK
    module.close_after = lambda n: n == 2
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    assert (await pool.request("POST", "/first", body=b"{}")).status == 200
    assert (await pool.request("POST", "/second", body=b"{}")).status == 200
    await pool.aclose()
    sent = [request.split(b" ")[1] for request in module.requests]
    assert sent == [b"/base/first", b"/base/second", b"/base/second"]
    assert module.connections == 2


async def test_a_request_cut_off_mid_answer_is_not_sent_again(
    scripted: tuple[Scripted, str],
) -> None:
    """Part of an answer came: the server read the request, so sending it again could run it
    twice. A failure instead."""
    module, url = scripted
    module.answer = lambda n: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{" if n == 2 else _OK
    module.close_after = lambda n: n == 2
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    await pool.request("POST", "/first", body=b"{}")
    with pytest.raises(HttpFailure, match="closed before the answer"):
        await pool.request("POST", "/second", body=b"{}")
    await pool.aclose()
    assert len(module.requests) == 2


async def test_a_new_connection_hung_up_on_is_a_failure_not_a_resend(
    scripted: tuple[Scripted, str],
) -> None:
    module, url = scripted
    module.answer = lambda _: b""
    module.close_after = lambda _: True
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    with pytest.raises(HttpFailure, match="closed before the answer"):
        await pool.request("POST", "/x", body=b"{}")
    await pool.aclose()
    assert len(module.requests) == 1


async def test_the_wait_for_a_connection_counts_in_the_timeout(
    scripted: tuple[Scripted, str],
) -> None:
    """One connection, held by an unanswered request: the next request's timeout runs while it
    waits for the connection, so it fails instead of waiting for as long as the first one."""
    module, url = scripted
    module.answer = lambda _: None
    pool = HttpPool(url, max_connections=1, timeout_s=30)
    held = asyncio.create_task(pool.request("GET", "/held"))
    await module.received.wait()
    waiting = pool.request("GET", "/waiting", timeout_s=0.2)
    with pytest.raises(HttpFailure, match=r"no answer within 0\.2 s"):
        await asyncio.wait_for(waiting, timeout=20)  # a bound on a hang, not the claim
    module.release.set()
    assert (await held).status == 200
    await pool.aclose()
    assert len(module.requests) == 1


async def test_connection_close_is_honoured(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    module.answer = lambda _: _OK.replace(b"200 OK\r\n", b"200 OK\r\nConnection: close\r\n")
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    for _ in range(2):
        assert (await pool.request("GET", "/x")).status == 200
    await pool.aclose()
    assert module.connections == 2


async def test_no_answer_in_time_is_a_timeout_and_the_line_is_dropped(
    scripted: tuple[Scripted, str],
) -> None:
    module, url = scripted
    module.answer = lambda n: None if n == 1 else _OK
    pool = HttpPool(url, max_connections=1, timeout_s=0.2)
    with pytest.raises(HttpFailure, match=r"no answer within 0\.2 s"):
        await asyncio.wait_for(pool.request("GET", "/slow"), timeout=20)  # a bound on a hang
    module.release.set()
    assert (await pool.request("GET", "/next")).status == 200  # on a new connection
    await pool.aclose()
    assert module.connections == 2


async def test_at_most_limit_requests_at_once(scripted: tuple[Scripted, str]) -> None:
    module, url = scripted
    module.answer = lambda _: None
    pool = HttpPool(url, max_connections=2, timeout_s=10)
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
    pool = HttpPool(url, max_connections=1, timeout_s=5)
    with pytest.raises(HttpFailure):
        await pool.request("GET", "/x", headers={"Authorization": "Bearer a\r\nX-Evil: 1"})
    with pytest.raises(HttpFailure):
        await pool.request("GET", "/x y")
    await pool.aclose()
    assert module.requests == []


async def test_a_refused_connection_is_an_error_not_a_hang() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = HttpPool(f"http://127.0.0.1:{port}", max_connections=1, timeout_s=5)
    with pytest.raises(HttpFailure):
        await pool.request("GET", "/x")


# ---- uvicorn: a real server framework ----


def framework_app() -> Starlette:
    async def echo(request: Request) -> Response:
        """The body back, and the client port it came from (one port, one connection)."""
        body = json.loads(await request.body())
        client = request.client
        answer = {"echo": body, "port": client.port if client else 0}
        headers = {"Connection": "close"} if request.query_params.get("close") else {}
        return Response(json.dumps(answer), media_type="application/json", headers=headers)

    async def chunked(request: Request) -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            for piece in (b'{"parts": [', b"1, 2, ", b"3]}"):
                yield piece
                await asyncio.sleep(0)

        return StreamingResponse(pieces(), media_type="application/json")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "1")))
        return Response(b"{}", media_type="application/json")

    return Starlette(
        routes=[
            Route("/base/echo", echo, methods=["POST"]),
            Route("/base/chunked", chunked, methods=["POST"]),
            Route("/base/slow", slow, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def framework() -> Iterator[str]:
    with run_asgi(framework_app()) as url:
        yield url + "/base"


async def test_requests_share_one_kept_alive_connection(framework: str) -> None:
    pool = HttpPool(framework)
    first = await pool.post("/echo", b'{"n": 1}', timeout_s=5)
    second = await pool.post("/echo", b'{"n": 2}', timeout_s=5)
    await pool.aclose()
    assert (first.status, _echo(first), _echo(second)) == (200, {"n": 1}, {"n": 2})
    assert _port(first) == _port(second)


async def test_a_chunked_answer_from_uvicorn_is_read_whole(framework: str) -> None:
    pool = HttpPool(framework)
    answer = await pool.post("/chunked", b"{}", timeout_s=5)
    await pool.aclose()
    assert answer.body == b'{"parts": [1, 2, 3]}'


async def test_connection_close_from_uvicorn_is_honoured(framework: str) -> None:
    pool = HttpPool(framework)
    closing = await pool.post("/echo?close=1", b"{}", timeout_s=5)
    after = await pool.post("/echo", b"{}", timeout_s=5)
    await pool.aclose()
    assert closing.status == after.status == 200
    assert _port(closing) != _port(after)


async def test_a_timed_out_request_fails_and_its_connection_is_not_reused(framework: str) -> None:
    pool = HttpPool(framework, max_connections=1)
    with pytest.raises(HttpFailure, match=r"no answer within 0\.2 s"):
        await pool.post("/slow?s=1", b"{}", timeout_s=0.2)
    # The late answer to the slow request must never be read as this one's.
    answer = await pool.post("/echo", b'{"fresh": true}', timeout_s=5)
    await pool.aclose()
    assert _echo(answer) == {"fresh": True}


async def test_a_cancelled_request_frees_its_slot(framework: str) -> None:
    pool = HttpPool(framework, max_connections=1)
    slow = asyncio.create_task(pool.post("/slow?s=5", b"{}", timeout_s=10))
    await asyncio.sleep(0.1)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    answer = await pool.post("/echo", b"{}", timeout_s=5)
    await pool.aclose()
    assert answer.status == 200


# ---- a raw server: what a peer may do wrong ----

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(
    handler: Handler, *, tls: ssl.SSLContext | None = None, port: int = 0
) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client hung up or refused the certificate: what some tests want
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


async def test_an_answer_cut_short_is_a_failure() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()
        writer.close()

    async with raw_server(cut) as url:
        pool = HttpPool(url)
        with pytest.raises(HttpFailure, match="closed before the answer"):
            await pool.post("/x", b"{}", timeout_s=5)
        await pool.aclose()


async def test_garbage_is_a_failure() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with raw_server(garbage) as url:
        pool = HttpPool(url)
        with pytest.raises(HttpFailure, match="unreadable answer"):
            await pool.post("/x", b"{}", timeout_s=5)
        await pool.aclose()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    connections: list[int] = []
    closed = asyncio.Event()

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_request(reader)
        writer.write(OK)  # keep-alive by HTTP/1.1's default…
        await writer.drain()
        writer.close()  # …but the server closes it anyway, as idle ones are closed
        await writer.wait_closed()
        closed.set()

    async with raw_server(answer_once) as url:
        pool = HttpPool(url)
        assert (await pool.post("/x", b"{}", timeout_s=5)).body == b'{"ok":true}'
        await closed.wait()
        for _ in range(10):  # the client's side sees the close on its next loop turns
            await asyncio.sleep(0)
        assert (await pool.post("/x", b"{}", timeout_s=5)).body == b'{"ok":true}'
        await pool.aclose()
    assert len(connections) == 2


async def test_an_unasked_answer_closes_the_connection() -> None:
    connections: list[int] = []

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_request(reader)
        writer.write(OK + OK[:20])  # one answer too many, and the start of another
        await writer.drain()
        await read_request(reader)  # the client hangs up instead, as it should
        writer.write(OK)
        await writer.drain()

    async with raw_server(chatty) as url:
        pool = HttpPool(url)
        await pool.post("/x", b"{}", timeout_s=5)
        for _ in range(10):
            await asyncio.sleep(0)
        await pool.post("/x", b"{}", timeout_s=5)
        await pool.aclose()
    assert len(connections) == 2


async def test_no_more_connections_than_allowed() -> None:
    open_now = 0
    most = 0

    async def slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            while True:
                await read_request(reader)
                await asyncio.sleep(0.05)
                writer.write(OK)
                await writer.drain()
        finally:
            open_now -= 1

    async with raw_server(slowly) as url:
        pool = HttpPool(url, max_connections=2)
        answers = await asyncio.gather(*(pool.post("/x", b"{}", timeout_s=5) for _ in range(6)))
        await pool.aclose()
    assert [a.status for a in answers] == [200] * 6
    assert most == 2


async def test_a_refused_connection_is_a_failure() -> None:
    async with raw_server(read_request_and_answer) as url:
        pass  # closed again: nobody listens on its port now
    pool = HttpPool(url)
    with pytest.raises(HttpFailure, match="ConnectionRefusedError"):
        await pool.post("/x", b"{}", timeout_s=5)


async def read_request_and_answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    request = await read_request(reader)
    assert request.startswith(b"POST /base/x HTTP/1.1\r\n")
    writer.write(OK)
    await writer.drain()


def test_headers_cannot_smuggle_lines() -> None:
    with pytest.raises(ValueError, match="line break"):
        HttpPool("http://127.0.0.1:1", headers={"X-Internal-Token": "a\r\nX-Evil: 1"})
    with pytest.raises(ValueError, match="http"):
        HttpPool("ftp://127.0.0.1/")


# ---- TLS, as with api.telegram.org ----


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (key and certificate files)."""
    certificate_path, key_path = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    return key_path, certificate_path


async def test_https_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    key_path, certificate_path = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(certificate_path, key_path)
    async with raw_server(read_request_and_answer, tls=server_side) as url:
        trusting = ssl.create_default_context(cafile=str(certificate_path))
        pool = HttpPool(url + "/base", ssl_context=trusting)
        first = await pool.post("/x", b"{}", timeout_s=5)
        await pool.aclose()
        # The system's certificates do not know this one: refused, never sent in the clear.
        untrusting = HttpPool(url + "/base")
        with pytest.raises(HttpFailure, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.post("/x", b"{}", timeout_s=5)
        await untrusting.aclose()
    assert first.body == b'{"ok":true}'


def _echo(answer: HttpAnswer) -> object:
    return json.loads(answer.body)["echo"]


def _port(answer: HttpAnswer) -> int:
    port: int = json.loads(answer.body)["port"]
    return port


# ---- one timer for every deadline (`_Watchdog`) ----


@dataclass
class Holding:
    """Answers `/now` at once and holds every other request unanswered; `held` is set once it
    holds one (so its deadline is known to the pool's timer by then)."""

    held: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /now "):
                writer.write(OK)
                await writer.drain()
            else:
                self.held.set()
                # Unanswered until the client gives up and hangs up: then the handler ends,
                # rather than lingering into the event loop's close.
                await reader.read()
                return


async def test_a_shorter_deadline_than_one_awaited_ends_first() -> None:
    holding = Holding()
    async with raw_server(holding.handle) as url:
        pool = HttpPool(url, max_connections=2)
        long = asyncio.create_task(pool.request("GET", "/held", timeout_s=600))
        await asyncio.wait_for(holding.held.wait(), 30)  # the timer waits for its deadline
        with pytest.raises(HttpFailure, match=r"no answer within 0\.2 s"):
            await asyncio.wait_for(pool.request("GET", "/held", timeout_s=0.2), 30)
        assert not long.done()  # it has minutes left
        long.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await long
        await pool.aclose()


async def test_a_deadline_after_one_whose_answer_came_still_ends_its_wait() -> None:
    holding = Holding()
    async with raw_server(holding.handle) as url:
        pool = HttpPool(url, max_connections=2)
        # Answered in time: the timer armed for its deadline will find nothing due, and must
        # be armed again for the one still awaited.
        assert (await pool.request("GET", "/now", timeout_s=0.1)).status == 200
        with pytest.raises(HttpFailure, match=r"no answer within 0\.4 s"):
            await asyncio.wait_for(pool.request("GET", "/held", timeout_s=0.4), 30)
        await pool.aclose()


def test_a_pool_used_from_a_new_event_loop_still_times_out() -> None:
    port = free_port()

    async def once(pool: HttpPool) -> None:
        holding = Holding()
        async with raw_server(holding.handle, port=port):
            with pytest.raises(HttpFailure, match="no answer within 1 s"):
                await asyncio.wait_for(pool.request("GET", "/held", timeout_s=1), 30)
            # This loop closes with the timer armed for this one's deadline, earlier than the
            # next run's: a timer that will never fire.
            holding.held.clear()
            later = asyncio.create_task(pool.request("GET", "/held", timeout_s=0.3))
            await asyncio.wait_for(holding.held.wait(), 30)
            later.cancel()
            with contextlib.suppress(asyncio.CancelledError, HttpFailure):
                await later

    pool = HttpPool(f"http://127.0.0.1:{port}", max_connections=2)
    asyncio.run(once(pool))
    asyncio.run(once(pool))
