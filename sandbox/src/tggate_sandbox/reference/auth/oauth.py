"""The OAuth 2.0 authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636): GitHub, Yandex ID.

`OAuthProviderConfig` says where a provider lives; `github_config` and `yandex_config` fill in the
real endpoints (or, with other base URLs, the local fake provider's). `OAuthProvider` is the
adapter: it builds the authorize URL and turns a callback's `code` into the provider's user,
translating every failure (transport, timeout, an OAuth error, a strange answer) into one
`ProviderError`.
A fresh Authlib client per exchange: the client keeps the token it fetched, so one shared client
would mix up concurrent logins.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

    from tggate_sandbox.settings import SandboxSettings

__all__ = [
    "OAuthProvider",
    "OAuthProviderConfig",
    "ProviderError",
    "ProviderUser",
    "github_config",
    "providers_from_settings",
    "yandex_config",
]


# Authlib and httpx are imported on the first exchange, not with the module: together they cost
# the Authorization module's start (and the fake provider's, which reads the configs below)
# half a CPU-second, and most runs never log in through a provider (issue 11, item 7).
@functools.cache
def _authlib() -> tuple[type[AsyncOAuth2Client], type[OAuthError]]:
    """Authlib's httpx client and its OAuthError."""
    import authlib.deprecate

    with warnings.catch_warnings():
        # Authlib ≥ 1.8 warns on import when it falls back from httpx2 to httpx
        # (authlib/authlib#904); httpx is this project's HTTP client, and the fallback is the same
        # API. `authlib.deprecate` is imported first so that its own "always" filter is installed
        # before this "ignore".
        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
    return AsyncOAuth2Client, OAuthError


@functools.cache
def _provider_io_errors() -> tuple[type[Exception], ...]:
    """What talking to a provider may raise besides OAuthError: transport errors and timeouts
    (httpx's, and httpx2's when Authlib runs on it), an HTTP error status, and ValueError /
    TypeError / KeyError for an answer of the wrong shape (Authlib parses the token answer before
    we see it)."""
    import httpx

    errors: list[type[Exception]] = [httpx.HTTPError]
    try:
        import httpx2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pass
    else:
        errors.append(httpx2.HTTPError)
    return (*errors, ValueError, TypeError, KeyError)


@dataclass(frozen=True, slots=True)
class OAuthProviderConfig:
    """One OAuth 2.0 provider as registered for this module (client id/secret from the provider)."""

    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    userinfo_url: str
    scope: str | None = None
    # Default: {public_url}/oauth/{name}/callback, which must be registered at the provider.
    redirect_url: str | None = None
    # How the access token is presented to the user endpoint: Yandex's /info wants "OAuth <token>".
    userinfo_auth_scheme: str = "Bearer"
    # Both GitHub and Yandex accept the client credentials in the token request's form body.
    token_endpoint_auth_method: str = "client_secret_post"


def github_config(
    client_id: str,
    client_secret: str,
    *,
    base_url: str = "https://github.com",
    api_url: str = "https://api.github.com",
    scope: str | None = "read:user",
    redirect_url: str | None = None,
) -> OAuthProviderConfig:
    """A GitHub OAuth App: authorize and token under `base_url`, the user at `{api_url}/user`."""
    base, api = base_url.rstrip("/"), api_url.rstrip("/")
    return OAuthProviderConfig(
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{base}/login/oauth/authorize",
        token_url=f"{base}/login/oauth/access_token",
        userinfo_url=f"{api}/user",
        scope=scope,
        redirect_url=redirect_url,
    )


def yandex_config(
    client_id: str,
    client_secret: str,
    *,
    oauth_url: str = "https://oauth.yandex.ru",
    info_url: str = "https://login.yandex.ru/info",
    scope: str | None = None,
    redirect_url: str | None = None,
) -> OAuthProviderConfig:
    """A Yandex ID app; without `scope` the token gets the rights the app was registered with."""
    oauth = oauth_url.rstrip("/")
    return OAuthProviderConfig(
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{oauth}/authorize",
        token_url=f"{oauth}/token",
        userinfo_url=f"{info_url}?format=json",
        scope=scope,
        redirect_url=redirect_url,
        userinfo_auth_scheme="OAuth",
    )


