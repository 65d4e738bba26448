"""Issue 9 across every sandbox server, over real HTTP (uvicorn on loopback).

The four servers (reference Authorization and Main modules, fake Telegram, fake OAuth provider)
are built the way `tggate demo` runs them. Routes are read from the apps themselves, so a test
endpoint, a page or a body added later is covered without touching this file:

- every test endpoint wants the test API secret (401 without, 403 with a wrong one), and none
  exists without it;
- every answer, HTML pages first, refuses to be framed;
- no malformed body or query is a 5xx, and no 4xx echoes what was sent;
- no server publishes its OpenAPI schema or docs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.fakes.oauth import OAuthClient, auth_configs
from tggate_sandbox.fakes.oauth import create_app as create_oauth_app
from tggate_sandbox.fakes.telegram import create_app as create_telegram_app
from tggate_sandbox.fakes.telegram.webchat import KEY_HEADER
from tggate_sandbox.reference.auth import create_app as create_auth_app
from tggate_sandbox.reference.main import create_app as create_main_app

JWT_SECRET = "hardening-test-jwt-secret-0123456789abcdef"
BOT_TOKEN = "123456:hardening-test-token"
PUBLIC_URL = "http://auth.example"
CLIENT_ID = "hardening-client"
CLIENT_SECRET = "hardening-client-secret"
# What a probe submits where a token or a secret goes; no answer may carry it back.
MARKER = "tok-3f9a-must-never-come-back"
TEST_PREFIXES = ("/test/", "/_test/")


def build(name: str, *, secrets: bool) -> FastAPI:
    """One sandbox server; with `secrets`, its test API (and the Main module's admin API) on."""
    test_api_secret = TEST_API_SECRET if secrets else None
    if name == "reference-auth":
        configs = auth_configs("http://oauth.example", client_id=CLIENT_ID, client_secret="x")
        return create_auth_app(
            jwt_secret=JWT_SECRET,
            public_url=PUBLIC_URL,
            oauth=configs,
            test_api_secret=test_api_secret,
        )
    if name == "reference-main":
        return create_main_app(
            jwt_secret=JWT_SECRET,
            admin_secret=ADMIN_SECRET if secrets else None,
            test_api_secret=test_api_secret,
        )
    if name == "fake-telegram":
        return create_telegram_app(token=BOT_TOKEN, test_api_secret=test_api_secret)
    assert name == "fake-oauth"
    client = OAuthClient.of_auth_module(CLIENT_SECRET, PUBLIC_URL)
    return create_oauth_app(clients={CLIENT_ID: client}, test_api_secret=test_api_secret)


SERVERS = ["reference-auth", "reference-main", "fake-telegram", "fake-oauth"]


@dataclass
class Server:
    name: str
    app: FastAPI
    url: str

    def routes(self) -> list[tuple[str, str]]:
        """(method, path template) of every route the app serves."""
        found = []
        # Included routers too (FastAPI keeps them apart from the app's own routes).
        for route in iter_route_contexts(self.app.routes):
            for method in sorted(route.methods or ()):
                if method != "HEAD" and route.path is not None:
                    found.append((method, route.path))
        return found

    def test_routes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.routes() if p.startswith(TEST_PREFIXES)]


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    app = build(request.param, secrets=True)
    with run_asgi(app) as url:
        yield Server(request.param, app, url)


def concrete(path: str) -> str:
    """A path template with its parameters filled in."""
    values = {"bot_token": BOT_TOKEN, "method": "getMe", "provider": "github", "name": "x.js"}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


# ---- the test API: off by default, behind the secret when on ----


def test_every_server_has_test_endpoints_to_guard(server: Server) -> None:
    assert server.test_routes(), f"{server.name} has no test endpoint: is the prefix right?"


