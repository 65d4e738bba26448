"""Keep-alive HTTP/1.1 connections to one module, lean enough for a timer cycle's every chat.

A timer cycle asks the Authorization or Main module once per chat, 100k times a tick; aiohttp's
client spent ~130 µs of CPU on each such call, this pool ~40 µs (issue 11: at most 100 µs per
chat in all, bench/README.md). It does only what the module adapters need: one origin (http or
https), at most `limit` connections, a whole-request timeout, bodies of known length or chunked
(parsed by httptools, uvicorn's parser). A connection the server closed while idle is noticed
before reuse or, at worst, when the request on it gets no answer byte: that request is sent once
more on a new connection (the server closed without reading it, so nothing ran twice).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpPool", "HttpPoolError", "PoolAnswer"]

# Idle connections older than this are closed rather than reused: servers drop keep-alive
# connections after a few seconds (uvicorn after 5), and one dropped as we write costs a retry.
_IDLE_S = 2.0


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text


class HttpPoolError(Exception):
    """No answer: the connection failed, closed early, or the answer was not HTTP."""


@dataclass(frozen=True, slots=True)
class PoolAnswer:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[PoolAnswer] | None = None
        self.body: list[bytes] = []
        self.got_bytes = False
        self.closed = False
        self.idle_since = time.monotonic()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(HttpPoolError("the answer is not HTTP"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpPoolError("the connection closed before the answer"))

    # -- httptools callbacks

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer, self.answer = self.answer, None
        if answer is None or answer.done():
            self.close()  # an answer nobody asked for: the connection is out of step
            return
        if not self.parser.should_keep_alive():
            self.close()
        answer.set_result(PoolAnswer(self.parser.get_status_code(), b"".join(self.body)))

    # -- use

    def send(self, request: bytes) -> asyncio.Future[PoolAnswer]:
        assert self.transport is not None
        answer: asyncio.Future[PoolAnswer] = asyncio.get_running_loop().create_future()
        self.answer, self.body, self.got_bytes = answer, [], False
        self.transport.write(request)
        return answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)


class HttpPool:
    """At most `limit` keep-alive connections to the origin of `base_url`."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (
            (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        )
        default_port = self._port == (443 if parts.scheme == "https" else 80)
        authority = self._host if default_port else f"{self._host}:{self._port}"
        self._base_path = parts.path.rstrip("/")
        self._head = f"\r\nHost: {authority}\r\nUser-Agent: tggate\r\n"
        self._limit = limit
        self._timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> PoolAnswer:
        """Send one request (`path` with its query, relative to the base URL); raises
        HttpPoolError or TimeoutError when no answer came within the timeout."""
        if _unsafe(path) or " " in path:
            raise HttpPoolError("the path holds a space or a line break")
        lines = [method, " ", self._base_path, path, " HTTP/1.1", self._head]
        if headers:
            for name, value in headers.items():
                # A line break in a value (a token with one) would start a header of its own.
                if _unsafe(name) or _unsafe(value):
                    raise HttpPoolError(f"header {name[:40]!r} holds a line break")
                lines.append(f"{name}: {value}\r\n")
        if body is not None or method in ("POST", "PUT", "PATCH", "DELETE"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        request = "".join(lines).encode("latin-1") + (body or b"")
        async with asyncio.timeout(self._timeout_s):
            return await self._exchange(request)

    async def _exchange(self, request: bytes) -> PoolAnswer:
        await self._acquire()
        try:
            connection = self._idle_connection()
            reused = connection is not None
            if connection is None:
                connection = await self._connect()
            try:
                try:
                    answer = await connection.send(request)
                except HttpPoolError:
                    if not reused or connection.got_bytes:
                        raise
                    # The server closed the idle connection as we wrote: it read nothing.
                    connection = await self._connect()
                    answer = await connection.send(request)
            except BaseException:
                connection.abort()  # a timeout or a cancel mid-answer: out of step for good
                raise
            if connection.closed or self._closed:
                connection.close()
            else:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            return answer
        finally:
            self._release()

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < _IDLE_S:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, self._host, self._port, ssl=self._ssl
            )
        except OSError as error:
            raise HttpPoolError(f"cannot connect: {type(error).__name__}") from None
        return connection

    async def _acquire(self) -> None:
        """One of `limit` slots (a request in flight, on one connection), waiting for it."""
        if self._closed:
            raise HttpPoolError("the pool is closed")
        if self._busy < self._limit and not self._waiters:
            self._busy += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot is handed over by `_release`
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot we will not use: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()
