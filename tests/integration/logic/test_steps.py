"""Every step of the seed (docs/scenarios.md) through Bot Logic's HTTP API, real Redis, real
modules."""

from __future__ import annotations

import asyncio

import httpx
from tests.integration.logic.conftest import INTERNAL_TOKEN, Bot

from tggate.core.session import Status


async def test_C7_bot_logic_reads_the_chat_key_from_redis(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "github"})
    assert (await bot.session(chat))["status"] == "anonymous"
    assert await bot.indexed(chat, Status.ANONYMOUS)


async def test_U1_not_logged_in_offers_login(bot: Bot, chat: int) -> None:
    replies = await bot.command(chat, "me")
    assert "not logged in" in replies[0]["text"]
    buttons = [b["command"] for row in replies[0]["buttons"] for b in row]
    assert buttons == ["/login github", "/login yandex", "/login code"]
    assert await bot.session(chat) == {}
    assert (await bot.auth_stats())["login"] == 0


async def test_U1_russian_by_default(bot: Bot, chat: int) -> None:
    replies = await bot.command(chat, "login", language="ru")
    assert replies[0]["text"].startswith("Вы не залогинены")


async def test_U2_login_with_type_stores_anonymous_and_relays_the_link(bot: Bot, chat: int) -> None:
    replies = await bot.command(chat, "login", {"type": "github"})
    session = await bot.session(chat)
    assert session["status"] == "anonymous"
    url = replies[0]["buttons"][0][0]["url"]
    assert url.startswith("http")
    assert session["login_token"] not in url and session["login_token"] not in replies[0]["text"]
    assert await bot.session_ttl(chat) > 0  # expires with the login


async def test_U2_code_login_shows_a_code(bot: Bot, chat: int) -> None:
    replies = await bot.command(chat, "login", {"type": "code"})
    pending = (await bot.auth.get("/test/pending")).json()
    code = next(p["code"] for p in pending if p["chat_id"] == chat)
    assert code in replies[0]["text"]


async def test_A1_login_with_type_replaces_the_login_token(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "github"})
    first = (await bot.session(chat))["login_token"]
    await bot.command(chat, "login", {"type": "yandex"})
    second = await bot.session(chat)
    assert second["login_token"] != first and second["login_type"] == "yandex"


async def test_A2_A6_other_command_checks_and_pending_repeats_the_link(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "github"})
    replies = await bot.command(chat, "courses")
    assert "not finished" in replies[0]["text"]
    assert replies[0]["buttons"][0][0]["url"].startswith("http")
    assert (await bot.auth_stats())["login/check"] == 1
    assert (await bot.session(chat))["status"] == "anonymous"


async def test_A3_expired_login_deletes_the_key(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "code"})
    # A token the module does not know (as after it expired there): the check says unknown.
    await bot.forget_login(chat, "forgotten-token")
    text = await bot.texts(chat, "me")
    assert "not logged in" in text
    assert await bot.session(chat) == {}


async def test_A4_denied_deletes_the_key_and_says_login_failed(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "code"})
    await bot.resolve(chat, "denied")
    assert await bot.texts(chat, "me") == "Login failed."
    assert await bot.session(chat) == {}


async def test_A5_granted_stores_jwts_and_runs_the_command(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "github"})
    await bot.resolve(chat, "granted", identity="alice", name="Alice")
    replies = await bot.command(chat, "me")
    assert replies[0]["text"] == "You are logged in."
    assert "Alice" in replies[1]["text"]
    session = await bot.session(chat)
    assert session["status"] == "authorized"
    assert session["access_token"].count(".") == 2 and session["refresh_token"].count(".") == 2
    assert "login_token" not in session or not session["login_token"]
    assert await bot.session_ttl(chat) == -1
    assert await bot.indexed(chat, Status.AUTHORIZED)
    assert not await bot.indexed(chat, Status.ANONYMOUS)


async def test_Z1_already_logged_in(bot: Bot, chat: int) -> None:
    await bot.login(chat)
    assert await bot.texts(chat, "login", {"type": "github"}) == "You are already logged in."
    assert await bot.texts(chat, "login") == "You are already logged in."


async def test_Z2_logout_deletes_the_key(bot: Bot, chat: int) -> None:
    await bot.login(chat)
    assert await bot.texts(chat, "logout") == "Session ended."
    assert await bot.session(chat) == {}
    assert not await bot.indexed(chat, Status.AUTHORIZED)


async def test_Z3_logout_all_revokes_every_refresh_token(bot: Bot, chat: int) -> None:
    other_device = chat + 100_000
    await bot.login(chat, identity="dora")
    await bot.login(other_device, identity="dora", access_ttl_s=-10)
    assert await bot.texts(chat, "logout", {"all": "true"}) == "Session ended on all devices."
    assert await bot.session(chat) == {}
    assert (await bot.auth_stats())["logout"] == 1
    # The other device's refresh token was revoked: its next action ends in Z8.
    assert "not logged in" in await bot.texts(other_device, "me")


async def test_Z4_Z5_action_answered_from_main_module_data(bot: Bot, chat: int) -> None:
    await bot.login(chat, identity="alice")
    text = await bot.texts(chat, "courses")
    assert "py101" in text
    assert (await bot.main_stats()).get("GET /api/courses") == 1


