"""GitHub and Yandex ID logins through the fake OAuth provider, all over real HTTP
(docs/scenarios.md#a4, #a5).

The fake provider and the Authorization module run under uvicorn; the bot side calls
docs/openapi/auth.yaml, the person's browser is an httpx client that keeps cookies and follows each
redirect by hand. The module's public URL is a name (`auth.example`): the browser strips it from the
links and redirects and asks the real server, as a reverse proxy would.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from tests.support.clock import FakeClock
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.oauth import DEMO_USERS, FakeUser, OAuthClient, auth_configs
from tggate_sandbox.fakes.oauth import create_app as create_provider_app
from tggate_sandbox.fakes.oauth.grants import s256
from tggate_sandbox.reference.auth import OAuthProviderConfig, create_app

SECRET = "oauth-test-secret-0123456789abcdef0123456789"
PUBLIC_URL = "http://auth.example"
CLIENT_ID = "tggate-test-client"
CLIENT_SECRET = "tggate-test-client-secret"
START = 1_700_000_000.0

PROVIDERS = ["github", "yandex"]


@dataclass
class World:
    bot: httpx.AsyncClient  # Bot Logic's side of docs/openapi/auth.yaml
    browser: httpx.AsyncClient  # the person's browser on the module's pages
    provider: httpx.AsyncClient  # the same person's browser on the provider's pages
    provider_url: str
    clock: FakeClock

    async def start(self, token: str, provider: str, chat_id: int = 42) -> str:
        """Start a login as Bot Logic does; the path of the link the person is shown."""
        answer = await self.bot.post(
            "/login", json={"login_token": token, "type": provider, "chat_id": chat_id}
        )
        assert answer.status_code == 200, answer.text
        url: str = answer.json()["url"]
        assert url.startswith(f"{PUBLIC_URL}/oauth/{provider}/start?ref=")
        return url.removeprefix(PUBLIC_URL)

    async def check(self, token: str) -> dict[str, Any]:
        answer = await self.bot.post("/login/check", json={"login_token": token})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def to_provider(self, link: str, browser: httpx.AsyncClient | None = None) -> str:
        """Open the bot's link; the provider's authorize URL it redirects to."""
        opened = await (browser or self.browser).get(link)
        assert opened.status_code == 303, opened.text
        location = opened.headers["location"]
        assert location.startswith(self.provider_url)
        return location

    async def consent(
        self, authorize_url: str, *, decision: str = "allow", user: int = 1001
    ) -> str:
        """Answer the provider's consent page; the callback URL (a path on the module)."""
        page = await self.provider.get(authorize_url)
        assert page.status_code == 200, page.text
        assert 'id="consent-form"' in page.text and f'id="app-name">{CLIENT_ID}<' in page.text
        action = re.search(r'<form id="consent-form" method="post" action="([^"]+)"', page.text)
        assert action is not None
        fields = {
            name: html.unescape(value)
            for name, value in re.findall(
                r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text
            )
        }
        answered = await self.provider.post(
            httpx.URL(authorize_url).join(action.group(1)),
            data={**fields, "decision": decision, "user": str(user)},
        )
        assert answered.status_code == 302, answered.text
        callback: str = answered.headers["location"]
        assert callback.startswith(PUBLIC_URL)
        return callback.removeprefix(PUBLIC_URL)

    async def confirm(self, decision: str = "yes") -> httpx.Response:
        page = await self.browser.get("/confirm")
        assert page.status_code == 200, page.text
        return await self.browser.post(
            "/confirm",
            data={
                "csrf": field(page.text, "csrf"),
                "ticket": field(page.text, "ticket"),
                "decision": decision,
            },
        )


def field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} field in the page"
    return html.unescape(found.group(1))


