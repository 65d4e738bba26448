"""Sessions no configured key opens (docs/state-machine.md#lost-sessions), and what is sealed at
rest (issue 9, findings 7 and 9): Bot Logic replicas with different TGGATE_SESSION_KEYS on one
Redis, over real HTTP, with the reference modules.

Before issue 9 a restart with a new key left every logged-in chat unanswered: `/me` said
"temporarily unavailable", every later command (`/logout` too) was a 503 the client retried for
ever. Now the chat is told once to log in again and the key is deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis
from tests.integration.logic.conftest import INTERNAL_TOKEN, Bot, ModuleUrls
from tests.support.servers import run_asgi

from tggate.adapters.token_cipher import TokenCipher
from tggate.bootstrap import build_logic_app
from tggate.core.session import Status
from tggate.settings import load_settings

OLD_KEY = TokenCipher.generate_key()
NEW_KEY = TokenCipher.generate_key()
LOST = "Your session could not be restored, please log in again."


def _app_url(modules: ModuleUrls, redis_url: str, keys: str | None) -> Iterator[str]:
    settings = load_settings(
        redis_url=redis_url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        http_timeout_s=1.0,
        session_keys=keys,
    )
    with run_asgi(build_logic_app(settings, redis_url=redis_url)) as url:
        yield url


@pytest.fixture(scope="module")
def old_key_url(modules: ModuleUrls, redis_url: str) -> Iterator[str]:
    yield from _app_url(modules, redis_url, OLD_KEY)


@pytest.fixture(scope="module")
def new_key_url(modules: ModuleUrls, redis_url: str) -> Iterator[str]:
    yield from _app_url(modules, redis_url, NEW_KEY)


@pytest.fixture(scope="module")
def rotated_url(modules: ModuleUrls, redis_url: str) -> Iterator[str]:
    """A rotation done right: the new key first, the old one still there to open."""
    yield from _app_url(modules, redis_url, f"{NEW_KEY},{OLD_KEY}")


@pytest.fixture(scope="module")
def no_keys_url(modules: ModuleUrls, redis_url: str) -> Iterator[str]:
    yield from _app_url(modules, redis_url, None)


@asynccontextmanager
async def replica(url: str, bot: Bot) -> AsyncIterator[Bot]:
    """The same chats through another Bot Logic (another key) on the same Redis."""
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as logic:
        yield Bot(logic=logic, auth=bot.auth, main=bot.main, redis=bot.redis)


@pytest.fixture
async def sealing(bot: Bot, old_key_url: str) -> AsyncIterator[Bot]:
    """Bot Logic that seals with OLD_KEY."""
    async with replica(old_key_url, bot) as sealing:
        yield sealing


async def test_a_session_sealed_with_another_key_is_lost_and_said_so_once(
    sealing: Bot, new_key_url: str, chat: int
) -> None:
    await sealing.login(chat, identity="alice", name="Alice")
    async with replica(new_key_url, sealing) as restarted:
        replies = await restarted.command(chat, "me")
        assert [r["text"].splitlines()[0] for r in replies] == [LOST]
        assert [b["command"] for row in replies[0]["buttons"] for b in row] == [
            "/login github",
            "/login yandex",
            "/login code",
        ]
        assert await restarted.session(chat) == {}  # the key is gone, with its index entry
        assert not await restarted.indexed(chat, Status.AUTHORIZED)
        # Every later command is answered as for any chat that is not logged in…
        assert "not logged in" in await restarted.texts(chat, "logout")
        # …and logging in again works, sealed with the new key from now on.
        await restarted.login(chat, identity="alice", name="Alice")
        assert "Alice" in await restarted.texts(chat, "me")


async def test_a_rotation_that_keeps_the_old_key_loses_nothing(
    sealing: Bot, rotated_url: str, chat: int
) -> None:
    await sealing.login(chat, identity="alice", name="Alice")
    async with replica(rotated_url, sealing) as rotated:
        assert "Alice" in await rotated.texts(chat, "me")


async def test_sealed_sessions_without_keys_are_lost_too(
    sealing: Bot, no_keys_url: str, chat: int
) -> None:
    await sealing.login(chat)
    async with replica(no_keys_url, sealing) as unkeyed:
        assert (await unkeyed.texts(chat, "me")).startswith(LOST)
        assert await unkeyed.session(chat) == {}
        # Tokens sealed, then read without keys, were never sent anywhere as they are.
        assert (await unkeyed.auth_stats())["refresh"] == 0


async def test_the_timer_cycles_end_lost_sessions_with_one_message_each(
    sealing: Bot, new_key_url: str, redis_client: Redis
) -> None:
    anonymous, authorized = 7301, 7302
    await sealing.command(anonymous, "login", {"type": "code"}, language="ru")
    await sealing.login(authorized)
    async with replica(new_key_url, sealing) as restarted:
        login = [m for m in await restarted.cycle("login") if m["chat_id"] == anonymous]
        notes = [m for m in await restarted.cycle("notifications") if m["chat_id"] == authorized]
        # Each in the chat's own language, which is not sealed.
        assert [m["text"].splitlines()[0] for m in login] == [
            "Не удалось восстановить ваш сеанс, войдите снова."
        ]
        assert [m["text"].splitlines()[0] for m in notes] == [LOST]
        assert await restarted.session(anonymous) == {}
        assert await restarted.session(authorized) == {}
        # Until acknowledged the same message is handed out again, never a second one…
        again = [m["id"] for m in await restarted.cycle("login") if m["chat_id"] == anonymous]
        assert again == [login[0]["id"]]
        acked = await restarted.logic.post(
            "/v1/messages/ack", json={"ids": [login[0]["id"], notes[0]["id"]]}
        )
        assert acked.json() == {"acknowledged": 2}
        # …and once delivered, the chats are out of every index: no message storm.
        assert [m for m in await restarted.cycle("login") if m["chat_id"] == anonymous] == []
        notes = await restarted.cycle("notifications")
        assert [m for m in notes if m["chat_id"] == authorized] == []


async def test_a_login_prompt_and_a_kept_answer_are_sealed_at_rest(
    sealing: Bot, redis_client: Redis, chat: int
) -> None:
    """Finding 7: the login code and its prompt, and answers kept for repeated updates (a
    student list), sat in Redis in plaintext for a day."""
    replies = await sealing.command(chat, "login", {"type": "code"}, update_id=8_100_000 + chat)
    pending = (await sealing.auth.get("/test/pending")).json()
    code = next(p["code"] for p in pending if p["chat_id"] == chat)
    assert code in replies[0]["text"]
    keys = sealing.store.keys
    # The session's values are one sealed blob; only its status, revision and language show.
    data = await redis_client.hget(keys.session(chat), "data")
    assert data is not None and data.startswith(b"s1:")
    kept = await redis_client.hget(keys.updates(chat), str(8_100_000 + chat))
    # The kept answer is a sealed record (its first byte names the format: redis_store).
    assert kept is not None and kept[:1] == b"\x01"
    everything = b"".join(
        [
            str(await redis_client.hgetall(k)).encode()
            for k in await redis_client.keys("*:session:*")
        ]
        + [
            str(await redis_client.hgetall(k)).encode()
            for k in await redis_client.keys("*:updates:*")
        ]
    )
    assert code.encode() not in everything
    # The kept answer still opens: a repeated update gets the first answer.
    again = await sealing.command(chat, "login", {"type": "code"}, update_id=8_100_000 + chat)
    assert again == replies


async def test_an_answer_kept_under_another_key_is_handled_anew(
    sealing: Bot, new_key_url: str, chat: int
) -> None:
    update_id = 8_200_000 + chat
    await sealing.command(chat, "help", update_id=update_id)
    async with replica(new_key_url, sealing) as restarted:
        response = await restarted.post_command(chat, "help", update_id=update_id)
        assert response.status_code == 200  # not a 503 the client would retry for ever
        assert "Commands:" in response.json()["replies"][0]["text"]
