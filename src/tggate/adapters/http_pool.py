"""Keep-alive HTTP/1.1 connections to one origin, lean enough for a timer cycle's every chat.

The one HTTP client of the product: Bot Logic calls the Authorization and Main modules through
it (adapters/http_base.py), the Telegram Client calls the Bot API and Bot Logic through it
(client/telegram.py, client/logic_api.py). A timer cycle asks a module once per chat, 100k times a
tick, and the client makes two or three requests per command; aiohttp's client spent ~130-140 µs
of CPU on each such call, this one ~40-45 µs (issue 11, bench/README.md "Profiles"). Its peers
need little of what aiohttp does, so this does only that:

- one origin (http:// or https:// through the standard ssl module and the system's
  certificates), paths relative to the base URL's path;
- bodies of known length, answers with Content-Length or chunked, parsed by httptools (uvicorn's
  parser); an answer cut short by the closing connection is a failure;
- at most `max_connections` requests in flight, one per connection; requests beyond them wait;
- one timeout for the whole request: the wait for a connection, the connect, the answer;
- a connection is used again only after a complete answer that did not ask to close it, and only
  within `idle_s` of it; one that failed, timed out or was cancelled mid-request is dropped, so a
  late answer can never be read as the next request's;
- a connection the server closed while idle is noticed before reuse or, at worst, when the
  request on it gets no answer byte: that request is sent once more on a new connection (the
  server closed without reading it, so nothing ran twice);
- a line break in a header or the path is refused before anything is sent.

No redirects, cookies, proxies or compression: none of the peers uses them.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

__all__ = ["JSON_HEADERS", "HttpAnswer", "HttpFailure", "HttpPool"]

# What every peer is sent and answers: JSON.
JSON_HEADERS: Mapping[str, str] = {"Accept": "application/json", "Content-Type": "application/json"}

# Idle connections older than this are closed rather than reused: servers drop keep-alive
# connections after a few seconds (uvicorn after 5), and one dropped as we write costs a resend.
_IDLE_S = 2.0
# Methods whose request carries a body, so a Content-Length even when it is empty.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _unsafe(text: str) -> bool:
    """A line break would end the header line (or the request line) and start one of its own."""
    return "\r" in text or "\n" in text or "\0" in text


class HttpFailure(Exception):
    """No answer: the connection failed or closed, the answer was unreadable, time ran out, or
    the request was refused unsent."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """An answer, whatever its status; `body` as it came (contract models parse it from here)."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