async def test_Z4_path_arguments_are_url_encoded(bot: Bot, chat: int) -> None:
    await bot.login(chat)
    response = await bot.post_command(chat, "course", {"course_id": "../api/me"})
    assert response.status_code == 200
    assert "Usage" in response.json()["replies"][0]["text"]
    assert not [k for k in (await bot.main_stats()) if "courses" in k]


async def test_Z6_forbidden_action(bot: Bot, chat: int) -> None:
    await bot.login(chat, identity="alice")  # a student
    assert await bot.texts(chat, "students", {"course_id": "py101"}) == (
        "Not enough rights for this action."
    )


async def test_Z7_Z8_expired_refresh_token_ends_the_session(bot: Bot, chat: int) -> None:
    await bot.login(chat, access_ttl_s=-10, refresh_ttl_s=-10)
    assert "not logged in" in await bot.texts(chat, "me")
    assert await bot.session(chat) == {}


async def test_Z7_Z9_expired_access_token_refreshed_and_retried(bot: Bot, chat: int) -> None:
    await bot.login(chat, identity="alice", name="Alice", access_ttl_s=-10)
    before = await bot.session(chat)
    assert "Alice" in await bot.texts(chat, "me")
    after = await bot.session(chat)
    assert after["status"] == "authorized"
    assert after["refresh_token"] != before["refresh_token"]
    assert (await bot.auth_stats())["refresh"] == 1
    stats = await bot.main_stats()
    assert stats["GET /api/me"] == 2  # the 401, then the retry


async def test_L1_L3_login_cycle_granted_denied_expired(bot: Bot) -> None:
    granted, denied, gone = 7001, 7002, 7003
    for chat in (granted, denied, gone):
        await bot.command(chat, "login", {"type": "code"})
    await bot.resolve(granted, "granted")
    await bot.resolve(denied, "denied")
    await bot.forget_login(gone, "unknown-to-the-module")
    messages = await bot.cycle("login")
    by_chat = {m["chat_id"]: m["text"] for m in messages}
    assert by_chat == {granted: "You are logged in.", denied: "Login failed."}
    assert (await bot.session(granted))["status"] == "authorized"
    assert await bot.session(denied) == {}
    assert await bot.session(gone) == {}


async def test_L2_pending_login_stays_anonymous(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "code"})
    assert await bot.cycle("login") == []
    assert (await bot.session(chat))["status"] == "anonymous"


async def test_N1_N3_notification_cycle_delivers_and_deletes(bot: Bot, chat: int) -> None:
    await bot.login(chat, identity="erin")
    created = await bot.main.post("/notifications", json={"to": "erin", "text": "Deadline!"})
    assert created.status_code == 201
    messages = await bot.cycle("notifications")
    assert [(m["chat_id"], m["text"]) for m in messages] == [(chat, "🔔 Deadline!")]
    assert (await bot.main_stats()).get("DELETE /notification") == 1
    # Not acknowledged: the next cycle returns it again (the outbox is durable)…
    assert [m["id"] for m in await bot.cycle("notifications")] == [messages[0]["id"]]
    # …acknowledged: gone for good.
    acked = await bot.logic.post("/v1/messages/ack", json={"ids": [messages[0]["id"]]})
    assert acked.json() == {"acknowledged": 1}
    assert await bot.cycle("notifications") == []


async def test_N2_expired_access_token_in_the_cycle_is_refreshed(bot: Bot, chat: int) -> None:
    await bot.login(chat, identity="frank", access_ttl_s=-10)
    await bot.main.post("/notifications", json={"to": "frank", "text": "Hello"})
    messages = await bot.cycle("notifications")
    assert [m["text"] for m in messages] == ["🔔 Hello"]
    assert (await bot.auth_stats())["refresh"] == 1


async def test_cycles_are_sharded(bot: Bot) -> None:
    chats = list(range(8100, 8110))
    for chat in chats:
        await bot.command(chat, "login", {"type": "code"})
        await bot.resolve(chat, "granted")
    seen: list[int] = []
    for shard in range(3):
        in_shard = [m["chat_id"] for m in await bot.cycle("login", shard=shard, shards=3)]
        assert in_shard and all(c % 3 == shard for c in in_shard)
        seen += in_shard
    assert sorted(seen) == chats


async def test_concurrent_expired_tokens_refresh_once_across_replicas(
    bot: Bot, chat: int, second_replica_url: str
) -> None:
    await bot.login(chat, identity="alice", access_ttl_s=-10)
    await bot.auth.post("/test/stats/reset")
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    async with httpx.AsyncClient(base_url=second_replica_url, headers=headers) as other:
        replica_b = Bot(logic=other, auth=bot.auth, main=bot.main, redis=bot.redis)
        replies = await asyncio.gather(
            *((bot if i % 2 else replica_b).command(chat, "courses") for i in range(50))
        )
    assert all("py101" in r[0]["text"] for r in replies)
    assert (await bot.auth_stats())["refresh"] == 1
    assert (await bot.session(chat))["status"] == "authorized"
