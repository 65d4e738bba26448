"""A5 and L2: a grant must hold two JWTs (docs/scenarios.md#a5). An Authorization module that
grants with one token, or with something that is not a JWT, logs nobody in: the chat stays
Anonymous, the person is told the service is unavailable (a command) or nothing (the timer),
and no such token is stored. Bot Logic over real HTTP against a scripted module."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send
from tests.integration.logic.conftest import INTERNAL_TOKEN, ModuleUrls
from tests.support.servers import run_asgi

from tggate.adapters.redis_store import RedisSessionStore
from tggate.bootstrap import build_logic_app
from tggate.core.session import Anonymous, Status
from tggate.settings import load_settings

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
OTHER_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInR5cCI6InJlZnJlc2gifQ.c2ln"


class ScriptedAuth:
    """/login starts any login; /login/check answers `grant` (what the test scripted)."""

    def __init__(self) -> None:
        self.grant: dict[str, Any] = {"status": "pending"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        answer = (
            {"text": "Enter 123-456", "code": "123-456", "expires_in": 600}
            if scope["path"] == "/login"
            else self.grant
        )
        body = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[ScriptedAuth, str]]:
    auth = ScriptedAuth()
    with run_asgi(auth) as url:
        yield auth, url


@pytest.fixture(scope="module")
def grants_logic_url(
    scripted: tuple[ScriptedAuth, str], modules: ModuleUrls, redis_url: str
) -> Iterator[str]:
    settings = load_settings(
        redis_url=redis_url,
        auth_url=scripted[1],
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
    )
    with run_asgi(build_logic_app(settings, redis_url=redis_url)) as url:
        yield url


@pytest.fixture
async def logic(grants_logic_url: str, redis_client: Redis) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    async with httpx.AsyncClient(base_url=grants_logic_url, headers=headers) as client:
        yield client


_update_ids = itertools.count(7_000_000)


async def command(logic: httpx.AsyncClient, chat: int, name: str, **args: str) -> list[str]:
    body = {"update_id": next(_update_ids), "chat_id": chat, "command": name, "args": args}
    response = await logic.post("/v1/commands", json={**body, "language": "en"})
    assert response.status_code == 200, response.text
    return [reply["text"] for reply in response.json()["replies"]]


BAD_GRANTS = {
    "one token": {"status": "granted", "access_token": JWT},
    "no tokens": {"status": "granted"},
    "refresh not a JWT": {"status": "granted", "access_token": JWT, "refresh_token": "opaque"},
    "access not a JWT": {"status": "granted", "access_token": "a.b", "refresh_token": OTHER_JWT},
    "empty": {"status": "granted", "access_token": "", "refresh_token": ""},
    "not text": {"status": "granted", "access_token": 1, "refresh_token": [OTHER_JWT]},
}


async def indexed(redis: Redis, chat: int, status: Status) -> bool:
    keys = RedisSessionStore(redis).keys
    return bool(await redis.sismember(keys.index(keys.bucket(chat), status), str(chat)))


@pytest.mark.parametrize("grant", BAD_GRANTS.values(), ids=BAD_GRANTS.keys())
async def test_A5_a_grant_without_two_jwts_logs_nobody_in(
    scripted: tuple[ScriptedAuth, str],
    logic: httpx.AsyncClient,
    redis_client: Redis,
    grant: dict[str, Any],
) -> None:
    chat = 4100
    await command(logic, chat, "login", type="code")
    scripted[0].grant = grant
    try:
        replies = await command(logic, chat, "me")
    finally:
        scripted[0].grant = {"status": "pending"}
    assert replies == ["The service is temporarily unavailable, please try again later."]
    stored = await RedisSessionStore(redis_client).load(chat)
    assert stored is not None and isinstance(stored.session, Anonymous)
    assert not await indexed(redis_client, chat, Status.AUTHORIZED)


@pytest.mark.parametrize("grant", BAD_GRANTS.values(), ids=BAD_GRANTS.keys())
async def test_L2_a_grant_without_two_jwts_logs_nobody_in(
    scripted: tuple[ScriptedAuth, str],
    logic: httpx.AsyncClient,
    redis_client: Redis,
    grant: dict[str, Any],
) -> None:
    chat = 4200
    await command(logic, chat, "login", type="code")
    scripted[0].grant = grant
    try:
        response = await logic.post("/v1/cycles/login", json={})
    finally:
        scripted[0].grant = {"status": "pending"}
    assert response.status_code == 200
    assert [m for m in response.json()["messages"] if m["chat_id"] == chat] == []
    stored = await RedisSessionStore(redis_client).load(chat)
    assert stored is not None and isinstance(stored.session, Anonymous)
    assert not await indexed(redis_client, chat, Status.AUTHORIZED)


async def test_A5_L2_two_jwts_do_log_in(
    scripted: tuple[ScriptedAuth, str], logic: httpx.AsyncClient, redis_client: Redis
) -> None:
    """The control: the same scripted module with a proper grant logs the chat in."""
    await command(logic, 4300, "login", type="code")
    await command(logic, 4301, "login", type="code")
    scripted[0].grant = {"status": "granted", "access_token": JWT, "refresh_token": OTHER_JWT}
    try:
        assert (await command(logic, 4300, "login"))[0] == "You are logged in."
        messages = (await logic.post("/v1/cycles/login", json={})).json()["messages"]
    finally:
        scripted[0].grant = {"status": "pending"}
    assert [m["text"] for m in messages if m["chat_id"] == 4301] == ["You are logged in."]
    for chat in (4300, 4301):
        assert await indexed(redis_client, chat, Status.AUTHORIZED)
