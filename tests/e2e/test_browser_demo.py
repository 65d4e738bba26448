"""Issue 4, "Try it in a browser": the seed lived in headless Chromium, as a newcomer would.

The topology is the demo's (fake Telegram with the web chat, Telegram Client, nginx, two Bot Logic
replicas, Redis, the reference modules and the fake OAuth provider, every one a real process);
only the timers are fast. The person uses nothing but pages: the web chat, the Authorization
module's login pages, the fake provider's consent page and the Main module's `/notify` page.
Each test is a different person (the web chat derives the chat id from the name) and logs in as a
different identity, so notifications and sessions never cross.

`UPDATE_DOCS_SCREENSHOT=1 uv run pytest tests/e2e/test_browser_demo.py` also refreshes the
README's `docs/screenshot-webchat.png` and `docs/screenshot-confirm.png`; the same shots always
land in `tests/e2e/artifacts/`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, expect
from tests.e2e.browser import LoginPages, WebChat, chromium, new_context, requires_chromium

from tggate_sandbox.topology import Topology

pytestmark = requires_chromium

ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS = Path(__file__).parents[2] / "docs"
PROVIDER_NAMES = {"github": "GitHub", "yandex": "Yandex ID"}
BORIS = 1002  # a user of the fake OAuth provider (reference/oauth_provider/grants.py)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser)
    try:
        yield context
    finally:
        await context.close()


def expire_logins(topology: Topology, chat_id: int) -> None:
    """The reference module's test API: the chat's login expires now instead of in 10 minutes."""
    response = httpx.post(
        topology.auth_url + "/test/logins/expire",
        json={"chat_id": chat_id},
        headers=topology.test_api_headers,
        timeout=10,
    )
    response.raise_for_status()
    assert response.json() == {"expired": 1}


async def start_provider_login(chat: WebChat, provider: str) -> tuple[str, LoginPages]:
    """U1 → U2 with a provider: the login offer, its button, the link; the link's tab opened."""
    offer = await chat.send("/login")
    await chat.expect_login_offer(offer)
    prompt = await chat.press(offer, f"/login {provider}")
    await expect(prompt.locator(".text")).to_contain_text(
        f"To log in with {PROVIDER_NAMES[provider]}, open the link"
    )
    button = prompt.locator(".keyboard a[data-url]")
    await expect(button).to_have_text("Open the login page")
    link = await button.get_attribute("href")
    assert link is not None
    assert re.fullmatch(rf"http://[\d.:]+/oauth/{provider}/start\?ref=[\w-]{{20,}}", link), link
    login = await LoginPages.from_link(chat, button)
    # The provider's consent page, asking on behalf of the demo's OAuth app.
    await expect(login.page.locator("#consent-form")).to_be_visible()
    return link, login


async def test_code_login_action_notification_and_logout(
    topology: Topology, context: BrowserContext
) -> None:
    chat = await WebChat.open(context, topology.telegram_url + "/", name="Alice")
    chat_id = await chat.chat_id()

    # /start to someone not logged in: what the bot does, then U1's login offer with a button
    # per login type.
    shown = await chat.bot_messages.count()
    about = await chat.send("/start")
    await expect(about.locator(".text")).to_contain_text("I am the system's front door")
    await expect(about.locator(".text button.command-link")).to_contain_text(["/courses"])
    offer = chat.bot_messages.nth(shown + 1)
    await chat.expect_login_offer(offer)

    # U2: "One-time code" shows a code and the page to enter it on (never the login token).
    prompt = await chat.press(offer, "/login code")
    await expect(prompt.locator(".text")).to_contain_text("and enter the code")
    found = re.search(r"\b\d{3}-\d{3}\b", await prompt.locator(".text").inner_text())
    assert found is not None
    code = found.group()
    link = prompt.locator(".text a[href]")
    await expect(link).to_have_attribute("href", f"{topology.auth_url}/code")

    # The Authorization module's page, in a new tab: sign in as alice, enter the code, and the
    # confirmation names the chat that asks.
    login = await LoginPages.from_link(chat, link)
    await login.sign_in_as_demo("alice")
    await login.enter_code(code)
    await login.expect_confirmation(chat_id=chat_id, login_type="code", identity="alice")
    await save_screenshot(login.page.locator("main"), "screenshot-confirm.png")
    # A5 through the login timer (L2): "Yes", and the chat says so by itself.
    logged_in = await chat.next_bot_message()
    await login.decide("yes")
    await expect(logged_in.locator(".text")).to_have_text("You are logged in.")

    # Z4/Z5: actions; Z6: an action students may not run.
    courses = await chat.send("/courses")
    await expect(courses.locator(".text")).to_contain_text("Your courses:")
    await expect(courses.locator(".text")).to_contain_text("• py101 — Основы Python")
    me = await chat.send("/me")
    await expect(me.locator(".text")).to_contain_text("Login: alice")
    await expect(me.locator(".text")).to_contain_text("Role: student")
    forbidden = await chat.send("/students py101")
    await expect(forbidden.locator(".text")).to_have_text("Not enough rights for this action.")

    # N: a notification sent from the Main module's page arrives through the timer.
    # The page is the admin's (issue 9): sign in with the password `tggate demo` prints.
    notify = await context.new_page()
    await notify.goto(topology.main_url + "/notify")
    await notify.fill("#password", topology.admin_secret)
    await notify.click("#signin")
    await notify.select_option("#to", "alice")
    await notify.fill("#text", "Task t3 of py101 is due on Monday.")
    arrived = await chat.next_bot_message()
    await notify.click("#send")
    await expect(notify.locator("#sent")).to_be_visible()
    await expect(arrived.locator(".text")).to_have_text("🔔 Task t3 of py101 is due on Monday.")
    await notify.reload()  # N2: delivered, so the Main module no longer holds it
    await expect(notify.locator("#recent li.notification").first).to_have_attribute(
        "data-status", "delivered"
    )

    await chat.page.bring_to_front()
    await save_screenshot(chat.page, "screenshot-webchat.png")

    # Z2: logout ends the session; the next action is the login offer again.
    ended = await chat.send("/logout")
    await expect(ended.locator(".text")).to_have_text("Session ended.")
    await chat.expect_login_offer(await chat.send("/courses"))
    await chat.close()