def test_every_test_endpoint_wants_the_secret(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for method, path in server.test_routes():
            url = concrete(path)
            missing = http.request(method, url, json={})
            assert missing.status_code == 401, (method, path, missing.text)
            assert "X-Test-Api-Secret" in missing.json()["detail"]
            wrong = http.request(method, url, json={}, headers={"X-Test-Api-Secret": "x" * 40})
            assert wrong.status_code == 403, (method, path, wrong.text)
            # The right secret passes the guard (what follows may still refuse the body).
            right = http.request(method, url, json={}, headers=TEST_API, params={"timeout": 0})
            assert right.status_code not in (401, 403), (method, path, right.text)


@pytest.mark.parametrize("name", SERVERS)
def test_without_the_secret_there_is_no_test_api(name: str) -> None:
    guarded = Server(name, build(name, secrets=True), "")
    with run_asgi(build(name, secrets=False)) as url, httpx.Client(base_url=url) as http:
        for method, path in guarded.test_routes():
            answer = http.request(method, concrete(path), json={}, headers=TEST_API)
            assert answer.status_code in (404, 405), (method, path, answer.status_code)


def test_the_probes_attack_logs_nobody_in_without_the_secret() -> None:
    """The finding: POST /test/logins/resolve logged any chat in as anyone (a teacher)."""
    with run_asgi(build("reference-auth", secrets=True)) as url, httpx.Client(base_url=url) as bot:
        body = {"login_token": "victim-token", "type": "code", "chat_id": 42}
        code = bot.post("/login", json=body).json()["code"]
        assert code not in bot.get("/test/pending").text
        forged = bot.post(
            "/test/logins/resolve", json={"chat_id": 42, "decision": "granted", "identity": "bob"}
        )
        minted = bot.post("/test/tokens", json={"identity": "bob"})
        assert (forged.status_code, minted.status_code) == (401, 401)
        assert "token" not in minted.text.lower().replace("x-test-api-secret", "")
        check = bot.post("/login/check", json={"login_token": "victim-token"})
        assert check.json() == {"status": "pending"}


# ---- no framing, on any answer ----


def test_every_html_page_and_every_answer_refuses_to_be_framed(server: Server) -> None:
    html_routes = []
    with httpx.Client(base_url=server.url, headers={**TEST_API, **ADMIN}, timeout=10) as http:
        for method, path in server.routes():
            answer = http.request(method, concrete(path), params={"timeout": 0})
            if answer.headers.get("content-type", "").startswith("text/html"):
                html_routes.append((method, path))
            assert answer.headers.get("x-frame-options") == "DENY", (method, path)
            policy = answer.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in policy, (method, path, policy)
            assert answer.headers.get("x-content-type-options") == "nosniff", (method, path)
        # A page that fails is still a page: refusals are HTML too.
        unknown = http.get("/no-such-page")
        assert unknown.headers.get("x-frame-options") == "DENY"
    # The pages a person sees, each checked above (a new HTML route is picked up by itself).
    expected = {
        "reference-auth": {("GET", "/code"), ("GET", "/confirm"), ("POST", "/confirm")},
        "reference-main": {("GET", "/notify"), ("POST", "/notify/signin")},
        "fake-telegram": {("GET", "/"), ("GET", "/webchat")},
        "fake-oauth": {("GET", "/github/login/oauth/authorize"), ("GET", "/yandex/authorize")},
    }[server.name]
    assert expected <= set(html_routes), html_routes


def test_the_web_chats_own_policy_keeps_its_frame_ancestors() -> None:
    with run_asgi(build("fake-telegram", secrets=False)) as url:
        policy = httpx.get(url + "/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and policy.count("frame-ancestors") == 1


# ---- malformed input: a 4xx with a message that echoes nothing ----

NASTY_BODIES: dict[str, bytes] = {
    "1e400": b'{"chat_id": 1e400, "seconds": 1e400, "text": 1e400, "login_token": 1e400}',
    "nan": b'{"chat_id": NaN, "seconds": NaN, "per_chat_per_s": Infinity, "text": -Infinity}',
    "huge-int": b'{"chat_id": ' + b"9" * 5000 + b', "seconds": 1}',
    "big-int": b'{"chat_id": ' + b"9" * 300 + b', "message_id": ' + b"9" * 300 + b"}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 900 + b"1" + b"}" * 900,
    "wrong-types": (
        b'{"chat_id": {"a": []}, "login_token": ["%s"], "refresh_token": {"t": "%s"},'
        b' "text": ["%s"], "ids": "%s", "to": 5, "name": null, "key": ["%s"], "%s": 1}'
    )
    % ((MARKER.encode(),) * 6),
    "array": b'["%s", 1, null]' % MARKER.encode(),
    "string": b'"%s"' % MARKER.encode(),
    "invalid-utf8": b'{"text": "\xff\xfe", "login_token": "\xc3", "name": "\xed\xa0\x80"}',
    "truncated": b'{"login_token": "' + MARKER.encode(),
}
NASTY_FORMS: dict[str, tuple[str, bytes]] = {
    "form-utf8": ("application/x-www-form-urlencoded", b"csrf=\xff&code=%FF%FE&text=\xc3"),
    "form-garbage": ("multipart/form-data; boundary=x", b"--x\r\nnot a part\r\n--x--"),
    "form-no-boundary": ("multipart/form-data", b"password=" + MARKER.encode()),
    "text-plain": ("text/plain", b"login_token=" + MARKER.encode() + b"\xff"),
}
NASTY_QUERIES = [
    {"timeout": "1e400", "chat_id": "NaN", "after": "9" * 5000, "count": "-Infinity"},
    {"timeout": "nan", "chat_id": "1", "after": "1e400", "revision": MARKER * 10},
    {"ref": MARKER, "state": "\xff\ufffe", "code": "\x00" * 10},
]


def assert_safe(answer: httpx.Response, what: object) -> None:
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:300])
    assert MARKER not in answer.text, (what, answer.text[:300])
    assert "Traceback" not in answer.text, what
    if answer.status_code == 422:
        for error in answer.json()["detail"]:
            assert set(error) == {"loc", "msg", "type"}, (what, error)


