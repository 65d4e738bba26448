"""A person in headless Chromium (Debian's `chromium`, driven by Playwright), issue 4.

`WebChat` plays the person in the fake Telegram's web chat and `LoginPages` on the Authorization
module's pages and the fake OAuth provider's consent page; both only use the element ids the pages
document as stable hooks (`reference/telegram/webchat.py`, `reference/auth/web.py`,
`reference/oauth_provider/app.py`). Waiting is Playwright's: `expect(...)` retries, no sleeps.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

__all__ = [
    "CHROMIUM",
    "PHONE",
    "LoginPages",
    "WebChat",
    "chromium",
    "new_context",
    "requires_chromium",
]

CHROMIUM = Path("/usr/bin/chromium")
PHONE: ViewportSize = {"width": 390, "height": 844}
EXPECT_TIMEOUT_MS = 20_000

# On a developer's machine without chromium the browser tests are skipped with this reason; in
# CI (.ci/run installs chromium, CI=true) a missing browser is a failure, never a silent skip.
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Debian chromium not installed: apt-get install chromium",
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    # The bot answers through timers and several processes on a machine that may be busy:
    # give `expect` more than its 5 s default (it returns as soon as the page is right).
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            headless=True,
        )
        try:
            yield browser
        finally:
            await browser.close()


async def new_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile (own cookies and storage), phone-sized, in English."""
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale="en-US")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    return context


@dataclass
class WebChat:
    """One person in the web chat; every page error fails the test at `close()`."""

    page: Page
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, context: BrowserContext, url: str, *, name: str) -> WebChat:
        """A new person, speaking English, in a fresh chat."""
        page = await context.new_page()
        chat = cls(page)
        page.on("pageerror", lambda error: chat.errors.append(str(error)))
        await page.goto(url)
        await page.fill("#person-name", name)
        await page.select_option("#person-language", "en")
        await page.click("#person-create")
        await expect(page.locator("#message-input")).to_be_visible()
        await expect(page.locator("#status")).to_have_attribute("data-state", "online")
        return chat

    async def chat_id(self) -> int:
        stored = await self.page.evaluate("localStorage.getItem('tggate.webchat.person')")
        chat_id: int = json.loads(stored)["chat_id"]
        return chat_id

    @property
    def bot_messages(self) -> Locator:
        return self.page.locator(".message.bot")

    async def next_bot_message(self) -> Locator:
        """The bot message that will come after those shown now (call it before acting)."""
        return self.bot_messages.nth(await self.bot_messages.count())

    async def send(self, text: str) -> Locator:
        """Type and send `text`; the bot's next message (its answer, once it arrives)."""
        answer = await self.next_bot_message()
        sent = await self.page.locator(".message.person").count()
        await self.page.fill("#message-input", text)
        await self.page.press("#message-input", "Enter")
        await expect(self.page.locator(".message.person .text").nth(sent)).to_have_text(text)
        return answer

    async def press(self, message: Locator, callback: str) -> Locator:
        """Press an inline button of `message`; the bot's next message."""
        answer = await self.next_bot_message()
        await message.locator(f'.keyboard button[data-callback="{callback}"]').click()
        return answer

    async def expect_login_offer(self, message: Locator) -> None:
        """U1: "not logged in" and a button for each login type."""
        await expect(message.locator(".text")).to_contain_text("You are not logged in.")
        await expect(message.locator(".keyboard button[data-callback]")).to_have_text(
            ["GitHub", "Yandex ID", "One-time code"]
        )

    async def close(self) -> None:
        await self.page.close()
        assert self.errors == [], self.errors


@dataclass
class LoginPages:
    """The person's browser on the login pages: the Authorization module and the OAuth provider."""

    page: Page
    status: int | None = None  # of the page `open` went to

    @classmethod
    async def open(cls, context: BrowserContext, url: str) -> LoginPages:
        """`url` in a new tab of `context` (a link typed or pasted, not clicked in the chat)."""
        page = await context.new_page()
        response = await page.goto(url)
        return cls(page, None if response is None else response.status)

    @classmethod
    async def from_link(cls, chat: WebChat, link: Locator) -> LoginPages:
        """Click a link in the chat (it opens a new tab, like in Telegram) and take that tab."""
        async with chat.page.context.expect_page() as opened:
            await link.click()
        page = await opened.value
        await page.wait_for_load_state()
        return cls(page)

    async def sign_in_as_demo(self, identity: str) -> None:
        await self.page.click(f'button[name=demo][value="{identity}"]')
        await expect(self.page.locator("#whoami")).to_have_attribute("data-identity", identity)

    async def enter_code(self, code: str) -> None:
        await self.page.fill("#code", code)
        await self.page.click("#submit-code")

    async def consent(self, decision: str, *, user: int | None = None) -> None:
        """At the fake provider: pick the account (its id) and press Allow or Deny."""
        await expect(self.page.locator("#consent-form")).to_be_visible()
        if user is not None:
            await self.page.check(f'input[name=user][value="{user}"]')
        await self.page.click(f"#{decision}")

    async def expect_confirmation(self, *, chat_id: int, login_type: str, identity: str) -> None:
        await expect(self.page.locator("#chat-id")).to_have_text(str(chat_id))
        await expect(self.page.locator("#login-type")).to_have_attribute("data-type", login_type)
        await expect(self.page.locator("#confirm-identity")).to_have_attribute(
            "data-identity", identity
        )

    async def decide(self, decision: str) -> None:
        """Yes or No on the confirmation page, and the result page that follows."""
        await self.page.click(f"#{decision}")
        status = "granted" if decision == "yes" else "denied"
        await expect(self.page.locator("#result")).to_have_attribute("data-status", status)

    async def expect_refused(self, reason: str) -> None:
        await expect(self.page.locator("#error")).to_have_attribute("data-reason", reason)
