"""Every step of the seed (docs/scenarios.md) through Bot Logic's HTTP API, real Redis, real
modules."""

from __future__ import annotations

import asyncio

from tests.integration.logic.conftest import AUTH_PUBLIC_URL, Bot, next_update_id
from tests.support.waiting import eventually

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
    # No `language` at all (docs/openapi/logic.yaml: it defaults to ru, the seed's language).
    body = {"update_id": next_update_id(), "chat_id": chat, "command": "login"}
    response = await bot.logic.post("/v1/commands", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["replies"][0]["text"].startswith("Вы не залогинены")


async def test_U2_login_with_type_stores_anonymous_and_relays_the_link(bot: Bot, chat: int) -> None:
    replies = await bot.command(chat, "login", {"type": "github"})
    session = await bot.session(chat)
    assert session["status"] == "anonymous"
    assert (await bot.auth_stats())["login"] == 1  # the module started one login
    # The link is the module's own: its public URL, its OAuth start page, its single-use ref.
    url = replies[0]["buttons"][0][0]["url"]
    assert url.startswith(f"{AUTH_PUBLIC_URL}/oauth/github/start?ref=")
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


async def test_A1_relays_the_new_login_code(bot: Bot, chat: int) -> None:
    first_reply = await bot.texts(chat, "login", {"type": "code"})
    (first_code,) = await codes_of(bot, chat)
    assert first_code in first_reply
    second_reply = await bot.texts(chat, "login", {"type": "code"})
    (second_code,) = set(await codes_of(bot, chat)) - {first_code}
    assert (await bot.auth_stats())["login"] == 2  # a new login at the module, not a repeat
    assert second_code in second_reply and first_code not in second_reply


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
    before = await bot.session(chat)
    assert await bot.texts(chat, "students", {"course_id": "py101"}) == (
        "Not enough rights for this action."
    )
    assert (await bot.main_answers("GET /api/courses/{course_id}/students")) == {"403": 1}
    assert await bot.session(chat) == before  # the session is left as it was


async def test_Z7_Z8_expired_refresh_token_ends_the_session(bot: Bot, chat: int) -> None:
    await bot.login(chat, access_ttl_s=-10, refresh_ttl_s=-10)
    assert "not logged in" in await bot.texts(chat, "me")
    assert await bot.session(chat) == {}
    # Z7: the 401 made Bot Logic ask /refresh; Z8: the module refused, so the chat is Unknown.
    assert await bot.main_answers("GET /api/me") == {"401": 1}
    assert (await bot.auth_stats())["refresh"] == 1


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


async def test_N2_deletes_exactly_the_ids_it_took(bot: Bot, chat: int) -> None:
    """The delete names exactly the notifications read: one that arrives between the read and
    the delete stays at the Main module for the next tick (docs/scenarios.md#n2). The delete is
    held at the module until that one has arrived."""
    await bot.login(chat, identity="hana")
    for text in ("first", "second"):
        await bot.main.post("/notifications", json={"to": "hana", "text": text})
    await bot.slow("main", 600, route="DELETE /notification")
    try:
        cycle = asyncio.create_task(bot.cycle("notifications"))

        async def deleting() -> bool:
            stats = await bot.main_stats()
            return stats.get("DELETE /notification", 0) >= 1 or cycle.done()

        await eventually(deleting, what="the cycle's DELETE /notification")
        assert not cycle.done(), "the cycle ended without deleting what it took"
        await bot.main.post("/notifications", json={"to": "hana", "text": "meanwhile"})
        await bot.slow("main", 0)
        messages = await cycle
    finally:
        await bot.slow("main", 0)
    assert [m["text"] for m in messages] == ["🔔 first", "🔔 second"]
    assert await bot.notifications_at_main("hana") == ["meanwhile"]
    await bot.logic.post("/v1/messages/ack", json={"ids": [m["id"] for m in messages]})
    assert [m["text"] for m in await bot.cycle("notifications")] == ["🔔 meanwhile"]
    assert await bot.notifications_at_main("hana") == []


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


async def codes_of(bot: Bot, chat: int) -> list[str]:
    """The codes of the chat's open logins at the Authorization module."""
    pending = (await bot.auth.get("/test/pending")).json()
    return [p["code"] for p in pending if p["chat_id"] == chat]