def reason(response: httpx.Response) -> str | None:
    found = re.search(r'id="error"[^>]*data-reason="([^"]+)"', response.text)
    return found.group(1) if found else None


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )
    return decoded


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = {**query(url), **changes}
    return urlunsplit(parts._replace(query=urlencode(params)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def users() -> list[FakeUser]:
    return list(DEMO_USERS)


@pytest.fixture
def provider_url(users: list[FakeUser]) -> Iterator[str]:
    client = OAuthClient.of_auth_module(CLIENT_SECRET, PUBLIC_URL)
    app = create_provider_app(
        clients={CLIENT_ID: client}, users=users, test_api_secret=TEST_API_SECRET
    )
    with run_asgi(app) as url:
        yield url


@pytest.fixture
def oauth(provider_url: str) -> dict[str, OAuthProviderConfig]:
    return auth_configs(provider_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def auth_url(clock: FakeClock, oauth: Mapping[str, OAuthProviderConfig]) -> Iterator[str]:
    app = create_app(
        jwt_secret=SECRET,
        public_url=PUBLIC_URL,
        clock=clock,
        oauth=oauth,
        provider_timeout_s=5,
    )
    with run_asgi(app) as url:
        yield url


@pytest.fixture
async def world(auth_url: str, provider_url: str, clock: FakeClock) -> AsyncIterator[World]:
    async with (
        httpx.AsyncClient(base_url=auth_url, timeout=10) as bot,
        httpx.AsyncClient(base_url=auth_url, timeout=10) as browser,
        httpx.AsyncClient(timeout=10) as provider,
    ):
        yield World(bot, browser, provider, provider_url, clock)


@pytest.fixture
async def stranger(auth_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another person's browser."""
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as client:
        yield client


# ---- the happy path ----


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_A5_allow_at_the_provider_then_yes_grants_the_provider_identity(
    world: World, provider: str
) -> None:
    link = await world.start(f"token-{provider}", provider, chat_id=777)
    authorize = await world.to_provider(link)

    params = query(authorize)
    assert params["client_id"] == CLIENT_ID and params["response_type"] == "code"
    assert params["redirect_uri"] == f"{PUBLIC_URL}/oauth/{provider}/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32
    assert "code_verifier" not in authorize

    callback = await world.consent(authorize, user=1001)
    assert query(callback)["state"] == params["state"]
    back = await world.browser.get(callback)
    assert back.status_code == 303 and back.headers["location"] == "/confirm"

    page = await world.browser.get("/confirm")
    assert 'id="chat-id">777<' in page.text and f'data-type="{provider}"' in page.text
    assert f'data-identity="{provider}:1001"' in page.text and "Alice Ivanova" in page.text
    assert await world.check(f"token-{provider}") == {"status": "pending"}

    result = await world.confirm("yes")
    assert result.status_code == 200 and 'data-status="granted"' in result.text
    granted = await world.check(f"token-{provider}")
    assert granted["status"] == "granted"
    access, refresh = claims(granted["access_token"]), claims(granted["refresh_token"])
    assert access["sub"] == refresh["sub"] == f"{provider}:1001"
    assert access["name"] == "Alice Ivanova"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_A4_deny_at_the_provider_denies_the_login(world: World, provider: str) -> None:
    link = await world.start("token-deny", provider)
    callback = await world.consent(await world.to_provider(link), decision="deny")
    assert query(callback)["error"] == "access_denied"

    result = await world.browser.get(callback)
    assert result.status_code == 200 and 'data-status="denied"' in result.text
    assert await world.check("token-deny") == {"status": "denied"}


async def test_A4_no_on_the_confirmation_page_denies_the_login(world: World) -> None:
    link = await world.start("token-no", "github")
    await world.browser.get(await world.consent(await world.to_provider(link)))

    result = await world.confirm("no")
    assert 'data-status="denied"' in result.text
    assert await world.check("token-no") == {"status": "denied"}


async def test_the_provider_signs_the_browser_in_for_code_login_too(world: World) -> None:
    answer = await world.bot.post(
        "/login", json={"login_token": "token-code", "type": "code", "chat_id": 5}
    )
    code = answer.json()["code"]
    signin = await world.browser.get("/code")
    assert 'id="signin-github"' in signin.text and 'id="signin-yandex"' in signin.text

    start = await world.browser.get("/signin/yandex")
    assert start.status_code == 303
    back = await world.browser.get(await world.consent(start.headers["location"], user=1002))
    assert back.status_code == 303 and back.headers["location"] == "/code"
    page = await world.browser.get("/code")
    assert 'data-identity="yandex:1002"' in page.text

    entered = await world.browser.post(
        "/code", data={"csrf": field(page.text, "csrf"), "code": code}
    )
    assert entered.status_code == 303
    await world.confirm("yes")
    granted = await world.check("token-code")
    assert claims(granted["access_token"])["sub"] == "yandex:1002"


@pytest.mark.parametrize("users", [[FakeUser(7, "evil", "<script>alert(1)</script>")]])
async def test_the_provider_name_is_escaped_on_the_page(world: World) -> None:
    link = await world.start("token-evil", "github")
    await world.browser.get(await world.consent(await world.to_provider(link), user=7))

    page = await world.browser.get("/confirm")
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)" in page.text


# ---- expiry ----


async def test_A3_an_expired_login_link_says_so(world: World) -> None:
    link = await world.start("token-old", "github")
    world.clock.advance(601)

    page = await world.browser.get(link)
    assert page.status_code == 410 and reason(page) == "expired"
    assert await world.check("token-old") == {"status": "expired"}


async def test_A3_a_login_that_expires_at_the_provider_is_not_granted(world: World) -> None:
    link = await world.start("token-slow", "yandex")
    callback = await world.consent(await world.to_provider(link))
    world.clock.advance(601)

    page = await world.browser.get(callback)
    assert page.status_code == 410 and reason(page) == "expired"
    assert await world.check("token-slow") == {"status": "expired"}


# ---- single-use references and forwarded links ----


async def test_a_link_works_once_even_in_the_same_browser(world: World) -> None:
    link = await world.start("token-twice", "github")
    await world.to_provider(link)

    again = await world.browser.get(link)
    assert again.status_code == 409 and reason(again) == "used-link"


async def test_a_forwarded_link_is_dead_once_used(
    world: World, stranger: httpx.AsyncClient
) -> None:
    link = await world.start("token-chat-a", "github", chat_id=1)
    await world.browser.get(await world.consent(await world.to_provider(link)))

    forwarded = await stranger.get(link)
    assert forwarded.status_code == 409 and reason(forwarded) == "used-link"
    await world.confirm("yes")
    assert claims((await world.check("token-chat-a"))["access_token"])["sub"] == "github:1001"
    after = await stranger.get(link)  # the login is finished and handed out
    assert after.status_code in (404, 409)


async def test_a_link_only_opens_its_own_provider(world: World) -> None:
    link = await world.start("token-gh", "github")
    ref = query(link)["ref"]

    wrong = await world.browser.get(f"/oauth/yandex/start?ref={ref}")
    assert wrong.status_code == 404 and reason(wrong) == "unknown-link"
    await world.to_provider(link)  # still unused


async def test_an_unknown_link_is_404(world: World) -> None:
    page = await world.browser.get("/oauth/github/start?ref=made-up")
    assert page.status_code == 404 and reason(page) == "unknown-link"


# ---- state ----


async def test_a_state_that_does_not_match_is_refused_and_grants_nothing(world: World) -> None:
    link = await world.start("token-state", "github")
    callback = await world.consent(await world.to_provider(link))

    forged = await world.browser.get(with_query(callback, state="forged-state"))
    assert forged.status_code == 400 and reason(forged) == "state"
    assert await world.check("token-state") == {"status": "pending"}
    # The real callback still works: a forged one cannot cancel the person's login.
    assert (await world.browser.get(callback)).status_code == 303
    # And the state is single-use.
    replayed = await world.browser.get(callback)
    assert replayed.status_code == 400 and reason(replayed) == "state"


async def test_a_callback_in_another_browser_is_refused(
    world: World, stranger: httpx.AsyncClient
) -> None:
    link = await world.start("token-csrf", "yandex")
    callback = await world.consent(await world.to_provider(link))

    hijacked = await stranger.get(callback)
    assert hijacked.status_code == 400 and reason(hijacked) == "state"
    assert await world.check("token-csrf") == {"status": "pending"}


# ---- provider failures ----


async def test_a_wrong_pkce_verifier_fails_the_exchange_and_the_login(world: World) -> None:
    link = await world.start("token-pkce", "github")
    authorize = await world.to_provider(link)
    # Someone swapped the challenge on the way: the module's verifier no longer matches it.
    tampered = with_query(authorize, code_challenge=s256("not-the-verifier-" + "x" * 40))

    page = await world.browser.get(await world.consent(tampered))
    assert page.status_code == 502 and reason(page) == "provider"
    assert await world.check("token-pkce") == {"status": "denied"}
    stats_url = f"{world.provider_url}/_test/stats"
    stats = (await world.provider.get(stats_url, headers=TEST_API)).json()
    assert stats["github.token_error.invalid_grant"] == 1
    assert "github.user" not in stats


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_provider_error_in_the_callback_fails_the_login(
    world: World, provider: str
) -> None:
    link = await world.start("token-err", provider)
    callback = await world.consent(await world.to_provider(link))

    page = await world.browser.get(with_query(callback, error="server_error", code=""))
    assert page.status_code == 502 and reason(page) == "provider"
    assert await world.check("token-err") == {"status": "denied"}


def dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "break_config",
    [
        pytest.param(lambda c: dataclasses.replace(c, client_secret="wrong"), id="bad-secret"),
        pytest.param(
            lambda c: dataclasses.replace(c, token_url=f"{dead_url()}/token"), id="token-down"
        ),
        pytest.param(
            lambda c: dataclasses.replace(c, userinfo_url=f"{dead_url()}/user"), id="user-down"
        ),
    ],
)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_unreachable_or_refusing_provider_is_an_error_page_not_a_500(
    provider_url: str, clock: FakeClock, provider: str, break_config: Any
) -> None:
    configs = auth_configs(provider_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    configs[provider] = break_config(configs[provider])
    app = create_app(jwt_secret=SECRET, public_url=PUBLIC_URL, clock=clock, oauth=configs)
    with run_asgi(app) as auth_url:
        async with (
            httpx.AsyncClient(base_url=auth_url, timeout=10) as bot,
            httpx.AsyncClient(base_url=auth_url, timeout=10) as browser,
            httpx.AsyncClient(timeout=10) as provider_browser,
        ):
            world = World(bot, browser, provider_browser, provider_url, clock)
            link = await world.start("token-broken", provider)
            page = await browser.get(await world.consent(await world.to_provider(link)))
            assert page.status_code == 502 and reason(page) == "provider"
            assert await world.check("token-broken") == {"status": "denied"}


# ---- configuration and secrets ----


async def test_a_provider_without_configuration_is_refused_in_text(provider_url: str) -> None:
    configs = auth_configs(provider_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    app = create_app(
        jwt_secret=SECRET,
        public_url=PUBLIC_URL,
        oauth={"github": configs["github"]},
    )
    with run_asgi(app) as url:
        async with httpx.AsyncClient(base_url=url) as bot:
            answer = await bot.post(
                "/login",
                json={"login_token": "t", "type": "yandex", "chat_id": 1, "language": "en"},
            )
            body = answer.json()
            assert answer.status_code == 200 and body["url"] is None and body["code"] is None
            assert "not configured" in body["text"]
            assert (await bot.get("/oauth/yandex/start?ref=x")).status_code == 503


def test_an_unknown_provider_name_is_refused(provider_url: str) -> None:
    configs = auth_configs(provider_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with pytest.raises(ValueError, match="unknown OAuth providers"):
        create_app(jwt_secret=SECRET, oauth={"gitlab": configs["github"]})


def test_the_client_secret_is_not_in_the_config_repr(provider_url: str) -> None:
    configs = auth_configs(provider_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(configs)


async def test_codes_tokens_and_secrets_never_reach_the_log(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    link = await world.start("login-token-that-must-stay-secret", "github")
    authorize = await world.to_provider(link)
    callback = await world.consent(authorize)
    await world.browser.get(callback)
    await world.confirm("yes")
    granted = await world.check("login-token-that-must-stay-secret")

    # The module's own log (the test's httpx client logs the URLs it asks for; not ours).
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("tggate_sandbox.reference")
    )
    assert "github:1001" in ours
    for secret in (
        "login-token-that-must-stay-secret",
        query(link)["ref"],
        query(callback)["code"],
        query(callback)["state"],
        CLIENT_SECRET,
        granted["access_token"],
    ):
        assert secret not in ours
