"""The sandbox's settings object: read once from `TGGATE_*` variables, like the product's.

These configure the reference modules and fakes only; tggate itself never reads them
(docs/configuration.md lists both sets).
"""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tggate.settings import SettingsError

__all__ = ["SandboxSettings", "load_sandbox_settings"]


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGGATE_", frozen=True, extra="ignore")

    reference_jwt_secret: SecretStr = Field(
        default=SecretStr("tggate-reference-demo-secret-change-me-0123456789"),
        description="the HS256 key both reference modules sign and verify JWTs with",
    )
    auth_public_url: AnyHttpUrl | None = Field(
        default=None,
        description="where people open the reference Authorization module's login pages "
        "(default: its own URL)",
    )
    github_client_id: str | None = Field(
        default=None, description="GitHub OAuth app's client id (unset: GitHub not offered)"
    )
    github_client_secret: SecretStr | None = Field(
        default=None, description="GitHub OAuth app's client secret"
    )
    github_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://github.com"),
        description="GitHub's OAuth endpoints (the fake provider's in the sandbox)",
    )
    github_api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.github.com"), description="GitHub's user API"
    )
    yandex_client_id: str | None = Field(
        default=None, description="Yandex ID OAuth app's client id (unset: Yandex not offered)"
    )
    yandex_client_secret: SecretStr | None = Field(
        default=None, description="Yandex ID OAuth app's client secret"
    )
    yandex_oauth_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://oauth.yandex.ru"), description="Yandex ID's OAuth endpoints"
    )
    yandex_info_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://login.yandex.ru/info"), description="Yandex ID's user API"
    )

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        values = [self.reference_jwt_secret.get_secret_value()]
        for secret in (self.github_client_secret, self.yandex_client_secret):
            if secret is not None:
                values.append(secret.get_secret_value())
        return values


def load_sandbox_settings(**overrides: object) -> SandboxSettings:
    """Read the environment once; a bad value becomes one line naming the variable."""
    try:
        return SandboxSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = "TGGATE_" + "_".join(str(part) for part in first["loc"]).upper()
        raise SettingsError(f"{name}: {first['msg']}") from None
