"""Code login through the reference Authorization module's pages (docs/scenarios.md#a4, #a5), over
real HTTP.

The bot side calls docs/openapi/auth.yaml (`/login`, `/login/check`); the person's browser is an
httpx client that keeps cookies and does not follow redirects, so each hop is checked. Issue 9's
code guessing (a limit per code and per address, neither reset by a right code) and issue 10's demo
sign-in warning are here too.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from tests.support.clock import FakeClock
from tests.support.servers import run_asgi

from tggate_sandbox.reference.auth import create_app

SECRET = "login-pages-test-secret-0123456789abcdef"
PUBLIC_URL = "http://auth.example"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_url(clock: FakeClock) -> Iterator[str]:
    with run_asgi(create_app(jwt_secret=SECRET, public_url=PUBLIC_URL, clock=clock)) as url:
        yield url


@pytest.fixture
async def bot(auth_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Bot Logic's side: the calls of docs/openapi/auth.yaml."""
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as client:
        yield client


@pytest.fixture
async def browser(auth_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser: keeps cookies, follows no redirect by itself."""
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as client:
        yield client


@pytest.fixture
async def other_browser(auth_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as client:
        yield client


@asynccontextmanager
async def fresh_browser(auth_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A new browser session, signed in as the demo user mallory: sessions cost nothing."""
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as client:
        await sign_in(client, identity="mallory")
        yield client


@asynccontextmanager
async def auth_module(clock: FakeClock, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A module of its own (`options` for create_app); the client is Bot Logic's side."""
    app = create_app(jwt_secret=SECRET, public_url=PUBLIC_URL, clock=clock, **options)
    with run_asgi(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client


def wrong_codes(*right: str) -> Iterator[str]:
    """Codes that are none of `right`."""
    for number in range(1_000_000):
        code = f"{number // 1000:03d}-{number % 1000:03d}"
        if code not in right:
            yield code


async def start_code_login(bot: httpx.AsyncClient, token: str, chat_id: int = 42) -> str:
    answer = await bot.post(
        "/login", json={"login_token": token, "type": "code", "chat_id": chat_id}
    )
    assert answer.status_code == 200, answer.text
    code: str = answer.json()["code"]
    return code


async def check(bot: httpx.AsyncClient, token: str) -> dict[str, Any]:
    answer = await bot.post("/login/check", json={"login_token": token})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} field in the page"
    return html.unescape(found.group(1))


def reason(response: httpx.Response) -> str | None:
    found = re.search(r'id="error"[^>]*data-reason="([^"]+)"', response.text)
    return found.group(1) if found else None


async def sign_in(browser: httpx.AsyncClient, **form: str) -> httpx.Response:
    page = await browser.get("/code")
    assert page.status_code == 200
    return await browser.post("/signin", data={"csrf": field(page.text, "csrf"), **form})


async def enter_code(browser: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await browser.get("/code")
    assert 'id="code-form"' in page.text
    return await browser.post("/code", data={"csrf": field(page.text, "csrf"), "code": code})


async def answer(browser: httpx.AsyncClient, decision: str) -> httpx.Response:
    page = await browser.get("/confirm")
    assert page.status_code == 200, page.text
    return await browser.post(
        "/confirm",
        data={
            "csrf": field(page.text, "csrf"),
            "ticket": field(page.text, "ticket"),
            "decision": decision,
        },
    )


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )
    return decoded


# ---- who asks (issue 9, finding 8) ----


async def test_the_confirmation_names_who_asks_as_telegram_does_escaped(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """A bare chat id means nothing to a person: the page shows the Telegram name and
    @username Bot Logic passed on. Anyone may call themselves anything, so it is escaped."""
    hostile = {
        "first_name": '<script>alert("x")</script>',
        "last_name": "</dd><img src=x onerror=alert(1)>",
        "username": "ann&co",
    }
    started = await bot.post(
        "/login",
        json={
            "login_token": "token-named",
            "type": "code",
            "chat_id": 4343,
            "telegram_user": hostile,
        },
    )
    code = started.json()["code"]
    await sign_in(browser, demo="alice")
    await enter_code(browser, code)

    confirm = await browser.get("/confirm")
    assert confirm.status_code == 200
    shown = re.search(r'<dd id="telegram-user">(.*?)</dd>', confirm.text)
    assert shown is not None
    assert html.unescape(shown.group(1)) == (
        '<script>alert("x")</script> </dd><img src=x onerror=alert(1)> (@ann&co)'
    )
    assert "<script>" not in confirm.text and "<img" not in confirm.text
    assert 'id="chat-id">4343<' in confirm.text  # the id stays, for whoever knows it


async def test_the_confirmation_without_a_telegram_name_shows_the_chat_id(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await start_code_login(bot, "token-unnamed", chat_id=4344)
    await sign_in(browser, demo="alice")
    await enter_code(browser, code)
    confirm = await browser.get("/confirm")
    assert 'id="telegram-user"' not in confirm.text
    assert 'id="chat-id">4344<' in confirm.text


# ---- the happy paths ----


async def test_A5_code_login_yes_grants_the_signed_in_identity(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await start_code_login(bot, "token-yes", chat_id=4242)

    signin = await browser.get("/code")
    assert 'id="signin-form"' in signin.text and 'name="demo" value="alice"' in signin.text
    assert '<meta name="viewport"' in signin.text
    signed = await sign_in(browser, demo="alice")
    assert signed.status_code == 303 and signed.headers["location"] == "/code"
    entered = await enter_code(browser, code)
    assert entered.status_code == 303 and entered.headers["location"] == "/confirm"

    confirm = await browser.get("/confirm")
    assert 'id="chat-id">4242<' in confirm.text
    assert 'data-type="code"' in confirm.text and 'data-identity="alice"' in confirm.text
    assert 'id="requested-at">2023-11-14 22:13:20 UTC<' in confirm.text
    assert 'name="decision" value="yes"' in confirm.text
    assert await check(bot, "token-yes") == {"status": "pending"}

    result = await answer(browser, "yes")
    assert result.status_code == 200
    assert 'data-status="granted"' in result.text

    granted = await check(bot, "token-yes")
    assert granted["status"] == "granted"
    access, refresh = claims(granted["access_token"]), claims(granted["refresh_token"])
    assert access["sub"] == refresh["sub"] == "alice"
    assert access["name"] == "Алиса Иванова"
    assert access["typ"] == "access" and refresh["typ"] == "refresh"


async def test_A4_code_login_no_denies(bot: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    code = await start_code_login(bot, "token-no")
    await sign_in(browser, demo="bob")
    await enter_code(browser, code)

    result = await answer(browser, "no")
    assert result.status_code == 200 and 'data-status="denied"' in result.text
    assert await check(bot, "token-no") == {"status": "denied"}


async def test_a_typed_user_name_becomes_the_identity(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await start_code_login(bot, "token-typed")
    await sign_in(browser, identity="  carol  ")
    assert 'data-identity="carol"' in (await browser.get("/code")).text
    await enter_code(browser, code.replace("-", ""))  # "123456" is the same code as "123-456"
    await answer(browser, "yes")

    assert claims((await check(bot, "token-typed"))["access_token"])["sub"] == "carol"


@pytest.mark.parametrize("typed", ["github:1001", "", "a" * 65, "<script>"])
async def test_a_user_name_that_could_pose_as_another_is_refused(
    browser: httpx.AsyncClient, typed: str
) -> None:
    refused = await sign_in(browser, identity=typed)
    assert refused.status_code == 400 and reason(refused) == "bad-identity"
    assert 'id="signin-form"' in (await browser.get("/code")).text  # still signed out


async def test_signing_out_asks_who_you_are_again(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, demo="alice")
    page = await browser.get("/code")
    out = await browser.post("/signout", data={"csrf": field(page.text, "csrf")})
    assert out.status_code == 303
    assert 'id="signin-form"' in (await browser.get("/code")).text


async def test_the_demo_sign_in_says_it_is_a_demo_and_logs_a_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with auth_module(clock) as client:
        page = await client.get("/code", headers={"Accept-Language": "en"})
        assert 'id="demo-warning"' in page.text
        assert "anyone can sign in here as anyone" in page.text
        assert "DEMO SIGN-IN IS ON" in caplog.text

    caplog.clear()
    async with auth_module(clock, demo_sign_in=False) as client:
        page = await client.get("/code")
        assert 'id="demo-warning"' not in page.text and 'id="signin-form"' not in page.text
        assert "DEMO SIGN-IN" not in caplog.text


async def test_the_pages_speak_english_when_the_browser_asks(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/code", headers={"Accept-Language": "en-US,en;q=0.9,ru;q=0.5"})
    assert '<html lang="en">' in page.text and "Sign in" in page.text
    page = await browser.get("/code", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in page.text


async def test_the_session_cookie_is_http_only_and_same_site(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/code")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_on_https_the_session_cookie_is_secure() -> None:
    app = create_app(jwt_secret=SECRET, public_url="https://auth.example")
    with run_asgi(app) as url, httpx.Client(base_url=url) as client:
        assert "secure" in client.get("/code").headers["set-cookie"].lower()


# ---- refusals ----


async def test_a_wrong_code_is_a_clear_400_and_changes_nothing(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await start_code_login(bot, "token-wrong")
    await sign_in(browser, demo="alice")
    wrong = "000-000" if code != "000-000" else "000-001"

    refused = await enter_code(browser, wrong)
    assert refused.status_code == 400 and reason(refused) == "wrong-code"
    assert 'id="code-form"' in refused.text  # the person can try again right there
    assert (await browser.get("/confirm")).status_code == 404
    assert await check(bot, "token-wrong") == {"status": "pending"}


async def test_a_used_code_is_refused(bot: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    code = await start_code_login(bot, "token-used")
    await sign_in(browser, demo="alice")
    await enter_code(browser, code)
    await answer(browser, "yes")

    again = await enter_code(browser, code)
    assert again.status_code == 409 and reason(again) == "used"
    assert (await check(bot, "token-used"))["status"] == "granted"
    # Handed out and forgotten: now the code is simply unknown.
    gone = await enter_code(browser, code)
    assert gone.status_code == 400 and reason(gone) == "wrong-code"


async def test_a_code_claimed_by_one_browser_is_refused_in_another(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    code = await start_code_login(bot, "token-claimed")
    await sign_in(browser, demo="alice")
    await enter_code(browser, code)

    await sign_in(other_browser, demo="bob")
    stolen = await enter_code(other_browser, code)
    assert stolen.status_code == 409 and reason(stolen) == "used"

    # The first browser can still go back and enter it again.
    assert (await enter_code(browser, code)).status_code == 303
    await answer(browser, "yes")
    assert claims((await check(bot, "token-claimed"))["access_token"])["sub"] == "alice"


async def test_an_expired_code_says_so(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = await start_code_login(bot, "token-expired")
    await sign_in(browser, demo="alice")
    clock.advance(601)

    refused = await enter_code(browser, code)
    assert refused.status_code == 410 and reason(refused) == "expired"
    assert await check(bot, "token-expired") == {"status": "expired"}


async def test_a_login_that_expires_on_the_confirmation_page_is_not_granted(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = await start_code_login(bot, "token-slow")
    await sign_in(browser, demo="alice")
    await enter_code(browser, code)
    page = await browser.get("/confirm")
    clock.advance(601)

    late = await browser.post(
        "/confirm",
        data={
            "csrf": field(page.text, "csrf"),
            "ticket": field(page.text, "ticket"),
            "decision": "yes",
        },
    )
    assert late.status_code == 410 and reason(late) == "expired"
    assert await check(bot, "token-slow") == {"status": "expired"}


@pytest.mark.parametrize("path", ["/signin", "/code", "/confirm", "/signout"])
async def test_a_post_without_the_csrf_token_is_403(browser: httpx.AsyncClient, path: str) -> None:
    await browser.get("/code")
    refused = await browser.post(
        path, data={"identity": "mallory", "code": "123-456", "decision": "yes"}
    )
    assert refused.status_code == 403 and reason(refused) == "csrf"


async def test_a_csrf_token_of_another_session_is_403_and_grants_nothing(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    code = await start_code_login(bot, "token-csrf")
    await sign_in(browser, demo="alice")
    await enter_code(browser, code)
    page = await browser.get("/confirm")
    await sign_in(other_browser, demo="bob")
    foreign_csrf = field((await other_browser.get("/code")).text, "csrf")

    forged = await browser.post(
        "/confirm",
        data={"csrf": foreign_csrf, "ticket": field(page.text, "ticket"), "decision": "yes"},
    )
    assert forged.status_code == 403 and reason(forged) == "csrf"
    # And another browser cannot answer this browser's confirmation with its own token.
    hijack = await other_browser.post(
        "/confirm",
        data={"csrf": foreign_csrf, "ticket": field(page.text, "ticket"), "decision": "yes"},
    )
    assert hijack.status_code == 404 and reason(hijack) == "nothing-to-confirm"
    assert await check(bot, "token-csrf") == {"status": "pending"}


async def test_nothing_to_confirm_without_a_code(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/confirm")
    assert page.status_code == 404 and reason(page) == "nothing-to-confirm"


# ---- code guessing (issue 9: 150 guesses in 2.4 s found a real code) ----


async def test_wrong_guesses_from_many_fresh_sessions_kill_the_code(clock: FakeClock) -> None:
    # The address limit is out of the way: this is the limit per code, wherever guesses come from.
    async with auth_module(clock, code_guess_limit=5, client_guess_limit=1000) as bot:
        auth_url = str(bot.base_url)
        code = await start_code_login(bot, "token-victim", chat_id=1)
        guesses = wrong_codes(code)
        for _ in range(5):
            async with fresh_browser(auth_url) as attacker:
                refused = await enter_code(attacker, next(guesses))
                assert refused.status_code == 400 and reason(refused) == "wrong-code"

        # The code is dead: the right code logs nobody in, and the bot is told "denied" (A4).
        async with fresh_browser(auth_url) as attacker:
            found = await enter_code(attacker, code)
            assert found.status_code == 410 and reason(found) == "blocked"
            assert (await attacker.get("/confirm")).status_code == 404
        async with fresh_browser(auth_url) as victim:
            assert reason(await enter_code(victim, code)) == "blocked"
        assert await check(bot, "token-victim") == {"status": "denied"}


async def test_a_right_code_does_not_reset_the_count_of_another_code(clock: FakeClock) -> None:
    async with auth_module(clock, code_guess_limit=5, client_guess_limit=1000) as bot:
        auth_url = str(bot.base_url)
        victim_code = await start_code_login(bot, "token-victim", chat_id=1)
        own_code = await start_code_login(bot, "token-own", chat_id=2)
        guesses = wrong_codes(victim_code, own_code)
        async with fresh_browser(auth_url) as attacker:
            for _ in range(4):
                assert reason(await enter_code(attacker, next(guesses))) == "wrong-code"
            # The attacker's own code, then guessing on: the victim's code still dies at five.
            assert (await enter_code(attacker, own_code)).status_code == 303
            assert reason(await enter_code(attacker, next(guesses))) == "wrong-code"
            assert reason(await enter_code(attacker, victim_code)) == "blocked"
        assert await check(bot, "token-victim") == {"status": "denied"}


async def test_an_address_that_keeps_guessing_wrong_is_throttled(clock: FakeClock) -> None:
    # The limit per code is out of the way: this is the limit per address, across sessions.
    async with auth_module(clock, code_guess_limit=1000, client_guess_limit=5) as bot:
        auth_url = str(bot.base_url)
        victim_code = await start_code_login(bot, "token-victim", chat_id=1)
        own_code = await start_code_login(bot, "token-own", chat_id=2)
        guesses = wrong_codes(victim_code, own_code)
        statuses = []
        for attempt in range(5):
            async with fresh_browser(auth_url) as attacker:
                if attempt == 3:  # a right code of one's own resets nothing
                    assert (await enter_code(attacker, own_code)).status_code == 303
                statuses.append((await enter_code(attacker, next(guesses))).status_code)
        assert statuses == [400, 400, 400, 400, 429]

        async with fresh_browser(auth_url) as attacker:
            locked = await enter_code(attacker, victim_code)  # even the right code, while locked
            assert locked.status_code == 429 and reason(locked) == "rate-limited"
            assert locked.headers["retry-after"] == "60"
            assert "Too many wrong codes" in locked.text or "неверных кодов" in locked.text
            assert 'id="code-form"' in locked.text

        clock.advance(61)
        async with fresh_browser(auth_url) as person:
            assert (await enter_code(person, victim_code)).status_code == 303
            await answer(person, "yes")
        assert (await check(bot, "token-victim"))["status"] == "granted"


async def test_the_defaults_hold_a_brute_force_to_a_handful_of_guesses(clock: FakeClock) -> None:
    """The probe's attack with the shipped defaults: fresh sessions, as fast as it can."""
    async with auth_module(clock) as bot:
        auth_url = str(bot.base_url)
        code = await start_code_login(bot, "token-victim", chat_id=1)
        answered = []
        for guess in [*wrong_codes(code)][:150]:
            async with fresh_browser(auth_url) as attacker:
                answered.append(reason(await enter_code(attacker, guess)))
        # Four refused, the fifth locks the address out; nothing after that is even tried.
        assert answered == ["wrong-code"] * 4 + ["rate-limited"] * 146
        assert await check(bot, "token-victim") == {"status": "pending"}


async def test_codes_and_login_tokens_never_reach_the_log(
    bot: httpx.AsyncClient, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await start_code_login(bot, "login-token-that-must-stay-secret")
    await sign_in(browser, demo="alice")
    await enter_code(browser, "000-000" if code != "000-000" else "000-001")
    await enter_code(browser, code)
    await answer(browser, "yes")
    granted = await check(bot, "login-token-that-must-stay-secret")

    assert any(r.name.startswith("tggate_sandbox.reference.auth") for r in caplog.records)
    for secret in (code, "login-token-that-must-stay-secret", granted["refresh_token"]):
        assert secret not in caplog.text
