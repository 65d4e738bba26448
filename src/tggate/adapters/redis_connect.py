"""`TGGATE_REDIS_URL` → a redis-py client (deploy/redis.conf shows each kind).

    redis://[user:password@]host:6379/0          one server over TCP
    rediss://[user:password@]host:6380/0         the same over TLS (?ssl_ca_certs=/path/ca.pem …)
    unix://[user:password@]/run/redis.sock?db=0  one server over a Unix socket
    redis+sentinel://[user:password@]h1:26379,h2:26379/service?db=0
                                                 the master Sentinel names for `service`
    redis+cluster://[user:password@]h1:7000,h2:7001
                                                 a Cluster, found from any of its nodes
    rediss+sentinel://…, rediss+cluster://…      the same over TLS

The user and password are better given as TGGATE_REDIS_USERNAME / TGGATE_REDIS_PASSWORD (they
take precedence): a URL ends up in process listings and shell histories. Sentinels that ask for
a password of their own get TGGATE_REDIS_SENTINEL_PASSWORD. Query parameters are redis-py's
connection options (`ssl_ca_certs`, `ssl_cert_reqs`, `ssl_certfile`, `ssl_keyfile`,
`ssl_check_hostname`, `db` …).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from tggate.adapters.redis_pool import LeanPool
from tggate.adapters.redis_store import RedisClient

__all__ = [
    "RedisOptions",
    "RedisUrlError",
    "check_redis_url",
    "connect_redis",
    "describe_redis_url",
]

_SENTINEL_PORT = 26379
_SERVER_PORT = 6379
_SCHEMES = ("redis", "rediss", "unix")
_SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
# Query parameters passed on to redis-py, with their types (the rest is refused, so a typo does
# not pass silently).
_QUERY_OPTIONS: Mapping[str, type] = {
    "db": int,
    "ssl_ca_certs": str,
    "ssl_ca_path": str,
    "ssl_cert_reqs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_check_hostname": bool,
}


class RedisUrlError(ValueError):
    """TGGATE_REDIS_URL cannot be used; the message never repeats a password."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisOptions:
    """How to connect, besides the URL (from the settings)."""

    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    timeout_s: float = 2.0
    max_connections: int = 64


class _BlockingSentinelPool(SentinelConnectionPool, LeanPool):
    """Sentinel's master discovery with a blocking pool: a burst waits for a free connection
    instead of failing with MaxConnectionsError (as for one server)."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    scheme: str
    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    service: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.scheme.startswith("rediss")


def describe_redis_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}:***@{hosts}" if at else hosts
    return parts._replace(netloc=netloc, query="").geturl()


def _split_hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts: list[tuple[str, int]] = []
    for item in netloc.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            hosts.append((host, int(port) if port else default_port))
        except ValueError:
            raise RedisUrlError(f"'{item}' is not host:port") from None
    if not hosts:
        raise RedisUrlError("no host given")
    return hosts


def _options(query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        kind = _QUERY_OPTIONS.get(name)
        if kind is None:
            raise RedisUrlError(f"unknown option '{name}' (known: {', '.join(_QUERY_OPTIONS)})")
        if kind is bool:
            options[name] = value.lower() in ("1", "true", "yes", "on")
        elif kind is int:
            try:
                options[name] = int(value)
            except ValueError:
                raise RedisUrlError(f"option '{name}' must be a number") from None
        else:
            options[name] = value
    return options


def _parse(url: str) -> _Parsed:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise RedisUrlError("not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in (*_SENTINEL_SCHEMES, *_CLUSTER_SCHEMES):
        raise RedisUrlError(f"unknown scheme '{scheme}'")
    userinfo, at, netloc = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinel = scheme in _SENTINEL_SCHEMES
    hosts = _split_hosts(netloc, _SENTINEL_PORT if sentinel else _SERVER_PORT)
    service = unquote(parts.path.strip("/"))
    if sentinel and not service:
        raise RedisUrlError("name the Sentinel service as the path: …/service")
    options = _options(parts.query)
    if not sentinel and options.pop("db", 0):
        raise RedisUrlError("a Cluster has database 0 only")
    return _Parsed(scheme, hosts, username, password, service, options)


def check_redis_url(url: str) -> None:
    """Raise `RedisUrlError` unless `url` is one `connect_redis` can use."""
    scheme = url.partition("://")[0].lower()
    if scheme in _SCHEMES:
        try:
            BlockingConnectionPool.from_url(url)  # parses only: nothing connects yet
        except ValueError as error:
            raise RedisUrlError(str(error).replace(url, describe_redis_url(url))) from None
        return
    _tls_options(_parse(url))


def _tls_options(parsed: _Parsed) -> dict[str, Any]:
    tls = {k: v for k, v in parsed.options.items() if k.startswith("ssl_")}
    if tls and not parsed.tls:
        raise RedisUrlError("ssl_… options need a rediss+… scheme")
    return {"ssl": True, **tls} if parsed.tls else {}


@asynccontextmanager
async def connect_redis(url: str, options: RedisOptions) -> AsyncIterator[RedisClient]:
    """A client for `url`, closed (with the Sentinel connections) on exit. Nothing connects
    before the first command, so Bot Logic starts while Redis is still down (/readyz says so)."""
    common: dict[str, Any] = {
        "socket_timeout": options.timeout_s,
        "socket_connect_timeout": options.timeout_s,
    }
    scheme = url.partition("://")[0].lower()
    if scheme in _SCHEMES:
        # A blocking pool: a burst waits for a free connection instead of failing with
        # MaxConnectionsError (redis-py's default pool raises once it has 100 connections).
        # LeanPool is redis-py's, with less Python per command (tggate.adapters.redis_pool).
        try:
            pool = LeanPool.from_url(
                url,
                max_connections=options.max_connections,
                timeout=options.timeout_s * 5,
                health_check_interval=30,
                **common,
            )
        except ValueError as error:
            raise RedisUrlError(str(error).replace(url, describe_redis_url(url))) from None
        # After from_url, which lets the URL's own user and password win over arguments.
        pool.connection_kwargs.update(_credentials(None, None, options))
        client = Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it
        try:
            yield client
        finally:
            await client.aclose()
        return
    parsed = _parse(url)
    credentials = _credentials(parsed.username, parsed.password, options)
    tls = _tls_options(parsed)
    if parsed.scheme in _CLUSTER_SCHEMES:
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.hosts],
            # Per node. The Cluster client refuses a command beyond it rather than waiting;
            # Bot Logic's own bounds (chats in flight, cycle workers) keep far below this.
            max_connections=options.max_connections * 4,
            **common,
            **credentials,
            **tls,
        )
        try:
            yield cluster
        finally:
            await cluster.aclose()
        return
    sentinel_kwargs: dict[str, Any] = {**common, **tls}
    if options.sentinel_password:
        sentinel_kwargs["password"] = options.sentinel_password
    # redis-py's Sentinel carries no annotations.
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        parsed.hosts,
        sentinel_kwargs=sentinel_kwargs,
        db=parsed.options.get("db", 0),
        health_check_interval=30,
        **common,
        **credentials,
        **tls,
    )
    master = sentinel.master_for(
        parsed.service,
        redis_class=Redis,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=options.max_connections,
        timeout=options.timeout_s * 5,
    )
    try:
        yield master
    finally:
        await master.aclose()
        await sentinel.aclose()


def _credentials(
    username: str | None, password: str | None, options: RedisOptions
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if options.username or username:
        found["username"] = options.username or username or ""
    if options.password or password:
        found["password"] = options.password or password or ""
    return found
