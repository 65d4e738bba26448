"""The Authorization module's adapter through a configured API (TGGATE_AUTH_API_FILE).

The bundled default, loaded from a file as a team's would be, is today's contract exactly: the
same requests byte for byte and the same results from the reference module as no file at all.
The two worked examples of docs/integrate.md carry a whole login, refresh and logout against
modules of their shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tests.integration.conformance.modules import JWT_SECRET, wrapped_in_auth
from tests.support.module_http import ModuleHttp
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.second_auth import API_DOCS_ANCHOR, create_second_auth, example_toml
from tests.support.servers import run_asgi

from tggate.adapters.auth_api import AuthApi, load_auth_api, parse_auth_api
from tggate.adapters.auth_http import HttpAuthModule
from tggate.contract.auth import LoginCheckRequest, LoginRequest, LogoutRequest, RefreshRequest
from tggate.core.ports import (
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    Refreshed,
    RefreshRejected,
)
from tggate_sandbox.reference.auth.app import create_app as create_auth


@dataclass
class Recorder:
    """Passes every request to `app` and keeps (method, path, body) of the module's calls."""

    app: ASGIApp
    calls: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/test/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Message:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                self.calls.append((scope["method"], scope["path"], b"".join(chunks)))
            return message

        await self.app(scope, recording, send)


@pytest.fixture
def reference() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder(
        create_auth(jwt_secret=JWT_SECRET, grace_s=5, test_api_secret=TEST_API_SECRET)
    )
    with run_asgi(recorder) as url:
        yield recorder, url


@pytest.fixture
async def session() -> AsyncIterator[ModuleHttp]:
    found = ModuleHttp()
    yield found
    await found.aclose()


def resolve(url: str, chat_id: int, decision: str = "granted") -> None:
    body = {"chat_id": chat_id, "decision": decision, "identity": "alice"}
    assert httpx.post(url + "/test/logins/resolve", json=body, headers=TEST_API).status_code == 200


async def a_session(auth: HttpAuthModule, url: str, chat_id: int) -> list[object]:
    """Every call and every kind of answer: login, pending, granted, unknown, denied, a
    rotation and its grace window, logout, refused."""
    results: list[object] = []
    started = await auth.start_login(
        login_token=f"token-{chat_id}", login_type="code", chat_id=chat_id, language="en"
    )
    results.append(type(started))
    results.append(await auth.check_login(login_token=f"token-{chat_id}"))
    resolve(url, chat_id)
    granted = await auth.check_login(login_token=f"token-{chat_id}")
    assert isinstance(granted, LoginGranted)
    results.append(type(granted))
    results.append(await auth.check_login(login_token=f"token-{chat_id}"))
    await auth.start_login(login_token=f"no-{chat_id}", login_type="github", chat_id=chat_id + 1)
    resolve(url, chat_id + 1, "denied")
    results.append(await auth.check_login(login_token=f"no-{chat_id}"))
    first = await auth.refresh(refresh_token=granted.refresh_token)
    again = await auth.refresh(refresh_token=granted.refresh_token)
    assert isinstance(first, Refreshed)
    results.append((type(first), first == again))
    results.append(await auth.logout_everywhere(refresh_token=first.refresh_token))
    results.append(await auth.refresh(refresh_token=first.refresh_token))
    return results


async def test_the_default_from_a_file_is_todays_contract_exactly(
    reference: tuple[Recorder, str], session: ModuleHttp, tmp_path: Path
) -> None:
    recorder, url = reference
    copy = tmp_path / "auth-api.toml"
    copy.write_text(resources.files("tggate").joinpath("auth_api.toml").read_text("utf-8"))
    http = session.json_http(url, "auth")

    without_file = await a_session(HttpAuthModule(http), url, 100)
    sent_without = list(recorder.calls)
    recorder.calls.clear()
    with_file = await a_session(HttpAuthModule(http, load_auth_api(copy)), url, 200)

    assert (
        without_file
        == with_file
        == [
            LoginStarted,
            LoginPending(),
            LoginGranted,
            LoginGone(reason="unknown"),
            LoginDenied(),
            (Refreshed, True),
            None,
            RefreshRejected(),
        ]
    )
    # Byte for byte what the contract models send (the adapter's requests before issue 12).
    assert [(m, p) for m, p, _ in recorder.calls] == [(m, p) for m, p, _ in sent_without]
    for (method, path, body), (_, _, before) in zip(recorder.calls, sent_without, strict=True):
        assert method == "POST"
        if path == "/login" and body.startswith(b'{"login_token":"token-'):
            expected = LoginRequest(
                login_token="token-200", type="code", chat_id=200, language="en"
            ).model_dump_json()
            assert body == expected.encode()
            assert before == expected.replace("200", "100").encode()
        elif path == "/login/check":
            token = body.split(b'"')[3].decode()
            assert body == LoginCheckRequest(login_token=token).model_dump_json().encode()
        elif path in ("/refresh", "/logout"):
            token = body.split(b'"')[3].decode()
            model = RefreshRequest if path == "/refresh" else LogoutRequest
            assert body == model(refresh_token=token).model_dump_json().encode()


@pytest.mark.parametrize(
    ("anchor", "server"),
    [
        (
            "example-auth-wrapped",
            lambda: wrapped_in_auth(
                create_auth(jwt_secret=JWT_SECRET, test_api_secret=TEST_API_SECRET)
            ),
        ),
        (API_DOCS_ANCHOR, lambda: create_second_auth(jwt_secret=JWT_SECRET, grace_s=5)),
    ],
)
async def test_each_worked_example_carries_a_whole_session(
    anchor: str, server: object, session: ModuleHttp
) -> None:
    api: AuthApi = parse_auth_api(example_toml(anchor), source=f"{anchor}.toml")
    assert callable(server)
    with run_asgi(server()) as url:
        http = session.json_http(url, "auth")
        results = await a_session(HttpAuthModule(http, api), url, 300)

    assert results == [
        LoginStarted,
        LoginPending(),
        LoginGranted,
        LoginGone(reason="unknown"),
        LoginDenied(),
        (Refreshed, True),
        None,
        RefreshRejected(),
    ]
