"""Bot Logic's API against what a security probe found (issue 9, findings 5, 6 and 10), over
real HTTP with a real Redis and the reference modules."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.logic.conftest import INTERNAL_TOKEN, Bot, ModuleUrls
from tests.support.servers import run_asgi

from tggate.adapters.embedded_redis import EmbeddedRedis
from tggate.bootstrap import build_logic_app, open_logic
from tggate.core.commands import load_command_table
from tggate.logic.app import create_app
from tggate.logic.metrics import LogicMetrics
from tggate.settings import load_settings

# ---- finding 6: the token before the body, no published schema, usage for every command ----


async def test_the_internal_token_is_checked_before_the_body_is_read(logic_url: str) -> None:
    async with httpx.AsyncClient(base_url=logic_url) as stranger:
        broken = await stranger.post(
            "/v1/commands", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        huge = await stranger.post("/v1/commands", content=b"x" * 200_000)
        wrong = await stranger.post(
            "/v1/cycles/login", content=b"[", headers={"X-Internal-Token": "wrong"}
        )
    for response in (broken, huge, wrong):
        # Not 422 or 413: a caller without the token learns nothing about what we parse.
        assert response.status_code == 401
        assert response.json() == {"detail": "missing or wrong X-Internal-Token"}


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_no_schema_or_docs_are_served(logic_url: str, path: str) -> None:
    """docs/openapi/logic.yaml is the document; the app does not hand it to anyone."""
    async with httpx.AsyncClient(base_url=logic_url) as client:
        assert (await client.get(path)).status_code == 404


@pytest.mark.parametrize(
    ("command", "args", "usage"),
    [
        ("login", {"type": "bogus"}, "Usage: /login github | yandex | code"),
        ("login", {"kind": "code"}, "Usage: /login github | yandex | code"),
        ("logout", {"all": "maybe"}, "Usage: /logout [all]"),
    ],
)
async def test_a_builtin_command_with_bad_arguments_gets_its_usage(
    bot: Bot, chat: int, command: str, args: dict[str, str], usage: str
) -> None:
    """Before issue 9 `login` with a bad type was a KeyError, answered 503 and retried."""
    response = await bot.post_command(chat, command, args)
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["replies"]] == [usage]


async def test_logout_all_in_capitals_ends_every_session(bot: Bot, chat: int) -> None:
    """Finding 6: `/logout ALL` was silently a local logout."""
    await bot.login(chat, identity="dora")
    assert await bot.texts(chat, "logout", {"all": "TRUE"}) == "Session ended on all devices."
    assert (await bot.auth_stats())["logout"] == 1


# ---- finding 8: who asks, passed on to the Authorization module ----


async def test_the_telegram_name_reaches_the_authorization_modules_login(
    bot: Bot, chat: int
) -> None:
    person = {"first_name": "<b>Ann</b>", "last_name": None, "username": "ann_o"}
    body = {
        "update_id": 8_300_000 + chat,
        "chat_id": chat,
        "command": "login",
        "args": {"type": "code"},
        "language": "en",
        "telegram_user": person,
    }
    assert (await bot.logic.post("/v1/commands", json=body)).status_code == 200
    pending = (await bot.auth.get("/test/pending")).json()
    assert [p["telegram_user"] for p in pending if p["chat_id"] == chat] == [person]


# ---- finding 5: dot segments in path arguments ----

# A deployment's own table: its argument has the default pattern (any word). With ".." the
# path would be `/api/courses/../grades`, which an HTTP client sends as `/api/grades`.
OPEN_TABLE = """
[[actions]]
command = "progress"
description = "My grades in a course"
path = "/api/courses/{course_id}/grades"
[[actions.args]]
name = "course_id"
"""


@pytest.fixture(scope="module")
def open_table_url(
    modules: ModuleUrls, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bot Logic with a custom table whose argument has the default pattern (any word)."""
    table = tmp_path_factory.mktemp("table") / "commands.toml"
    table.write_text(OPEN_TABLE, "utf-8")
    settings = load_settings(
        redis_url=redis_url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        commands_file=table,
    )
    with run_asgi(build_logic_app(settings, redis_url=redis_url)) as url:
        yield url


@pytest.fixture
async def open_bot(bot: Bot, open_table_url: str) -> AsyncIterator[Bot]:
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    async with httpx.AsyncClient(base_url=open_table_url, headers=headers, timeout=30) as logic:
        yield Bot(logic=logic, auth=bot.auth, main=bot.main, redis=bot.redis)


@pytest.mark.parametrize("value", ["..", "."])
async def test_a_dot_segment_never_reaches_another_path_of_the_main_module(
    open_bot: Bot, chat: int, value: str
) -> None:
    await open_bot.login(chat, identity="alice")
    await open_bot.main.post("/test/stats/reset")
    replies = await open_bot.command(chat, "progress", {"course_id": value})
    assert [r["text"] for r in replies] == ["Usage: /progress <course_id>"]
    # Neither `/api/grades` ("..") nor `/api/courses/{course_id}` (".") was called.
    assert await open_bot.main_stats() == {}
    # Any other word goes where the table says (the reference module has no such endpoint).
    assert await open_bot.texts(chat, "progress", {"course_id": "py101"}) == "Not found."


# ---- finding 10: an unreachable Redis at start is said out loud, and tried again ----


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_redis_at_start_is_a_loud_error_until_it_answers(
    modules: ModuleUrls, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path, port=_free_port())  # not started yet
    settings = load_settings(
        redis_url=server.url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        redis_timeout_s=0.5,
    )
    table, metrics = load_command_table(), LogicMetrics()
    app = create_app(
        open_logic=lambda: open_logic(settings, server.url, table, metrics),
        internal_token=INTERNAL_TOKEN,
        metrics=metrics,
        store_retry_s=0.05,
    )
    caplog.set_level(logging.INFO, logger="tggate.logic.api")
    with run_asgi(app) as url:
        # Said at start, before the server listens (run_asgi returns once it does).
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors[0].startswith("Redis is unreachable (TGGATE_REDIS_URL)"), errors
        assert server.password not in caplog.text
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).json() == {"status": "redis unreachable"}
            with server:
                # The watcher tries every 0.05 s: the log line it writes once Redis answers.
                for _ in range(600):
                    if "Redis answers now" in caplog.text:
                        break
                    await asyncio.sleep(0.05)
                assert "Redis answers now" in caplog.text
                assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_a_reachable_redis_at_start_is_no_error(
    logic_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(base_url=logic_url) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
