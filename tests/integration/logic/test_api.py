"""Bot Logic's HTTP contract (docs/contract.md#bot-logic): idempotency, bad input, unavailable
modules, probes."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from tests.integration.logic.conftest import INTERNAL_TOKEN, Bot, ModuleUrls
from tests.support.redis_servers import RedisProcess, free_port, server_args
from tests.support.servers import run_asgi

from tggate.bootstrap import build_logic_app
from tggate.client.logic_api import HttpLogicApi
from tggate.core.ports import OutboxKind
from tggate.core.replies import Button, Reply
from tggate.settings import load_settings


async def test_repeated_update_id_returns_the_first_answer_and_calls_nothing(
    bot: Bot, chat: int
) -> None:
    await bot.login(chat)
    await bot.main.post("/test/stats/reset")
    first = await bot.command(chat, "courses", update_id=555_000 + chat)
    again = await bot.command(chat, "courses", update_id=555_000 + chat)
    assert again == first
    assert (await bot.main_stats()).get("GET /api/courses") == 1
    # Also for a side effect at the Authorization module: U2 is not repeated.
    await bot.command(chat, "logout")
    await bot.auth.post("/test/stats/reset")
    login = await bot.command(chat, "login", {"type": "code"}, update_id=556_000 + chat)
    assert await bot.command(chat, "login", {"type": "code"}, update_id=556_000 + chat) == login
    assert (await bot.auth_stats())["login"] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"chat_id": 1, "command": "me"}, 422),  # no update_id
        ({"update_id": "x", "chat_id": 1, "command": "me"}, 422),
        ({"update_id": 1, "chat_id": 1, "command": "nosuch"}, 400),
        ({"update_id": 1, "chat_id": 1, "command": "../etc"}, 422),
        ({"update_id": 1, "chat_id": 1, "command": "me", "text": "x" * 5000}, 422),
        ({"update_id": 1, "chat_id": 1, "command": "me", "args": {"a": "b" * 2000}}, 422),
        ({"update_id": 1, "chat_id": 1, "command": "me", "extra": True}, 422),
        ({"update_id": -1, "chat_id": 1, "command": "me"}, 422),
        ([1, 2, 3], 422),
    ],
)
async def test_bad_command_bodies_are_4xx_with_a_message(
    bot: Bot, body: object, status: int
) -> None:
    response = await bot.logic.post("/v1/commands", json=body)
    assert response.status_code == status
    assert response.json()["detail"]


async def test_malformed_json_and_huge_bodies(bot: Bot) -> None:
    broken = await bot.logic.post(
        "/v1/commands", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    huge = await bot.logic.post("/v1/commands", content=b"x" * 200_000)
    assert huge.status_code == 413
    assert huge.json() == {"detail": "request body too large"}


async def test_a_huge_body_without_a_length_is_refused_as_it_streams(bot: Bot) -> None:
    """Chunked, so no Content-Length to refuse it by: counted as it arrives (issue 9)."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 10_000

    huge = await bot.logic.post("/v1/commands", content=chunks())
    assert huge.status_code == 413
    assert huge.json() == {"detail": "request body too large"}


@pytest.mark.parametrize("path", ["/v1/commands", "/v1/messages/ack"])
async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    logic_url: str, path: str
) -> None:
    """By its Content-Length alone, with no byte of the body sent: the answer comes without
    waiting for one (`/v1/commands` is the fast path, the rest go through `_Guard`)."""
    host, port = logic_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Internal-Token: {INTERNAL_TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n".encode()
        )
        # The bound turns a server waiting for the body into a failure, not a hang.
        status = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize("text", ["\u202e\u0000👩‍👩‍👧‍👦", "Ԁ" * 4096, "\ud7ff\ufeff", "🦀" * 1000])
async def test_odd_unicode_is_answered_not_crashed(bot: Bot, chat: int, text: str) -> None:
    body = {"update_id": 1, "chat_id": chat, "command": "help", "text": text, "language": "en"}
    body["update_id"] = abs(hash(text)) % 10**9
    response = await bot.logic.post("/v1/commands", json=body)
    assert response.status_code == 200
    odd_arg = await bot.post_command(chat, "course", {"course_id": text[:200]})
    assert odd_arg.status_code == 200
    assert "Usage" in odd_arg.json()["replies"][0]["text"] or "not logged in" in odd_arg.text


