"""Keep-alive HTTP/1.1 connections to one origin: POST a body, get the status and the body back.

The Telegram Client makes two or three requests per command (getUpdates, Bot Logic's
/v1/commands, sendMessage), and per request aiohttp's client spent 2-3 times the CPU of this one:
~140 µs against ~45 µs back to back, ~560 µs against ~240 µs at a request every 10 ms, most of
the client's CPU per command (bench/README.md, "Profiles", issue 11). Its two peers need little
of what aiohttp does, so this does only that:

- POST with a Content-Length body; HTTP/1.1 keeps the connection open for the next request;
- answers with Content-Length or chunked, parsed by httptools (uvicorn's parser, installed with
  tggate); an answer cut short by the closing connection is a failure;
- at most `max_connections` open; requests beyond them wait for one;
- a connection is used again only after a complete answer that did not ask to close it, and only
  within `idle_s` of its last answer; one that failed, timed out or was cancelled mid-request is
  closed, so a late answer can never be read as the next request's;
- https:// through the standard ssl module and the system's certificates.

No redirects, cookies, proxies or compression: neither the Bot API nor Bot Logic uses them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = ["HttpAnswer", "HttpFailure", "HttpPool"]

# Idle connections older than this are closed rather than used (aiohttp's default too): servers
# close theirs after a while, and a request written just as the server closes is lost.
_IDLE_S = 15.0
_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")


class HttpFailure(Exception):
    """No answer: the connection failed or closed, the answer was unreadable, or time ran out."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the answer it is waiting for, if any."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpAnswer] | None = None
        self._body: list[bytes] = []
        self._keep_alive = False
        self.closed = False
        self.used_at = 0.0

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is one, though not an asyncio.Transport subclass).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            self.close()  # nobody asked: whatever this is, the connection is not to be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HttpFailure(f"unreadable answer: {error}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost fails what is waiting

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        self._fail(HttpFailure(f"the connection closed before the answer{detail}"))

    # ---- httptools callbacks ----

    def on_message_begin(self) -> None:
        if self._answer is None:
            # An answer nobody asked for (one too many, in the same packet as the one asked
            # for): whatever follows on this connection cannot be trusted to be ours.
            self.close()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        answer, self._answer = self._answer, None
        body, self._body = b"".join(self._body), []
        if answer is not None and not answer.done():
            answer.set_result(HttpAnswer(self._parser.get_status_code(), body))

    # ---- the pool's side ----

    def send(self, request: bytes) -> asyncio.Future[HttpAnswer]:
        assert self._transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self._keep_alive = False
        self._transport.write(request)
        return self._answer

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive and self._answer is None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: HttpFailure) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)


class HttpPool:
    """Keep-alive connections to the origin of `base_url`; paths are relative to its path."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        idle_s: float = _IDLE_S,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must have no user, query or fragment")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (
            (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        )
        self._prefix = parts.path.rstrip("/")
        fixed = {
            "Host": parts.netloc,
            "User-Agent": "tggate",
            "Accept": "application/json",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        for name, value in fixed.items():
            if _FORBIDDEN_IN_HEADERS & set(name + value):
                raise ValueError(f"header {name!r} has a line break in it")
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: deque[_Connection] = deque()
        self._idle_s = idle_s
        self._closed = False

    async def post(self, path: str, body: bytes, *, timeout_s: float) -> HttpAnswer:
        """POST `body` (JSON) to `path`; the answer, whatever its status, or `HttpFailure`."""
        if self._closed:
            raise HttpFailure("the connection pool is closed")
        request = (
            f"POST {self._prefix}{path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        async with self._slots:
            connection: _Connection | None = None
            answer: HttpAnswer | None = None
            try:
                async with asyncio.timeout(timeout_s):
                    connection = await self._connection()
                    answer = await connection.send(request)
            except TimeoutError:
                raise HttpFailure(f"no answer within {timeout_s:g} s") from None
            except (OSError, ssl.SSLError) as error:
                raise HttpFailure(f"{type(error).__name__}: {error}") from None
            finally:
                if connection is not None:
                    if answer is not None and connection.reusable and not self._closed:
                        connection.used_at = time.monotonic()
                        self._idle.append(connection)
                    else:
                        connection.close()
            return answer

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used one
            if not connection.closed and now - connection.used_at < self._idle_s:
                return connection
            connection.close()
        _, connection = await asyncio.get_running_loop().create_connection(
            _Connection,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._host if self._ssl is not None else None,
        )
        return connection

    async def close(self) -> None:
        """Close every idle connection; those in use close when their request ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        await asyncio.sleep(0)  # let the transports finish closing
