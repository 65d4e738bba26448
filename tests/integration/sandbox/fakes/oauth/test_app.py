"""The fake OAuth provider sends people back only to the redirect URIs a client registered.

Issue 9: it redirected to any `redirect_uri`, so a link to it could bounce a person (and the
authorization code) to any site. The GitHub/Yandex flows themselves are tested end to end with
the reference Authorization module (tests/integration/sandbox/reference/auth/test_oauth.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.oauth import OAuthClient, create_app
from tggate_sandbox.fakes.oauth.app import clients_from_settings
from tggate_sandbox.settings import load_sandbox_settings

CLIENT_ID = "tggate-test-client"
AUTH_URL = "http://auth.example"
AUTHORIZE = {"github": "/github/login/oauth/authorize", "yandex": "/yandex/authorize"}


@pytest.fixture
def provider_url() -> Iterator[str]:
    client = OAuthClient.of_auth_module("client-secret", AUTH_URL)
    app = create_app(clients={CLIENT_ID: client}, test_api_secret=TEST_API_SECRET)
    with run_asgi(app) as url:
        yield url


def authorize_query(redirect_uri: str) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "redirect_uri": redirect_uri, "state": "s", "scope": ""}


@pytest.mark.parametrize("flavor", ["github", "yandex"])
def test_the_registered_callback_gets_the_consent_page_and_the_code(
    provider_url: str, flavor: str
) -> None:
    callback = f"{AUTH_URL}/oauth/{flavor}/callback"
    with httpx.Client(base_url=provider_url) as browser:
        page = browser.get(AUTHORIZE[flavor], params=authorize_query(callback))
        assert page.status_code == 200 and 'id="consent-form"' in page.text
        allowed = browser.post(
            AUTHORIZE[flavor],
            data={**authorize_query(callback), "decision": "allow", "user": "1001"},
        )
    assert allowed.status_code == 302
    assert allowed.headers["location"].startswith(f"{callback}?code=")


@pytest.mark.parametrize("flavor", ["github", "yandex"])
@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/oauth/github/callback",
        "http://auth.example.evil.example/oauth/github/callback",
        "http://auth.example@evil.example/oauth/github/callback",
        "https://auth.example/oauth/github/callback",
        "http://auth.example/oauth/github/callback/",
        "http://auth.example/oauth/github/callback?next=http://evil.example",
        "http://auth.example/oauth/github/callback/../../steal",
        "http://auth.example/",
    ],
)
def test_any_other_redirect_uri_is_refused_with_a_page_and_no_redirect(
    provider_url: str, flavor: str, redirect_uri: str
) -> None:
    with httpx.Client(base_url=provider_url) as browser:
        page = browser.get(AUTHORIZE[flavor], params=authorize_query(redirect_uri))
        allowed = browser.post(
            AUTHORIZE[flavor],
            data={**authorize_query(redirect_uri), "decision": "allow", "user": "1001"},
        )
        denied = browser.post(
            AUTHORIZE[flavor], data={**authorize_query(redirect_uri), "decision": "deny"}
        )
        stats = browser.get("/_test/stats", headers=TEST_API).json()
    for answer in (page, allowed, denied):
        assert answer.status_code == 400, answer.text
        assert "location" not in answer.headers
        assert "not registered" in answer.text
    assert f"{flavor}.allowed" not in stats  # no code was issued


def test_the_provider_registers_the_reference_modules_callbacks_from_the_settings() -> None:
    settings = load_sandbox_settings(
        auth_public_url="http://127.0.0.1:9001",
        github_client_id="gh",
        github_client_secret="gh-secret",
        yandex_client_id="ya",
        yandex_client_secret="ya-secret",
    )
    clients = clients_from_settings(settings)
    assert clients["gh"].redirect_uris == {"http://127.0.0.1:9001/oauth/github/callback"}
    assert clients["ya"].redirect_uris == {"http://127.0.0.1:9001/oauth/yandex/callback"}
    assert clients["gh"].secret == "gh-secret" and "gh-secret" not in repr(clients)

    one_app = load_sandbox_settings(
        github_client_id="app",
        github_client_secret="s",
        yandex_client_id="app",
        yandex_client_secret="s",
    )
    assert clients_from_settings(one_app)["app"].redirect_uris == {
        "http://127.0.0.1:8081/oauth/github/callback",  # where `tggate reference-auth` listens
        "http://127.0.0.1:8081/oauth/yandex/callback",
    }