async def save_screenshot(shown: Page | Locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    shot = await shown.screenshot(path=str(ARTIFACTS / name))
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        (DOCS / name).write_bytes(shot)


@pytest.mark.parametrize("provider", ["github", "yandex"])
async def test_provider_login_and_its_link_works_once(
    provider: str, topology: Topology, browser: Browser, context: BrowserContext
) -> None:
    chat = await WebChat.open(context, topology.telegram_url + "/", name=f"Boris {provider}")
    chat_id = await chat.chat_id()
    link, login = await start_provider_login(chat, provider)

    # Forwarded while the person is at the provider: another browser cannot use the link.
    stranger = await new_context(browser)
    forwarded = await LoginPages.open(stranger, link)
    assert forwarded.status == 409
    await forwarded.expect_refused("used-link")

    # Allow at the provider as Boris; the confirmation shows the provider's identity and chat.
    await login.consent("allow", user=BORIS)
    identity = f"{provider}:{BORIS}"
    await login.expect_confirmation(chat_id=chat_id, login_type=provider, identity=identity)
    logged_in = await chat.next_bot_message()
    await login.decide("yes")
    await expect(logged_in.locator(".text")).to_have_text("You are logged in.")
    me = await chat.send("/me")
    await expect(me.locator(".text")).to_contain_text(f"Login: {identity}")

    # The used link, opened again by the same browser and forwarded to another one: refused,
    # and the chat stays logged in as it was.
    again = await LoginPages.open(context, link)
    assert again.status == 409
    await again.expect_refused("used-link")
    forwarded = await LoginPages.open(stranger, link)
    assert forwarded.status == 409
    await forwarded.expect_refused("used-link")
    await stranger.close()
    still = await chat.send("/login")
    await expect(still.locator(".text")).to_have_text("You are already logged in.")
    await chat.close()


async def test_deny_at_the_provider_fails_the_login(
    topology: Topology, context: BrowserContext
) -> None:
    chat = await WebChat.open(context, topology.telegram_url + "/", name="Dima denies")
    _, login = await start_provider_login(chat, "github")

    # A4 through the login timer: "Deny" at the provider is a denied login.
    failed = await chat.next_bot_message()
    await login.consent("deny")
    await expect(login.page.locator("#result")).to_have_attribute("data-status", "denied")
    await expect(failed.locator(".text")).to_have_text("Login failed.")
    await chat.expect_login_offer(await chat.send("/courses"))
    await chat.close()


async def test_an_expired_login_is_refused_and_offered_again(
    topology: Topology, context: BrowserContext
) -> None:
    chat = await WebChat.open(context, topology.telegram_url + "/", name="Katya is slow")
    link, login = await start_provider_login(chat, "yandex")

    # The person dawdles at the provider until the login expires, then allows.
    expire_logins(topology, await chat.chat_id())
    await login.consent("allow", user=BORIS)
    await login.expect_refused("expired")
    again = await LoginPages.open(context, link)
    assert again.status == 410
    await again.expect_refused("expired")

    # A3 / L2: the chat is back to Unknown; its next command gets the login offer again.
    await chat.expect_login_offer(await chat.send("/courses"))
    await chat.close()


async def test_a_tampered_state_is_refused(topology: Topology, context: BrowserContext) -> None:
    chat = await WebChat.open(context, topology.telegram_url + "/", name="Mallory tampers")
    _, login = await start_provider_login(chat, "yandex")

    # Hold the provider's redirect back to the module (its answer to Allow), and follow it
    # with a different `state` instead. (A route sees a redirect's first request only, so the
    # consent form's POST is the one held.)
    held: list[str] = []

    async def hold(route: Route) -> None:
        answer = await route.fetch(max_redirects=0)
        held.append(answer.headers["location"])
        await route.fulfill(status=200, content_type="text/plain", body="held")

    await login.page.route("**/yandex/authorize*", hold)
    await login.consent("allow", user=BORIS)
    await expect(login.page.locator("body")).to_have_text("held")
    await login.page.unroute("**/yandex/authorize*")
    [callback] = held
    assert callback.startswith(f"{topology.auth_url}/oauth/yandex/callback?")
    parts = urlsplit(callback)
    query = dict(parse_qsl(parts.query))
    assert query["code"]
    query["state"] = query["state"][::-1]
    response = await login.page.goto(urlunsplit(parts._replace(query=urlencode(query))))
    assert response is not None
    assert response.status == 400
    await login.expect_refused("state")

    # Nothing was granted: the chat's login is still unfinished (A6), not logged in.
    unfinished = await chat.send("/courses")
    await expect(unfinished.locator(".text")).to_contain_text("Your login is not finished yet.")
    await chat.close()