@pytest.mark.parametrize("token", [None, "", "wrong", INTERNAL_TOKEN + "x"])
async def test_wrong_internal_token_is_401(logic_url: str, token: str | None) -> None:
    headers = {} if token is None else {"X-Internal-Token": token}
    async with httpx.AsyncClient(base_url=logic_url, headers=headers) as client:
        for path in ("/v1/commands", "/v1/cycles/login", "/v1/messages/ack", "/v1/poller/lease"):
            response = await client.post(path, json={})
            assert response.status_code == 401, path
            assert response.json() == {"detail": "missing or wrong X-Internal-Token"}


async def test_probes_and_metrics(bot: Bot, chat: int) -> None:
    await bot.command(chat, "help")
    assert (await bot.logic.get("/healthz")).json() == {"status": "ok"}
    assert (await bot.logic.get("/readyz")).status_code == 200
    metrics = (await bot.logic.get("/metrics")).text
    assert 'tggate_commands_total{command="help",result="unknown->unknown"}' in metrics


async def test_cycle_shard_out_of_range_is_422(bot: Bot) -> None:
    response = await bot.logic.post("/v1/cycles/login", json={"shard": 3, "shards": 2})
    assert response.status_code == 422


async def test_poller_lease_is_exclusive(bot: Bot) -> None:
    first = await bot.logic.post("/v1/poller/lease", json={"instance": "a", "ttl_s": 5})
    second = await bot.logic.post("/v1/poller/lease", json={"instance": "b", "ttl_s": 5})
    renewed = await bot.logic.post("/v1/poller/lease", json={"instance": "a", "ttl_s": 5})
    assert [r.json()["granted"] for r in (first, second, renewed)] == [True, False, True]


async def test_slow_auth_module_gives_unavailable_and_keeps_the_session(
    bot: Bot, chat: int
) -> None:
    await bot.command(chat, "login", {"type": "code"})
    before = await bot.session(chat)
    await bot.auth.post("/test/delay", json={"seconds": 2})  # the logic's timeout is 1 s
    try:
        text = await bot.texts(chat, "me")
    finally:
        await bot.auth.post("/test/delay", json={"seconds": 0})
    assert "temporarily unavailable" in text
    assert await bot.session(chat) == before


async def test_slow_main_module_gives_unavailable_and_keeps_the_session(
    bot: Bot, chat: int
) -> None:
    await bot.login(chat)
    before = await bot.session(chat)
    await bot.main.post("/test/delay", json={"seconds": 2})
    try:
        text = await bot.texts(chat, "courses")
    finally:
        await bot.main.post("/test/delay", json={"seconds": 0})
    assert "temporarily unavailable" in text
    assert await bot.session(chat) == before


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections are refused


async def test_modules_down_give_unavailable_and_keep_the_session(
    bot: Bot, chat: int, modules: ModuleUrls, redis_url: str
) -> None:
    await bot.login(chat)
    before = await bot.session(chat)
    dead = f"http://127.0.0.1:{_closed_port()}"
    settings = load_settings(
        redis_url=redis_url, auth_url=dead, main_url=dead, internal_token=INTERNAL_TOKEN
    )
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    with run_asgi(build_logic_app(settings, redis_url=redis_url)) as url:
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            for command, args in (("courses", {}), ("logout", {"all": "true"})):
                body = {
                    "update_id": 9_000_000 + chat + len(args),
                    "chat_id": chat,
                    "command": command,
                    "args": args,
                    "language": "en",
                }
                response = await client.post("/v1/commands", json=body)
                assert response.status_code == 200
                assert "temporarily unavailable" in response.json()["replies"][0]["text"]
                # A module's failure is the command's answer, recorded: not offered again.
                assert "retry" not in response.json()
    assert await bot.session(chat) == before


async def test_redis_down_is_a_clear_reply_to_a_command_and_a_503_elsewhere(
    modules: ModuleUrls, tmp_path: object
) -> None:
    """docs/scenarios.md#unavailable and issue 10: the person is told, never a 5xx for a
    command; the internal endpoints answer 503 with a message (the client retries them)."""
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    settings = load_settings(
        redis_url=dead,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        redis_timeout_s=0.5,
    )
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    with run_asgi(build_logic_app(settings, redis_url=dead)) as url:
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            body = {"update_id": 1, "chat_id": 1, "command": "help", "language": "en"}
            response = await client.post("/v1/commands", json=body)
            assert response.status_code == 200
            answer = response.json()
            assert "temporarily unavailable" in answer["replies"][0]["text"]
            # Not done and nothing recorded: the client is to offer it again (issue 9).
            assert answer["retry"] is True
            again = await client.post("/v1/commands", json=body)
            assert again.status_code == 200 and again.json()["retry"] is True
            response = await client.post("/v1/cycles/login", json={})
            assert response.status_code == 503
            assert response.json() == {"detail": "temporarily unavailable"}
            assert (await client.get("/readyz")).status_code == 503


