"""The client's keep-alive HTTP/1.1 connections (client/http.py) against real servers: uvicorn for
what a server framework does (keep-alive, chunked answers), and a raw asyncio server for what a
misbehaving peer does (closing mid-answer, answering unasked, being slow), over TCP and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from tests.support.servers import run_asgi

from tggate.client.http import HttpAnswer, HttpFailure, HttpPool

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
    await pool.close()
    assert (first.status, _echo(first), _echo(second)) == (200, {"n": 1}, {"n": 2})
    assert _port(first) == _port(second)


async def test_a_chunked_answer_is_read_whole(framework: str) -> None:
    pool = HttpPool(framework)
    answer = await pool.post("/chunked", b"{}", timeout_s=5)
    await pool.close()
    assert answer.body == b'{"parts": [1, 2, 3]}'


async def test_connection_close_is_honoured(framework: str) -> None:
    pool = HttpPool(framework)
    closing = await pool.post("/echo?close=1", b"{}", timeout_s=5)
    after = await pool.post("/echo", b"{}", timeout_s=5)
    await pool.close()
    assert closing.status == after.status == 200
    assert _port(closing) != _port(after)


async def test_a_timed_out_request_fails_and_its_connection_is_not_reused(framework: str) -> None:
    pool = HttpPool(framework, max_connections=1)
    with pytest.raises(HttpFailure, match=r"no answer within 0\.2 s"):
        await pool.post("/slow?s=1", b"{}", timeout_s=0.2)
    # The late answer to the slow request must never be read as this one's.
    answer = await pool.post("/echo", b'{"fresh": true}', timeout_s=5)
    await pool.close()
    assert _echo(answer) == {"fresh": True}


async def test_a_cancelled_request_frees_its_slot(framework: str) -> None:
    pool = HttpPool(framework, max_connections=1)
    slow = asyncio.create_task(pool.post("/slow?s=5", b"{}", timeout_s=10))
    await asyncio.sleep(0.1)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    answer = await pool.post("/echo", b"{}", timeout_s=5)
    await pool.close()
    assert answer.status == 200


# ---- a raw server: what a peer may do wrong ----

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client hung up or refused the certificate: what some tests want
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://localhost:{port}"
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
        await pool.close()


async def test_garbage_is_a_failure() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with raw_server(garbage) as url:
        pool = HttpPool(url)
        with pytest.raises(HttpFailure, match="unreadable answer"):
            await pool.post("/x", b"{}", timeout_s=5)
        await pool.close()


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
        await pool.close()
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
        await pool.close()
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
        await pool.close()
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
    """A self-signed certificate for localhost (key and certificate files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    key_path, certificate_path = folder / "key.pem", folder / "certificate.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, certificate_path


async def test_https_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    key_path, certificate_path = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(certificate_path, key_path)
    async with raw_server(read_request_and_answer, tls=server_side) as url:
        trusting = ssl.create_default_context(cafile=str(certificate_path))
        pool = HttpPool(url + "/base", ssl_context=trusting)
        first = await pool.post("/x", b"{}", timeout_s=5)
        await pool.close()
        # The system's certificates do not know this one: refused, never sent in the clear.
        untrusting = HttpPool(url + "/base")
        with pytest.raises(HttpFailure, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.post("/x", b"{}", timeout_s=5)
        await untrusting.close()
    assert first.body == b'{"ok":true}'


def _echo(answer: HttpAnswer) -> object:
    return json.loads(answer.body)["echo"]


def _port(answer: HttpAnswer) -> int:
    port: int = json.loads(answer.body)["port"]
    return port
