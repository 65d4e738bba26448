"""Every sandbox server fuzzed from its own OpenAPI (`app.openapi()`; issue 9): the fake
Telegram (web chat and test API), the fake OAuth provider, the reference Authorization and Main
modules with their test and admin APIs. No answer of 500 or above; every 4xx with a message."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from schemathesis import Case
from tests.support.fuzz import fuzz, load_schema
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.oauth.app import OAuthClient
from tggate_sandbox.fakes.oauth.app import create_app as create_oauth_app
from tggate_sandbox.fakes.telegram import create_app as create_telegram_app
from tggate_sandbox.reference.auth import create_app as create_auth_app
from tggate_sandbox.reference.main import create_app as create_main_app

JWT_SECRET = "fuzz-test-jwt-secret-0123456789abcdef0123456789"
AUTH_URL = "http://127.0.0.1:8081"


def fake_telegram() -> FastAPI:
    return create_telegram_app(token="123456:fuzz-token", test_api_secret=TEST_API_SECRET)


def fake_oauth() -> FastAPI:
    client = OAuthClient.of_auth_module("fuzz-oauth-secret", AUTH_URL)
    return create_oauth_app(clients={"tggate": client}, test_api_secret=TEST_API_SECRET)


def reference_auth() -> FastAPI:
    return create_auth_app(
        jwt_secret=JWT_SECRET, public_url=AUTH_URL, test_api_secret=TEST_API_SECRET
    )


def reference_main() -> FastAPI:
    return create_main_app(
        jwt_secret=JWT_SECRET, admin_secret=ADMIN_SECRET, test_api_secret=TEST_API_SECRET
    )


# Long polls: without a `timeout` they wait 10 s, with one up to 50.
LONG_POLLS = {
    "/_test/wait",
    "/webchat/api/chats/{chat_id}/messages",
    "/webchat/api/chats/{chat_id}/callbacks/{callback_query_id}",
}


def no_waiting(case: Case) -> None:
    """Long polls answer at once and the module stays fast: a `timeout` or a delay of many
    seconds would test patience, not answers (both are tested on their own)."""
    if case.operation.path in LONG_POLLS and case.method == "GET":
        case.query = {**(case.query or {}), "timeout": 0}
    if case.operation.path == "/test/delay" and isinstance(case.body, dict):
        case.body["seconds"] = 0


@pytest.mark.parametrize(
    "build", [fake_telegram, fake_oauth, reference_auth, reference_main], ids=lambda b: b.__name__
)
def test_a_sandbox_server_fuzzed_from_its_own_openapi(build: Any) -> None:
    app = build()
    schema = load_schema(app.openapi())
    with run_asgi(app) as url:
        problems = fuzz(schema, base_url=url, headers={**TEST_API, **ADMIN}, adjust=no_waiting)
        problems += fuzz(schema, base_url=url, adjust=no_waiting)  # without the secrets
    assert not problems, "\n".join(problems)