async def test_a_command_redis_stopped_is_offered_again_and_then_answered(
    modules: ModuleUrls, tmp_path: Path
) -> None:
    """Issue 9: the command Redis stopped is not done and not recorded (200 with the retry
    marker, issue 10: no 5xx); the same update_id offered again once Redis is back runs anew."""
    port = free_port()
    redis = RedisProcess("redis", port, tmp_path / "redis", server_args(port))
    redis.start()
    url = f"redis://127.0.0.1:{port}/0"
    settings = load_settings(
        redis_url=url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        redis_timeout_s=0.5,
    )
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    body = {"update_id": 77, "chat_id": 77_001, "command": "help", "language": "en"}
    try:
        with run_asgi(build_logic_app(settings, redis_url=url)) as logic_url:
            async with httpx.AsyncClient(base_url=logic_url, headers=headers) as client:
                redis.stop()
                stopped = await client.post("/v1/commands", json=body)
                assert stopped.status_code == 200
                assert stopped.json()["retry"] is True
                assert "temporarily unavailable" in stopped.json()["replies"][0]["text"]
                await asyncio.to_thread(redis.start)
                answered = await client.post("/v1/commands", json=body)
                assert answered.status_code == 200
                assert "retry" not in answered.json()
                assert "/login" in answered.json()["replies"][0]["text"]  # /help's own reply
                # Now it is recorded: the same update_id gets that answer again.
                assert (await client.post("/v1/commands", json=body)).json() == answered.json()
    finally:
        redis.stop()


async def test_no_token_appears_in_any_log_line(
    bot: Bot, chat: int, caplog: pytest.LogCaptureFixture, redis_client: Redis
) -> None:
    caplog.set_level(logging.DEBUG)
    await bot.command(chat, "login", {"type": "code"})
    login_token = (await bot.session(chat))["login_token"]
    await bot.resolve(chat, "granted", access_ttl_s=-10)
    await bot.command(chat, "me")  # A5, then Z7–Z9
    session = await bot.session(chat)
    await bot.main.post("/test/delay", json={"seconds": 2})
    await bot.command(chat, "courses")  # a timeout gets logged
    await bot.main.post("/test/delay", json={"seconds": 0})
    await bot.logic.post("/v1/commands", json={"update_id": 1}, headers={"X-Internal-Token": "w"})
    await bot.command(chat, "logout", {"all": "true"})
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert logged, "the run logged something"
    for secret in (login_token, session["access_token"], session["refresh_token"], INTERNAL_TOKEN):
        assert secret not in logged


async def test_the_clients_adapter_speaks_the_apps_contract(
    bot: Bot, chat: int, logic_url: str
) -> None:
    """One contract across the hop: the Telegram Client's HttpLogicApi against this Bot Logic."""
    async with HttpLogicApi.open(
        base_url=logic_url, internal_token=INTERNAL_TOKEN, timeout_s=10
    ) as api:
        [offer] = await api.command(
            update_id=900_000 + chat,
            chat_id=chat,
            command="me",
            args={},
            text="/me",
            language="en",
        )
        assert offer.chat_id == chat and "not logged in" in offer.reply.text
        assert offer.reply.buttons[0][0] == Button("GitHub", command="/login github")
        [prompt] = await api.command(
            update_id=900_001 + chat,
            chat_id=chat,
            command="login",
            args={"type": "github"},
            text="/login github",
            language="en",
        )
        assert prompt.reply.buttons[0][0].url is not None
        await bot.resolve(chat, "granted")
        messages = [
            m
            for shard in range(2)
            for m in await api.cycle(OutboxKind.LOGIN, shard=shard, shards=2)
            if m.chat_id == chat
        ]
        assert [(m.kind, m.reply) for m in messages] == [
            (OutboxKind.LOGIN, Reply("You are logged in."))
        ]
        await api.ack([m.id for m in messages])
        pending = await api.cycle(OutboxKind.LOGIN, shard=chat % 2, shards=2)
        assert [m for m in pending if m.chat_id == chat] == []
        # Another test may hold the poller lease; what matters here is that the answer reads.
        assert isinstance(await api.lease(instance=f"contract-{chat}", ttl_s=1), bool)
