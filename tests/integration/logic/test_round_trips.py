"""Redis round trips of one command (issue 11 item 3), counted by the Redis server (MONITOR):
at most 2 for an Unknown user's command and 3 for an authorized action; here both take 2
(claim + load in one script, write + answer + end of claim in another).

Counted: every command a client sent while the one command was handled. Not counted: what
scripts ran inside (one round trip each), and per-connection chores (a health-check PING every
30 s of idleness, the handshake of a new connection), which no single command pays for.
"""

from __future__ import annotations

from tests.integration.logic.conftest import Bot
from tests.support.redis_monitor import Monitored, watch_redis

_CHORES = frozenset({"ping", "client", "hello", "select", "auth"})


async def round_trips(bot: Bot, redis_url: str, chat: int, command: str) -> list[Monitored]:
    async with watch_redis(redis_url) as watch:
        await watch.mark()
        watch.clear()
        await bot.command(chat, command)
        await watch.mark()
        return [m for m in watch.from_clients() if m.name not in _CHORES]


async def test_an_unknown_users_command_takes_two_round_trips(
    bot: Bot, chat: int, redis_url: str
) -> None:
    await bot.command(chat + 50_000, "me")  # the server has loaded the scripts now

    sent = await round_trips(bot, redis_url, chat, "me")

    assert [m.name for m in sent] == ["evalsha", "evalsha"], sent


async def test_an_authorized_action_takes_two_round_trips(
    bot: Bot, chat: int, redis_url: str
) -> None:
    await bot.login(chat)

    sent = await round_trips(bot, redis_url, chat, "me")

    assert len(sent) <= 3, sent
    assert [m.name for m in sent] == ["evalsha", "evalsha"], sent


async def test_a_login_granted_during_a_command_is_written_with_its_answer(
    bot: Bot, chat: int, redis_url: str
) -> None:
    """A5: the session write and the answer are one script, not two round trips."""
    await bot.command(chat, "login", {"type": "code"})
    await bot.resolve(chat, "granted")

    sent = await round_trips(bot, redis_url, chat, "me")

    assert [m.name for m in sent] == ["evalsha", "evalsha"], sent
    assert (await bot.session(chat))["status"] == "authorized"