@pytest.fixture(scope="module")
def webchat_person(server: Server) -> dict[str, str]:
    """A web chat person's key, so that their chat's endpoints reach body validation."""
    if server.name != "fake-telegram":
        return {}
    person = httpx.post(
        server.url + "/webchat/api/people", json={"name": "Probe", "language": "en"}
    ).json()
    return {"chat_id": str(person["chat_id"]), KEY_HEADER: person["key"]}


def _url(server: Server, path: str, person: dict[str, str]) -> str:
    url = concrete(path)
    if "chat_id" in person and path.startswith("/webchat/api/chats/"):
        url = url.replace("/chats/1/", f"/chats/{person['chat_id']}/")
    return url


def test_no_malformed_body_is_a_5xx_or_echoed(
    server: Server, webchat_person: dict[str, str]
) -> None:
    headers: dict[str, Any] = {**TEST_API, **ADMIN}
    if KEY_HEADER in webchat_person:
        headers[KEY_HEADER] = webchat_person[KEY_HEADER]
    writes = [(m, p) for m, p in server.routes() if m in ("POST", "PUT", "PATCH", "DELETE")]
    writes.append(("POST", "/bot{bot_token}/sendMessage"))
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        for method, path in writes:
            url = _url(server, path, webchat_person)
            for name, body in NASTY_BODIES.items():
                answer = http.request(
                    method, url, content=body, headers={"content-type": "application/json"}
                )
                assert_safe(answer, (method, path, name))
            for name, (content_type, body) in NASTY_FORMS.items():
                answer = http.request(
                    method, url, content=body, headers={"content-type": content_type}
                )
                assert_safe(answer, (method, path, name))


def test_no_malformed_query_is_a_5xx_or_echoed(
    server: Server, webchat_person: dict[str, str]
) -> None:
    headers: dict[str, Any] = {**TEST_API, **ADMIN}
    if KEY_HEADER in webchat_person:
        headers[KEY_HEADER] = webchat_person[KEY_HEADER]
    reads = [(m, p) for m, p in server.routes() if m == "GET"]
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        for method, path in reads:
            for params in NASTY_QUERIES:
                answer = http.request(method, _url(server, path, webchat_person), params=params)
                assert_safe(answer, (method, path, params))


def test_a_validation_error_says_where_and_what_but_not_the_value() -> None:
    with run_asgi(build("reference-auth", secrets=True)) as url:
        answer = httpx.post(url + "/refresh", json={"refresh_token": {"t": MARKER}})
    assert answer.status_code == 422
    assert answer.json() == {
        "detail": [
            {
                "loc": ["body", "refresh_token"],
                "msg": "Input should be a valid string",
                "type": "string_type",
            }
        ]
    }


def test_an_unexpected_field_is_refused_without_repeating_its_name() -> None:
    with run_asgi(build("fake-telegram", secrets=False)) as url:
        body = {"name": "Anna", "language": "en", MARKER: "x"}
        answer = httpx.post(url + "/webchat/api/people", json=body)
    assert answer.status_code == 422
    assert MARKER not in answer.text
    assert answer.json()["detail"] == [
        {"loc": ["body", "…"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]


# ---- no published schema ----


def test_no_server_publishes_its_schema_or_docs(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            assert http.get(path).status_code == 404, path
    assert server.app.openapi()["paths"]  # still there for tests and docs/, just not served
