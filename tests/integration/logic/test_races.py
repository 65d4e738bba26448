"""Races on one chat: commands and timer cycles (docs/scenarios.md#atomic), and concurrent 401s
on two replicas (docs/scenarios.md#single-flight)."""

from __future__ import annotations

import asyncio

import httpx
from tests.integration.logic.conftest import INTERNAL_TOKEN, Bot
from tests.support.waiting import eventually

from tggate.core.session import Status

COMMANDS = 50


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


async def test_concurrent_401s_on_two_replica_processes_cause_exactly_one_refresh(
    bot: Bot, chat: int, replica_processes: list[str]
) -> None:
    """Z7 across replicas: every one of 50 commands sees the 401 while the one /refresh is in
    flight (the Authorization module is held slow until they all have), and still only one
    /refresh happens and every command gets its answer. Planted defects it catches: the Redis
    lock replaced by a per-process lock (2 refreshes), no lock (50)."""
    await bot.login(chat, identity="alice", access_ttl_s=-10)  # the access token expired
    await bot.auth.post("/test/stats/reset")
    await bot.main.post("/test/stats/reset")
    await bot.slow("auth", 600)  # until every command has seen its 401
    try:
        headers = {"X-Internal-Token": INTERNAL_TOKEN}
        async with (
            httpx.AsyncClient(base_url=replica_processes[0], headers=headers, timeout=300) as a,
            httpx.AsyncClient(base_url=replica_processes[1], headers=headers, timeout=300) as b,
        ):
            replicas = [
                Bot(logic=http, auth=bot.auth, main=bot.main, redis=bot.redis) for http in (a, b)
            ]
            commands = asyncio.gather(
                *(replicas[i % 2].command(chat, "courses") for i in range(COMMANDS))
            )

            async def all_saw_401() -> bool:
                answers = await bot.main_answers("GET /api/courses")
                return answers.get("401", 0) >= COMMANDS

            await eventually(all_saw_401, what=f"{COMMANDS} answers 401 from the Main module")
            await bot.slow("auth", 0)
            replies = await commands
    finally:
        await bot.slow("auth", 0)
    assert (await bot.auth_stats())["refresh"] == 1
    assert await bot.main_answers("GET /api/courses") == {"401": COMMANDS, "200": COMMANDS}
    assert all("py101" in r[0]["text"] for r in replies), replies
    assert (await bot.session(chat))["status"] == "authorized"
