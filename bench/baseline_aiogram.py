"""The baseline: the same bot written the plain aiogram 3 way, for `python -m bench baseline`.

Its own `Dispatcher`, `start_polling` and `RedisStorage` (aiogram.fsm.storage.redis) holding the
session state (`authorized`, with the access and refresh tokens in the FSM data). For the same
commands it does what tggate does: checks the login state, calls the same reference Main module
with the stored access token (a 401 trades the refresh token at the Authorization module once),
and renders the reply with tggate's own command table and `render_action_reply`. What it does
not have is what tggate adds on top: offsets confirmed only after handling, idempotency by
update_id, per-chat order, sending limits, the Redis compare-and-set, replicas behind nginx.

Run as a process: `python -m bench.baseline_aiogram` with BENCH_TELEGRAM_URL, BENCH_BOT_TOKEN,
BENCH_REDIS_URL, BENCH_MAIN_URL, BENCH_AUTH_URL and optionally BENCH_TASKS_LIMIT (aiogram's
`tasks_concurrency_limit`; unset = aiogram's default, no limit, and redis-py's default pool; set =
a blocking pool of 64 connections, as tggate's).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any
from urllib.parse import quote

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from redis.asyncio import BlockingConnectionPool, Redis

from tggate.core.commands import (
    ActionSpec,
    CommandTable,
    ParsedCommand,
    load_command_table,
    parse_text,
)
from tggate.core.machine import Reply, login_offer
from tggate.core.render import render_action_reply
from tggate.core.texts import Text, language_of, say

__all__ = ["Session", "build_dispatcher", "seed_sessions"]

log = logging.getLogger("bench.baseline_aiogram")


class Session(StatesGroup):
    authorized = State()


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=b.text, url=b.url)
                if b.url
                else InlineKeyboardButton(text=b.text, callback_data=b.command or "")
                for b in row
            ]
            for row in reply.buttons
        ]
    )


async def _answer(message: Message, reply: Reply) -> None:
    await message.answer(reply.text, reply_markup=_markup(reply))


class ModuleCalls:
    """The Main module's actions and the Authorization module's /refresh, on one session."""

    def __init__(self, http: aiohttp.ClientSession, *, main_url: str, auth_url: str) -> None:
        self._http = http
        self._main = main_url.rstrip("/")
        self._auth = auth_url.rstrip("/")

    async def action(self, spec: ActionSpec, args: dict[str, str], token: str) -> tuple[int, Any]:
        path = spec.path.format_map({k: quote(v, safe="") for k, v in args.items()})
        headers = {"Authorization": f"Bearer {token}"}
        async with self._http.request(spec.method, self._main + path, headers=headers) as answer:
            body = await answer.json(content_type=None) if answer.status == 200 else None
            return answer.status, body

    async def refresh(self, refresh_token: str) -> tuple[str, str] | None:
        body = {"refresh_token": refresh_token}
        async with self._http.post(self._auth + "/refresh", json=body) as answer:
            if answer.status != 200:
                return None
            pair = await answer.json()
            return pair["access_token"], pair["refresh_token"]


def build_dispatcher(
    storage: RedisStorage, table: CommandTable, modules: ModuleCalls
) -> Dispatcher:
    dp = Dispatcher(storage=storage)

    @dp.message(Command(*table.actions))
    async def action(message: Message, state: FSMContext) -> None:
        language = language_of(message.from_user.language_code if message.from_user else None)
        parsed = parse_text(message.text or "", table)
        if not isinstance(parsed, ParsedCommand):
            await message.answer(say(Text.NO_SUCH_COMMAND, language))
            return
        if await state.get_state() != Session.authorized.state:
            await _answer(message, login_offer(language))  # U1
            return
        data = await state.get_data()
        spec = table.actions[parsed.command]
        status, body = await modules.action(spec, dict(parsed.args), data["access_token"])
        if status == 401:  # Z7: one refresh, then the action again
            pair = await modules.refresh(data["refresh_token"])
            if pair is None:
                await state.clear()
                await _answer(message, login_offer(language))
                return
            await state.update_data(access_token=pair[0], refresh_token=pair[1])
            status, body = await modules.action(spec, dict(parsed.args), pair[0])
        if status == 200:
            text = render_action_reply(spec, body, language)
        elif status == 403:
            text = say(Text.FORBIDDEN, language)
        elif status == 404:
            text = say(Text.NOT_FOUND, language)
        else:
            text = say(Text.UNAVAILABLE, language)
        await message.answer(text)

    @dp.message(Command("logout"))
    async def logout(message: Message, state: FSMContext) -> None:
        language = language_of(message.from_user.language_code if message.from_user else None)
        await state.clear()
        await message.answer(say(Text.SESSION_ENDED, language))

    @dp.message()
    async def other(message: Message) -> None:
        language = language_of(message.from_user.language_code if message.from_user else None)
        await message.answer(say(Text.NO_SUCH_COMMAND, language))

    return dp


async def seed_sessions(
    redis_url: str, bot_id: int, tokens: dict[int, tuple[str, str]], language: str = "en"
) -> None:
    """The authorized state and tokens of each chat, through aiogram's own storage."""
    storage = RedisStorage.from_url(redis_url)
    try:
        for chat_id, (access, refresh) in tokens.items():
            key = StorageKey(bot_id=bot_id, chat_id=chat_id, user_id=chat_id)
            await storage.set_state(key, Session.authorized)
            await storage.set_data(
                key, {"access_token": access, "refresh_token": refresh, "language": language}
            )
    finally:
        await storage.close()


def _redis(url: str, *, blocking: bool) -> Redis:
    """Without a task limit: the default pool, as a plain aiogram bot has it (redis-py: at most
    100 connections, then MaxConnectionsError rather than a wait, and the update is lost).
    With one: a blocking pool of tggate's size (TGGATE_REDIS_MAX_CONNECTIONS' default, 64), so
    a burst waits for a connection and loses nothing, as in tggate (bootstrap.open_redis)."""
    if not blocking:
        return Redis.from_url(url)
    return Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=64, timeout=10))


async def main() -> None:
    env = os.environ
    limit = int(env["BENCH_TASKS_LIMIT"]) if env.get("BENCH_TASKS_LIMIT") else None
    storage = RedisStorage(redis=_redis(env["BENCH_REDIS_URL"], blocking=limit is not None))
    session = AiohttpSession(api=TelegramAPIServer.from_base(env["BENCH_TELEGRAM_URL"]))
    bot = Bot(env["BENCH_BOT_TOKEN"], session=session)
    table = load_command_table()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        modules = ModuleCalls(http, main_url=env["BENCH_MAIN_URL"], auth_url=env["BENCH_AUTH_URL"])
        dp = build_dispatcher(storage, table, modules)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        polling = asyncio.create_task(
            dp.start_polling(
                bot, handle_signals=False, close_bot_session=True, tasks_concurrency_limit=limit
            )
        )
        print("aiogram baseline polling", flush=True)
        await stop.wait()
        await dp.stop_polling()
        await polling
    await storage.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    import uvloop

    uvloop.run(main())
