"""What a Redis server was asked, seen by the server itself (MONITOR), for two kinds of proof:

- round trips: how many commands a client sent between two markers;
- slots: every command, and every command a script ran, stays in one Cluster hash slot (a
  script over two slots would be refused by a Cluster with CROSSSLOT).

`watch_redis(url)` starts a MONITOR connection; `stop()` sends a marker from another connection
and reads until the marker arrives, so nothing the test caused is missed and nothing is timed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.crc import key_slot

__all__ = ["Monitored", "RedisWatch", "keys_of", "watch_redis"]

_LINE = re.compile(rb"^\+(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$")
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _resp(*args: bytes) -> bytes:
    """One command in the Redis protocol."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _unescape(text: bytes) -> bytes:
    """Undo MONITOR's quoting (sdscatrepr): \\" \\\\ \\n … and \\xNN."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i : i + 1]
        if char != b"\\":
            out += char
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == b"x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out += _ESCAPES.get(nxt, nxt)
            i += 2
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Monitored:
    """One command the server ran: who sent it ("lua" for a script's own) and its arguments."""

    source: str
    args: tuple[bytes, ...]

    @property
    def name(self) -> str:
        return self.args[0].decode().lower()

    @property
    def from_script(self) -> bool:
        return self.source == "lua"


@dataclass
class RedisWatch:
    url: str
    seen: list[Monitored] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _marker: bytes = b""
    _marked: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        parts = urlsplit(self.url)
        self._reader, self._writer = await asyncio.open_connection(parts.hostname, parts.port)
        if parts.password:
            auth = [b"AUTH", *([parts.username.encode()] if parts.username else [])]
            self._writer.write(_resp(*auth, unquote(parts.password).encode()))
            assert (await self._reader.readline()).startswith(b"+OK"), "AUTH refused"
        self._writer.write(_resp(b"MONITOR"))
        await self._writer.drain()
        assert (await self._reader.readline()).startswith(b"+OK")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            found = _LINE.match(line.rstrip(b"\r\n"))
            if found is None:
                continue
            source = found.group(3).decode()
            args = tuple(_unescape(arg) for arg in _ARG.findall(found.group(4)))
            if self._marker and args[:2] == (b"ECHO", self._marker):
                self._marked.set()
                continue
            self.seen.append(Monitored(source, args))

    async def mark(self) -> None:
        """Wait until the server has shown everything sent before this call."""
        self._marker = secrets.token_hex(8).encode()
        self._marked.clear()
        client = Redis.from_url(self.url)
        try:
            await client.echo(self._marker)
        finally:
            await client.aclose()
        await asyncio.wait_for(self._marked.wait(), timeout=30)

    async def stop(self) -> None:
        await self.mark()
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()

    def clear(self) -> None:
        self.seen.clear()

    def from_clients(self) -> list[Monitored]:
        """The commands clients sent (not those scripts ran)."""
        return [m for m in self.seen if not m.from_script]


@asynccontextmanager
async def watch_redis(url: str) -> AsyncIterator[RedisWatch]:
    watch = RedisWatch(url)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


# Commands whose arguments name no key (or that only the tests send).
_KEYLESS = frozenset(
    {
        "ping", "echo", "info", "script", "client", "hello", "select", "flushdb", "flushall",
        "monitor", "command", "config", "dbsize", "time", "auth", "cluster", "readonly",
    }
)  # fmt: skip


async def keys_of(client: Redis, commands: Iterable[Monitored]) -> list[tuple[str, list[bytes]]]:
    """Each command's keys, as the server itself finds them (COMMAND GETKEYS)."""
    found: list[tuple[str, list[bytes]]] = []
    for command in commands:
        if command.name in _KEYLESS:
            continue
        if command.name in ("evalsha", "eval"):
            count = int(command.args[2])
            found.append((command.name, list(command.args[3 : 3 + count])))
            continue
        keys = await client.execute_command("COMMAND GETKEYS", *command.args)
        found.append((command.name, [k if isinstance(k, bytes) else k.encode() for k in keys]))
    return found


async def cross_slot_commands(client: Redis, seen: Sequence[Monitored]) -> list[str]:
    """Commands (a client's, or a script's own) whose keys lie in more than one slot, or a
    script's command in another slot than the script's keys."""
    problems: list[str] = []
    script_slot: int | None = None
    for command in seen:
        keys = [k for _, ks in await keys_of(client, [command]) for k in ks]
        slots = {key_slot(key) for key in keys}
        if len(slots) > 1:
            problems.append(f"{command.name} over {len(slots)} slots: {keys[:4]}")
        if command.from_script:
            if script_slot is not None and slots - {script_slot}:
                problems.append(f"a script's {command.name} left its slot: {keys[:4]}")
        elif command.name in ("evalsha", "eval"):
            script_slot = next(iter(slots)) if slots else None
    return problems
