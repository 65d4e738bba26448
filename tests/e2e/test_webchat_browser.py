"""The fake Telegram's web chat in a real browser (Debian chromium through Playwright),
docs/contract.md#reference.

A newcomer creates a person, sends /start, sees the bot's answer and its inline keyboard arrive
without a reload, and presses a button; the bot side is played over the Bot API by the test.
The phone-sized screenshot lands in `tests/e2e/artifacts/webchat.png` for a human to look at.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from tests.e2e.browser import CHROMIUM, requires_chromium
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.telegram import create_app

TOKEN = "123456:TEST-webchat-browser-token"
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = {"width": 390, "height": 844}

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with run_asgi(create_app(token=TOKEN, test_api_secret=TEST_API_SECRET)) as url:
        yield url


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        (await client.post("/_test/reset", headers=TEST_API)).raise_for_status()
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
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


@pytest.fixture
async def page(browser: Browser, server: str) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale="en-US")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(server)
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], errors


async def bot_call(http: httpx.AsyncClient, method: str, **params: Any) -> Any:
    body = (await http.post(f"/bot{TOKEN}/{method}", json=params)).json()
    assert body["ok"], body
    return body["result"]


async def current_chat_id(page: Page) -> int:
    stored = await page.evaluate("localStorage.getItem('tggate.webchat.person')")
    chat_id: int = json.loads(stored)["chat_id"]
    return chat_id


async def test_talk_to_the_bot_in_the_browser(page: Page, http: httpx.AsyncClient) -> None:
    # A newcomer: the picker is open, the chat is not.
    await expect(page.locator("#people-panel")).to_be_visible()
    await page.fill("#person-name", "Anna")
    await page.select_option("#person-language", "ru")
    await page.click("#person-create")
    await expect(page.locator("#message-input")).to_be_visible()
    await expect(page.locator("#message-input")).to_have_attribute("placeholder", "Сообщение")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    chat_id = await current_chat_id(page)

    await page.fill("#message-input", "/start")
    await page.press("#message-input", "Enter")
    await expect(page.locator(".message.person .text")).to_have_text(["/start"])
    await expect(page.locator("#message-input")).to_have_value("")
    [update] = await bot_call(http, "getUpdates")
    assert update["message"]["text"] == "/start"
    assert update["message"]["from"]["id"] == chat_id
    assert update["message"]["from"]["language_code"] == "ru"

    # The bot answers; the page shows it without a reload.
    await bot_call(
        http,
        "setMyCommands",
        commands=[
            {"command": "start", "description": "Начать"},
            {"command": "login", "description": "Войти"},
            {"command": "help", "description": "Помощь"},
        ],
        language_code="ru",
    )
    sent = await bot_call(
        http,
        "sendMessage",
        chat_id=chat_id,
        text="Здравствуйте! Войдите: /login или посмотрите https://example.org/help.\n"
        "<b>не разметка</b>",
        reply_markup={
            "inline_keyboard": [
                [
                    {"text": "GitHub", "callback_data": "/login github"},
                    {"text": "Яндекс ID", "callback_data": "/login yandex"},
                ],
                [{"text": "Документация", "url": "https://example.org/docs"}],
            ]
        },
    )
    bot_message = page.locator(f'.message.bot[data-message-id="{sent["message_id"]}"]')
    await expect(bot_message.locator(".text")).to_contain_text("Здравствуйте!")
    # Bot text is text: markup stays literal, only links and commands become clickable.
    await expect(bot_message.locator(".text")).to_contain_text("<b>не разметка</b>")
    assert await bot_message.locator(".text b, .text img, .text script").count() == 0
    link = bot_message.locator(".text a[href]")
    await expect(link).to_have_attribute("href", "https://example.org/help")
    await expect(link).to_have_attribute("target", "_blank")
    commands_in_text = bot_message.locator(".text button.command-link")
    await expect(commands_in_text).to_have_count(1)  # "/login", not the "/b" of "</b>"
    await expect(commands_in_text).to_have_attribute("data-command", "/login")
    button = bot_message.locator('.keyboard button[data-callback="/login github"]')
    await expect(button).to_have_text("GitHub")
    url_button = bot_message.locator(".keyboard a[data-url]")
    await expect(url_button).to_have_attribute("href", "https://example.org/docs")
    await expect(url_button).to_have_attribute("target", "_blank")
    await expect(url_button).to_have_attribute("rel", "noopener noreferrer")
    await expect(page.locator("#commands button.command")).to_have_text(
        ["/start", "/login", "/help"]
    )

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    await page.screenshot(path=str(ARTIFACTS / "webchat.png"))

    # Pressing the button is a callback query for the bot, and its answer shows as a toast.
    await button.click()
    updates = await bot_call(http, "getUpdates", offset=update["update_id"] + 1, timeout=5)
    [query] = [u["callback_query"] for u in updates]
    assert query["data"] == "/login github"
    assert query["message"]["message_id"] == sent["message_id"]
    assert query["from"]["id"] == chat_id
    await bot_call(http, "answerCallbackQuery", callback_query_id=query["id"], text="Открываю…")
    await expect(page.locator("#toast")).to_have_text("Открываю…")

    # The bot edits its message: the new text replaces the old, the keyboard goes away.
    await bot_call(
        http,
        "editMessageText",
        chat_id=chat_id,
        message_id=sent["message_id"],
        text="Откройте ссылку, чтобы войти.",
    )
    await expect(bot_message.locator(".text")).to_have_text("Откройте ссылку, чтобы войти.")
    await expect(bot_message.locator(".edited")).to_have_text("изменено")
    await expect(bot_message.locator(".keyboard")).to_have_count(0)

    # A command from the menu fills the box; a reload keeps the person and the history.
    await page.click('#commands button[data-command="/help"]')
    await expect(page.locator("#message-input")).to_have_value("/help ")
    await page.reload()
    await expect(page.locator("#person-label")).to_have_text("Anna")
    await expect(page.locator(".message")).to_have_count(2)
    assert await current_chat_id(page) == chat_id


async def test_switch_between_people(page: Page, http: httpx.AsyncClient) -> None:
    # The picker lists the people this browser created, never chats of others (issue 9).
    injected = {"chat_id": 4242, "text": "hello", "first_name": "Stranger", "language_code": "en"}
    (await http.post("/_test/inject", json=injected, headers=TEST_API)).raise_for_status()
    await page.fill("#person-name", "Dima")
    await page.select_option("#person-language", "en")
    await page.click("#person-create")
    await expect(page.locator("#person-label")).to_have_text("Dima")
    await page.fill("#message-input", "hello")
    await page.press("#message-input", "Enter")
    await expect(page.locator(".message.person .text")).to_have_text(["hello"])
    dima = await current_chat_id(page)

    await page.click("#people-toggle")
    await page.fill("#person-name", "Anna")
    await page.select_option("#person-language", "ru")
    await page.click("#person-create")
    await expect(page.locator("#person-label")).to_have_text("Anna")
    await expect(page.locator(".message")).to_have_count(0)

    await page.click("#people-toggle")
    await expect(page.locator("#people-list button.person")).to_have_count(2)
    await expect(page.locator('#people-list button.person[data-chat-id="4242"]')).to_have_count(0)
    await page.click(f'#people-list button.person[data-chat-id="{dima}"]')
    await expect(page.locator("#person-label")).to_have_text("Dima")
    await expect(page.locator(".message.person .text")).to_have_text(["hello"])
    await expect(page.locator("#message-input")).to_have_attribute("placeholder", "Message")


async def test_the_page_reconnects_after_losing_the_network(
    page: Page, http: httpx.AsyncClient
) -> None:
    await page.fill("#person-name", "Anna")
    await page.click("#person-create")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    chat_id = await current_chat_id(page)
    await page.fill("#message-input", "/start")
    await page.press("#message-input", "Enter")
    await expect(page.locator(".message.person")).to_have_count(1)

    await page.context.set_offline(True)
    await bot_call(http, "sendMessage", chat_id=chat_id, text="While you were away")
    await page.evaluate("window.dispatchEvent(new Event('online'))")  # poll now, and fail
    await expect(page.locator("#status")).to_have_attribute("data-state", "offline")

    await page.context.set_offline(False)
    await expect(page.locator(".message.bot .text")).to_have_text(["While you were away"])
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
