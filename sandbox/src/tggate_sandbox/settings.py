"""The sandbox's settings object: read once from `TGGATE_*` variables, like the product's.

These configure the reference modules and fakes only; tggate itself never reads them
(docs/configuration.md lists both sets).
"""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tggate.settings import SettingsError
from tggate_sandbox.credentials import MIN_SECRET_BYTES

__all__ = ["SandboxSettings", "load_sandbox_settings"]


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGGATE_", frozen=True, extra="ignore")

    # Issue 9: no built-in default; with a published one anybody could sign a teacher's token.
    reference_jwt_secret: SecretStr | None = Field(
        default=None,
        description="the HS256 key both reference modules sign and verify JWTs with "
        f"(required, at least {MIN_SECRET_BYTES} bytes; `tggate demo` makes one)",
    )
    test_api_secret: SecretStr | None = Field(
        default=None,
        description="turns the sandbox servers' test APIs on; callers send it in the "
        f"X-Test-Api-Secret header (unset: no test API; at least {MIN_SECRET_BYTES} bytes)",
    )
    reference_admin_secret: SecretStr | None = Field(
        default=None,
        description="the reference Main module's admin password: signs in on /notify and is "
        "the X-Admin-Secret header of POST /notifications (unset: both are off; at least "
        f"{MIN_SECRET_BYTES} bytes)",
    )
    reference_service_token: SecretStr | None = Field(
        default=None,
        description="the credential tggate's bulk notification mode presents to the reference "
        "Main module's notification feed (GET /notifications; unset: the feed is off; at "
        f"least {MIN_SECRET_BYTES} bytes; tggate's TGGATE_MAIN_SERVICE_TOKEN must equal it)",
    )
    reference_demo_sign_in: bool = Field(
        default=True,
        description="the reference Authorization module's demo sign-in (anyone by a typed "
        "name; never in front of real people)",
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

    @field_validator(
        "reference_jwt_secret",
        "test_api_secret",
        "reference_admin_secret",
        "reference_service_token",
    )
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        values = []
        for secret in (
            self.reference_jwt_secret,
            self.test_api_secret,
            self.reference_admin_secret,
            self.reference_service_token,
            self.github_client_secret,
            self.yandex_client_secret,
        ):
            if secret is not None:
                values.append(secret.get_secret_value())
        return values

    def require_jwt_secret(self) -> str:
        """The reference modules refuse to start without their signing key (issue 9)."""
        if self.reference_jwt_secret is None:
            raise SettingsError(
                "TGGATE_REFERENCE_JWT_SECRET is not set (the reference modules' JWT key, "
                f"at least {MIN_SECRET_BYTES} bytes)"
            )
        return self.reference_jwt_secret.get_secret_value()

    def optional_test_api_secret(self) -> str | None:
        """The test API secret, or None: no test API."""
        return None if self.test_api_secret is None else self.test_api_secret.get_secret_value()

    def optional_admin_secret(self) -> str | None:
        """The reference Main module's admin secret, or None: no admin page nor API."""
        secret = self.reference_admin_secret
        return None if secret is None else secret.get_secret_value()

    def optional_service_token(self) -> str | None:
        """The reference Main module's feed credential, or None: no feed."""
        token = self.reference_service_token
        return None if token is None else token.get_secret_value()


def load_sandbox_settings(**overrides: object) -> SandboxSettings:
    """Read the environment once; a bad value becomes one line naming the variable."""
    try:
        return SandboxSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = "TGGATE_" + "_".join(str(part) for part in first["loc"]).upper()
        raise SettingsError(f"{name}: {first['msg']}") from None
