"""The connection and pool classes `connect_redis` gives redis-py's single-server and Sentinel
clients: the same protocol and the same bounds and deadlines, with less Python per command.

Bot Logic's authorized action cost about 310 µs of CPU, and redis-py's own path around its two
Redis round trips was a large share of it (issue 11, bench/README.md):
- its blocking pool takes a lock, a condition, a timer and the observability recorder for every
  connection it lends, and the same again to take it back;
- its asyncio client packs commands in Python, where hiredis (installed, and used by redis-py's
  own sync client) packs them in C;
- it puts a timer on every write (on Python 3.11 `asyncio.wait_for`, a task), though a command
  within the transport's write limit, with nothing left unwritten, cannot wait.
Each class below changes only that, and leans on redis-py for everything else. With two
uvicorn settings (no proxy-headers layer in Bot Logic, no server header), they cut the CPU of
Bot Logic's authorized action by 14% (1.16× the requests per CPU-second, in runs alternating
with the code before). The Cluster client has its own per-node connection lists and is left as
it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["LEAN_CONNECTIONS", "LeanPool"]


class _Lean:
    """Mixed into a redis-py connection class (before it)."""

    # Attributes of redis-py's AbstractConnection, declared for mypy.
    socket_timeout: float | None
    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        # hiredis packs as redis-py does for what it takes (bytes, str as UTF-8, int, float;
        # tests/unit/adapters/test_redis_pack.py holds the two to the same bytes). redis-py
        # keeps the rest: a command name of several words ("SCRIPT LOAD") that it splits,
        # memoryviews, another encoding, and the DataError for what neither takes.
        name = args[0]
        if type(name) is str and " " not in name and self.encoder.encoding == "utf-8":
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return packed

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        timeout = self.socket_timeout
        if not timeout:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        if self._sent_at_once(command):
            # The write cannot wait for the socket: no timer. The health check (a PING, when
            # due) comes first, as in redis-py, under its own deadlines.
            if check_health:
                await self.check_health()  # type: ignore[attr-defined]
            await self._send_untimed(command)
            return
        # The timer keeps redis-py's deadline over the whole send (a connect and a health
        # check included): redis-py's own `wait_for`, which on Python 3.11 starts a task, is
        # on 3.12 and later this very timer.
        try:
            async with asyncio.timeout(timeout):
                await self._send_untimed(command, check_health)
        except TimeoutError:
            # redis-py has disconnected on the cancellation, as on its own timeout.
            raise RedisTimeoutError("Timeout writing to socket") from None

    async def _send_untimed(self, command: Any, check_health: bool = False) -> None:
        # Without a socket timeout redis-py writes and drains directly, with neither a task nor
        # a timer. The connection belongs to this caller until it is released.
        timeout, self.socket_timeout = self.socket_timeout, None
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        finally:
            self.socket_timeout = timeout

    def _sent_at_once(self, command: object) -> bool:
        """Whether writing `command` cannot wait: the connection is up, nothing is left
        unwritten, and the command is within the transport's limit, so `drain()` returns at
        once (a transport waits only above that limit). A pipeline's large write and a
        connect still take the timer."""
        if not self.is_connected or not isinstance(command, list):  # type: ignore[attr-defined]
            return False
        transport = self._writer.transport  # type: ignore[attr-defined]
        if transport.get_write_buffer_size():
            return False
        limit: int = transport.get_write_buffer_limits()[1]
        return sum(map(len, command)) <= limit


class _LeanConnection(_Lean, Connection):
    pass


class _LeanSSLConnection(_Lean, SSLConnection):
    pass


class _LeanUnixConnection(_Lean, UnixDomainSocketConnection):
    pass


class _LeanSentinelConnection(_Lean, SentinelManagedConnection):
    pass


class _LeanSentinelSSLConnection(_Lean, SentinelManagedSSLConnection):
    pass


# redis-py's class (as `from_url` or Sentinel picks it) → the one used instead.
LEAN_CONNECTIONS: Mapping[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _LeanConnection,
    SSLConnection: _LeanSSLConnection,
    UnixDomainSocketConnection: _LeanUnixConnection,
    SentinelManagedConnection: _LeanSentinelConnection,
    SentinelManagedSSLConnection: _LeanSentinelSSLConnection,
}


class LeanPool(BlockingConnectionPool):
    """redis-py's blocking pool, bounded the same, that lends a free connection without its
    condition, timer and recorder: those are needed only to wait for one. While all are lent,
    or someone already waits, a caller takes redis-py's own way and waits as it would, and a
    connection comes back the same way (its `notify` wakes the one waiting)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_class = LEAN_CONNECTIONS.get(self.connection_class, self.connection_class)
        self._waiting = 0

    def _redis_py_way(self) -> bool:
        """Whether lending and taking back go redis-py's way: while someone waits (its
        condition wakes them) or the pool is in maintenance (it serializes under its lock)."""
        return bool(self._waiting or self._in_maintenance)

    async def get_connection(
        self, command_name: Any = None, *keys: Any, **options: Any
    ) -> AbstractConnection:
        if self._redis_py_way() or not self.can_get_connection():
            self._waiting += 1
            try:
                waited: AbstractConnection = await super().get_connection()  # type: ignore[no-untyped-call]
                return waited
            finally:
                self._waiting -= 1
        # Nothing is awaited between the check and the taking: no other task comes between.
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        if self._redis_py_way():
            await super().release(connection)
            return
        # redis-py's ConnectionPool.release without its lock, its observability recorder
        # (this pool lends without it too, so its counts stay balanced) and its event, whose
        # one listener re-authenticates the connection: that is called directly, after, as
        # there.
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            # Still counted as lent while it disconnects, so the bound holds. One who came to
            # wait meanwhile is woken by redis-py's release, not left to wait out its timeout.
            await connection.disconnect()
            if self._redis_py_way():
                await super().release(connection)
                return
        self._in_use_connections.remove(connection)  # nothing awaited between the two moves
        self._available_connections.append(connection)
        await connection.re_auth()  # type: ignore[no-untyped-call]