class _Watchdog:
    """Fails each answer still awaited at its deadline, with one timer for all of them.

    A timer per request (created, then cancelled when the answer came, as almost every answer
    does) was a visible share of the Telegram Client's CPU, two or three times a command
    (bench/README.md, "Profiles"). This one is armed for the earliest deadline it knows of; an
    answer that comes in time only leaves the set, and the timer, when it fires, looks at what
    is still awaited, fails what is due and is armed again for the earliest one left. With
    deadlines in the order of their requests, as one pool's mostly are, it fires about once per
    timeout period, however many requests went by."""

    def __init__(self) -> None:
        self._awaited: set[_Connection] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf
        self._armed_in: asyncio.AbstractEventLoop | None = None

    def watch(self, connection: _Connection, deadline: float) -> None:
        connection.deadline = deadline
        self._awaited.add(connection)
        # A pool used from another event loop (one test after another) arms one of its own: a
        # timer of a loop that no longer runs never fires.
        if deadline < self._armed_for or connection.loop is not self._armed_in:
            self._arm(connection.loop, deadline)

    def done(self, connection: _Connection) -> None:
        self._awaited.discard(connection)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_for, self._armed_in = None, math.inf, None

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(deadline, self._fire, loop)
        self._armed_for, self._armed_in = deadline, loop

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._armed_for, self._armed_in = None, math.inf, None
        now = loop.time()
        due = [c for c in self._awaited if c.deadline <= now]
        for connection in due:
            self._awaited.discard(connection)
            connection.time_out()
        if self._awaited:
            self._arm(loop, min(c.deadline for c in self._awaited))


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the answer it is waiting for, if any."""

    def __init__(self) -> None:
        # Made by the running loop's create_connection; kept, since every lookup of the
        # running loop is a getpid() system call on Python 3.11.
        self.loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpAnswer] | None = None
        self._body: list[bytes] = []
        self._keep_alive = False
        self.got_bytes = False  # any byte of the answer to the request in flight
        self.closed = False
        self.used_at = 0.0
        self.deadline = math.inf  # of the request in flight (the pool's `_Watchdog` keeps it)

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is one, though not an asyncio.Transport subclass).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            self.close()  # nobody asked: whatever this is, the connection is not to be trusted
            return
        self.got_bytes = True
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
        self._answer = self.loop.create_future()
        self._keep_alive = self.got_bytes = False
        self._transport.write(request)
        return self._answer

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive and self._answer is None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop it now, unwritten bytes and all: it is out of step for good."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def time_out(self) -> None:
        """The request's deadline passed: its wait ends with TimeoutError (the pool drops the
        connection, as after any failure mid-request)."""
        self._fail(TimeoutError())

    def _fail(self, error: HttpFailure | TimeoutError) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)


class HttpPool:
    """At most `max_connections` keep-alive connections to the origin of `base_url`; `headers`
    go with every request; `timeout_s` bounds each request unless the request says otherwise."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 100,
        timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        idle_s: float = _IDLE_S,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must have no user, query or fragment")
        https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if https else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if https else None
        self._prefix = parts.path.rstrip("/")
        fixed = {"Host": parts.netloc, "User-Agent": "tggate", **(headers or {})}
        for name, value in fixed.items():
            if _unsafe(name) or _unsafe(value):
                raise ValueError(f"header {name!r} has a line break in it")
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._timeout_s = timeout_s
        self._idle_s = idle_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: deque[_Connection] = deque()
        self._watchdog = _Watchdog()
        self._closed = False

    async def post(self, path: str, body: bytes, *, timeout_s: float | None = None) -> HttpAnswer:
        """POST `body` to `path`: `request("POST", …)`."""
        return await self.request("POST", path, body=body, timeout_s=timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout_s: float | None = None,
    ) -> HttpAnswer:
        """Send one request (`path` with its query, relative to the base URL's path); its
        answer, whatever the status, or `HttpFailure`."""
        if self._closed:
            raise HttpFailure("the connection pool is closed")
        if _unsafe(path) or " " in path:
            raise HttpFailure("the path holds a space or a line break")
        lines = [method, " ", self._prefix, path, " HTTP/1.1\r\n", self._head]
        if headers:
            for name, value in headers.items():
                # From a peer, say a token with a line break in it: refused, never sent.
                if _unsafe(name) or _unsafe(value):
                    raise HttpFailure(f"header {name[:40]!r} holds a line break")
                lines.append(f"{name}: {value}\r\n")
        if body is not None or method in _WITH_BODY:
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        try:
            request = "".join(lines).encode("latin-1") + (body or b"")
        except UnicodeEncodeError:
            raise HttpFailure("the path or a header is not latin-1") from None
        within_s = self._timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        try:
            if self._slots.locked():
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()  # free: taken without waiting
            try:
                return await self._exchange(request, deadline)
            finally:
                self._slots.release()
        except TimeoutError:
            raise HttpFailure(f"no answer within {within_s:g} s") from None
        except OSError as error:  # connecting or writing; ssl.SSLError is one too
            raise HttpFailure(f"{type(error).__name__}: {error}") from None

    async def _exchange(self, request: bytes, deadline: float) -> HttpAnswer:
        connection = self._idle_connection()
        reused = connection is not None
        if connection is None:
            connection = await self._connect(deadline)
        watchdog = self._watchdog
        watchdog.watch(connection, deadline)
        try:
            try:
                answer = await connection.send(request)
            except HttpFailure:
                if not reused or connection.got_bytes:
                    raise
                # The server closed the idle connection as we wrote: it read nothing.
                watchdog.done(connection)
                connection = await self._connect(deadline)
                watchdog.watch(connection, deadline)
                answer = await connection.send(request)
        except BaseException:
            connection.abort()  # failed, timed out or cancelled mid-answer
            raise
        finally:
            watchdog.done(connection)
        if connection.reusable and not self._closed:
            connection.used_at = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used one
            if not connection.closed and now - connection.used_at < self._idle_s:
                return connection
            connection.close()
        return None

    async def _connect(self, deadline: float) -> _Connection:
        async with asyncio.timeout_at(deadline):
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        return connection

    async def aclose(self) -> None:
        """Close every idle connection; those in use close when their request ends."""
        self._closed = True
        self._watchdog.stop()
        while self._idle:
            self._idle.pop().close()
        await asyncio.sleep(0)  # let the transports finish closing
