"""Races between commands and timer cycles on one chat (docs/scenarios.md#atomic)."""

from __future__ import annotations

import asyncio

from tests.integration.logic.conftest import Bot

from tggate.core.session import Status


async def test_logout_racing_a_login_check_cycle_never_leaves_the_chat_authorized(
    bot: Bot, chat: int
) -> None:
    outcomes: set[str] = set()
    for round_ in range(40):
        await bot.command(chat, "login", {"type": "code"})
        await bot.resolve(chat, "granted")
        # Stagger the two a little differently each round to hit different interleavings.
        delay = (round_ % 5) * 0.002

        async def logout(delay: float = delay) -> list[dict[str, object]]:
            await asyncio.sleep(delay)
            return await bot.command(chat, "logout")

        replies, _messages = await asyncio.gather(logout(), bot.cycle("login"))
        outcomes.add(str(replies[-1]["text"]))
        assert await bot.session(chat) == {}, f"round {round_}: the chat is not Unknown"
        assert not await bot.indexed(chat, Status.AUTHORIZED)
        await bot.logic.post(
            "/v1/messages/ack", json={"ids": [m["id"] for m in await bot.cycle("login")]}
        )
    assert "Session ended." in outcomes


async def test_logout_all_racing_a_notification_cycle_refresh(bot: Bot, chat: int) -> None:
    for round_ in range(10):
        await bot.login(chat, identity="gina", access_ttl_s=-10)
        await bot.main.post("/notifications", json={"to": "gina", "text": f"n{round_}"})
        await asyncio.gather(
            bot.command(chat, "logout", {"all": "true"}), bot.cycle("notifications")
        )
        assert await bot.session(chat) == {}, f"round {round_}"
        pending = await bot.cycle("notifications")
        await bot.logic.post("/v1/messages/ack", json={"ids": [m["id"] for m in pending]})
