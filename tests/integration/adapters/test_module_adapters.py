"""The HTTP adapters of the two modules against a scripted module over real HTTP (uvicorn).

What they send must be what docs/openapi/{auth,main}.yaml documents; what they accept is lenient
where a module's answer is merely untidy (unknown fields, an empty url, no expires_in) and strict
where tggate would be misled (a grant without two JWTs, docs/scenarios.md#a5).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from tests.support.servers import run_asgi

from tggate.adapters.auth_http import HttpAuthModule
from tggate.adapters.http_base import JsonHttp
from tggate.adapters.http_pool import HttpPool
from tggate.adapters.main_http import HttpMainModule
from tggate.contract.main import MAX_IDS_PER_DELETE
from tggate.core.ports import (
    ActionDone,
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    ModuleUnavailable,
    Notification,
    Refreshed,
    RefreshRejected,
    TelegramUser,
)
from tggate.core.session import LoginPrompt

ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
REFRESH = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInR5cCI6InJlZnJlc2gifQ.c2ln"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class ScriptedModule:
    """An ASGI module that answers what the test scripted for a route, and records requests."""

    answers: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: Any = None) -> None:
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        self.answers[(method, path)] = (status, raw)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(
            Received(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode(),
                headers=headers,
                body=json.loads(raw) if raw else None,
            )
        )
        status, body = self.answers.get((scope["method"], scope["path"]), (404, b""))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ScriptedModule, str]]:
    module = ScriptedModule()
    with run_asgi(module) as url:
        yield module, url


@pytest.fixture
def module(served: tuple[ScriptedModule, str]) -> ScriptedModule:
    served[0].answers.clear()
    served[0].received.clear()
    return served[0]


@pytest.fixture
async def http(served: tuple[ScriptedModule, str]) -> AsyncIterator[JsonHttp]:
    pool = HttpPool(served[1], max_connections=8, timeout_s=5)
    try:
        yield JsonHttp(pool=pool, name="scripted")
    finally:
        await pool.aclose()


# ---- the Authorization module ----


async def test_a_login_sends_the_documented_body_and_reads_the_prompt(
    module: ScriptedModule, http: JsonHttp
) -> None:
    module.answer(
        "POST",
        "/login",
        200,
        {
            "text": "Enter 123-456",
            "url": "https://x/y",
            "code": "123-456",
            "expires_in": 300,
            "new": 1,
        },
    )

    started = await HttpAuthModule(http).start_login(
        login_token="t" * 43, login_type="code", chat_id=-100123, language="en"
    )

    assert started == LoginStarted(
        prompt=LoginPrompt(text="Enter 123-456", url="https://x/y", code="123-456"), expires_in=300
    )
    (request,) = module.received
    assert (request.method, request.path, request.query) == ("POST", "/login", "")
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "login_token": "t" * 43,
        "type": "code",
        "chat_id": -100123,
        "language": "en",
        "telegram_user": None,
    }


async def test_a_login_names_who_asks_as_telegram_does(
    module: ScriptedModule, http: JsonHttp
) -> None:
    module.answer("POST", "/login", 200, {"text": "Enter 123-456"})
    user = TelegramUser(first_name="<b>Ann</b>", last_name="O'Neil", username="ann_o")

    await HttpAuthModule(http).start_login(
        login_token="t" * 43, login_type="code", chat_id=42, telegram_user=user
    )

    (request,) = module.received
    assert request.body["telegram_user"] == {
        "first_name": "<b>Ann</b>",
        "last_name": "O'Neil",
        "username": "ann_o",
    }


@pytest.mark.parametrize(
    ("answer", "prompt", "expires_in"),
    [
        ({"text": "Hi"}, LoginPrompt("Hi"), 600),
        ({"text": "Hi", "url": "", "code": None, "expires_in": 0}, LoginPrompt("Hi"), 600),
        ({"text": "Hi", "url": 5, "code": [], "expires_in": "soon"}, LoginPrompt("Hi"), 600),
    ],
)
async def test_an_untidy_login_answer_is_read_leniently(
    module: ScriptedModule,
    http: JsonHttp,
    answer: dict[str, Any],
    prompt: LoginPrompt,
    expires_in: int,
) -> None:
    module.answer("POST", "/login", 200, answer)

    started = await HttpAuthModule(http).start_login(
        login_token="token", login_type="github", chat_id=1
    )

    assert started == LoginStarted(prompt=prompt, expires_in=expires_in)
    assert module.received[0].body["language"] == "ru"


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {"url": "https://x"}), (200, {"text": ""}), (200, b"<html>"), (409, {"detail": "x"})],
)
async def test_a_login_answer_without_a_text_is_no_answer(
    module: ScriptedModule, http: JsonHttp, status: int, body: Any
) -> None:
    module.answer("POST", "/login", status, body)

    started = await HttpAuthModule(http).start_login(
        login_token="token", login_type="code", chat_id=1
    )

    assert isinstance(started, ModuleUnavailable)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "pending"}, LoginPending()),
        ({"status": "denied", "reason": "pressed No"}, LoginDenied()),
        ({"status": "unknown"}, LoginGone(reason="unknown")),
        ({"status": "expired"}, LoginGone(reason="expired")),
        (
            {"status": "granted", "access_token": ACCESS, "refresh_token": REFRESH, "x": 1},
            LoginGranted(access_token=ACCESS, refresh_token=REFRESH),
        ),
    ],
)
async def test_each_login_status_is_a_domain_result(
    module: ScriptedModule, http: JsonHttp, body: dict[str, Any], expected: object
) -> None:
    module.answer("POST", "/login/check", 200, body)

    assert await HttpAuthModule(http).check_login(login_token="token") == expected
    assert module.received[0].body == {"login_token": "token"}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "granted", "access_token": ACCESS},  # one token
        {"status": "granted", "access_token": ACCESS, "refresh_token": "opaque-refresh-token"},
        {"status": "granted", "access_token": "a.b", "refresh_token": REFRESH},
        {"status": "granted", "access_token": ACCESS, "refresh_token": "a.b.c.d"},
        {"status": "granted", "access_token": "ж.b.c", "refresh_token": REFRESH},
        {"status": "maybe"},
        {"state": "pending"},
        ["pending"],
    ],
)
async def test_a_grant_without_two_jwts_or_an_unknown_status_is_no_answer(
    module: ScriptedModule, http: JsonHttp, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    module.answer("POST", "/login/check", 200, body)

    with caplog.at_level(logging.WARNING, logger="tggate.adapters.auth"):
        checked = await HttpAuthModule(http).check_login(login_token="login-secret-7f3a")

    assert isinstance(checked, ModuleUnavailable)
    assert "does not fit docs/openapi/auth.yaml" in caplog.text
    for secret in (ACCESS, REFRESH, "opaque-refresh-token", "login-secret-7f3a"):
        assert secret not in caplog.text  # the operator learns where, never the values


async def test_refresh_reads_a_pair_and_every_refusal(
    module: ScriptedModule, http: JsonHttp
) -> None:
    auth = HttpAuthModule(http)
    module.answer("POST", "/refresh", 200, {"access_token": ACCESS, "refresh_token": REFRESH})
    assert await auth.refresh(refresh_token="old") == Refreshed(ACCESS, REFRESH)
    assert module.received[0].body == {"refresh_token": "old"}

    module.answer("POST", "/refresh", 200, {"access_token": ACCESS, "refresh_token": "opaque"})
    assert isinstance(await auth.refresh(refresh_token="old"), ModuleUnavailable)
    for refused in (400, 401, 403):
        module.answer("POST", "/refresh", refused, {"detail": "no"})
        assert await auth.refresh(refresh_token="old") == RefreshRejected()  # Z8
    module.answer("POST", "/refresh", 502)
    assert isinstance(await auth.refresh(refresh_token="old"), ModuleUnavailable)


@pytest.mark.parametrize(("status", "done"), [(200, True), (204, True), (401, True), (503, False)])
async def test_logout_is_done_unless_the_module_failed(
    module: ScriptedModule, http: JsonHttp, status: int, done: bool
) -> None:
    module.answer("POST", "/logout", status)

    ended = await HttpAuthModule(http).logout_everywhere(refresh_token="r")

    assert (ended is None) is done
    assert module.received[0].body == {"refresh_token": "r"}


# ---- the Main module ----


async def test_notifications_that_do_not_fit_are_skipped_one_by_one(
    module: ScriptedModule, http: JsonHttp, caplog: pytest.LogCaptureFixture
) -> None:
    listed = [
        {"id": "a1", "text": "first", "created_at": "2024-01-01T00:00:00Z", "extra": True},
        {"id": 7, "text": "numbered"},
        {"id": "a3"},  # no text
        {"text": "no id"},
        {"id": None, "text": "null id"},
        {"id": "x" * 201, "text": "an id too long to delete"},
        "not an object",
        {"id": "a4", "text": "last", "created_at": 12},
    ]
    module.answer("GET", "/notification", 200, listed)

    with caplog.at_level(logging.WARNING, logger="tggate.adapters.main"):
        found = await HttpMainModule(http).notifications(access_token=ACCESS)

    assert found == [
        Notification(id="a1", text="first", created_at="2024-01-01T00:00:00Z"),
        Notification(id="7", text="numbered"),
        Notification(id="a4", text="last"),
    ]
    assert caplog.text.count("skipped") == 5
    (request,) = module.received
    assert request.headers["authorization"] == f"Bearer {ACCESS}"
    assert request.query == ""


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"detail": "expired"}, ActionDone(401, {"detail": "expired"})),
        (200, {"items": []}, ModuleUnavailable("main", "/notification did not return a list")),
        (200, b"not json", ModuleUnavailable("main", "/notification did not return a list")),
    ],
)
async def test_a_notification_answer_that_is_not_a_list(
    module: ScriptedModule, http: JsonHttp, status: int, body: Any, expected: object
) -> None:
    module.answer("GET", "/notification", status, body)

    assert await HttpMainModule(http).notifications(access_token=ACCESS) == expected


async def test_delete_names_exactly_the_ids_in_documented_batches(
    module: ScriptedModule, http: JsonHttp
) -> None:
    module.answer("DELETE", "/notification", 204)
    ids = [f"n{i}" for i in range(MAX_IDS_PER_DELETE + 1)]

    assert await HttpMainModule(http).delete_notifications(access_token=ACCESS, ids=ids) is None

    sent = [r.body["ids"] for r in module.received]
    assert [len(batch) for batch in sent] == [MAX_IDS_PER_DELETE, 1]
    assert [i for batch in sent for i in batch] == ids
    assert all(r.headers["authorization"] == f"Bearer {ACCESS}" for r in module.received)


async def test_a_refused_delete_is_reported(module: ScriptedModule, http: JsonHttp) -> None:
    module.answer("DELETE", "/notification", 401, {"detail": "expired"})

    deleted = await HttpMainModule(http).delete_notifications(access_token=ACCESS, ids=["n1"])

    assert deleted == ActionDone(401, {"detail": "expired"})


@pytest.mark.parametrize(
    ("status", "body", "data"),
    [(200, {"name": "Alice"}, {"name": "Alice"}), (403, b"", None), (500, b"<html>oops", None)],
)
async def test_an_action_is_its_status_and_json(
    module: ScriptedModule, http: JsonHttp, status: int, body: Any, data: Any
) -> None:
    module.answer("POST", "/api/things/42", status, body)

    done = await HttpMainModule(http).call(
        method="POST", path="/api/things/42", access_token=ACCESS, query={"q": "1"}
    )

    assert done == ActionDone(status, data)
    (request,) = module.received
    assert (request.method, request.query) == ("POST", "q=1")
    assert request.headers["authorization"] == f"Bearer {ACCESS}"