def providers_from_settings(settings: SandboxSettings) -> dict[str, OAuthProviderConfig]:
    """The providers this module offers: those configured with a client id and secret."""
    providers: dict[str, OAuthProviderConfig] = {}
    if settings.github_client_id and settings.github_client_secret:
        providers["github"] = github_config(
            settings.github_client_id,
            settings.github_client_secret.get_secret_value(),
            base_url=str(settings.github_url).rstrip("/"),
            api_url=str(settings.github_api_url).rstrip("/"),
        )
    if settings.yandex_client_id and settings.yandex_client_secret:
        providers["yandex"] = yandex_config(
            settings.yandex_client_id,
            settings.yandex_client_secret.get_secret_value(),
            oauth_url=str(settings.yandex_oauth_url).rstrip("/"),
            info_url=str(settings.yandex_info_url),
        )
    return providers


@dataclass(frozen=True, slots=True)
class ProviderUser:
    """The person as the provider knows them: a stable id, and a name to show."""

    id: str
    login: str | None
    name: str


class ProviderError(Exception):
    """The provider could not be asked or refused the exchange; the message is safe to log."""


class OAuthProvider:
    """The authorization-code flow with one provider."""

    def __init__(
        self, name: str, config: OAuthProviderConfig, *, redirect_url: str, timeout_s: float
    ) -> None:
        self.name = name
        self._config = config
        self._redirect_url = config.redirect_url or redirect_url
        self._timeout_s = timeout_s

    def _client(self) -> Any:
        import httpx

        client_class, _ = _authlib()
        return client_class(
            client_id=self._config.client_id,
            client_secret=self._config.client_secret,
            token_endpoint_auth_method=self._config.token_endpoint_auth_method,
            scope=self._config.scope,
            redirect_uri=self._redirect_url,
            code_challenge_method="S256",
            timeout=httpx.Timeout(self._timeout_s),
        )

    async def authorization_url(self, *, state: str, code_verifier: str) -> str:
        """Where to send the person: the provider's consent page, with state and S256 challenge."""
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                self._config.authorize_url, state=state, code_verifier=code_verifier
            )
        return str(url)

    async def fetch_user(self, *, code: str, code_verifier: str) -> ProviderUser:
        """Exchange the callback's code for a token, then ask who it belongs to."""
        _, oauth_error = _authlib()
        io_errors = _provider_io_errors()
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    self._config.token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            except oauth_error as error:
                raise ProviderError(f"{self.name} token endpoint: {error.error}") from None
            except io_errors as error:
                raise ProviderError(f"{self.name} token endpoint: {type(error).__name__}") from None
            access_token = token.get("access_token") if isinstance(token, Mapping) else None
            if not isinstance(access_token, str) or not access_token:
                raise ProviderError(f"{self.name} token endpoint: no access_token")
            try:
                # `request`, not `get`: only it takes withhold_token (our own header instead of
                # Authlib's Bearer, which Yandex's /info does not take).
                answer = await client.request(
                    "GET",
                    self._config.userinfo_url,
                    headers={
                        "Authorization": f"{self._config.userinfo_auth_scheme} {access_token}",
                        "Accept": "application/json",
                    },
                    withhold_token=True,
                )
                data = answer.json() if answer.status_code == 200 else None
            except io_errors as error:
                raise ProviderError(f"{self.name} user endpoint: {type(error).__name__}") from None
        if not isinstance(data, Mapping):
            raise ProviderError(f"{self.name} user endpoint: HTTP {answer.status_code}")
        return _user_from(data, provider=self.name)


def _user_from(data: Mapping[str, Any], *, provider: str) -> ProviderUser:
    """GitHub's /user (`id`, `login`, `name`) or Yandex's /info (`id`, `login`, `real_name`, …)."""
    raw_id = data.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or str(raw_id) == "":
        raise ProviderError(f"{provider} user endpoint: no id")
    login = data.get("login")
    login = login if isinstance(login, str) and login else None
    for key in ("name", "real_name", "display_name"):
        name = data.get(key)
        if isinstance(name, str) and name.strip():
            return ProviderUser(id=str(raw_id), login=login, name=name.strip())
    return ProviderUser(id=str(raw_id), login=login, name=login or f"{provider}:{raw_id}")
