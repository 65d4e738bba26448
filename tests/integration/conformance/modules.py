"""The reference modules for the conformance tests, and variants broken on purpose.

Each variant is the reference module behind a small ASGI app that rewrites one kind of exchange,
so it breaks exactly one rule of docs/contract.md and keeps every other: the check must fail on
that rule, with a line that names it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.support.sandbox import ADMIN_SECRET, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.reference.auth.app import create_app as create_auth
from tggate_sandbox.reference.main.app import create_app as create_main

__all__ = ["VARIANTS", "Modules", "reference_modules"]

JWT_SECRET = "conformance-tests-jwt-secret-0123456789abcdef"

Forward = Callable[[str, str, Mapping[str, str], bytes], Awaitable[httpx.Response]]
# A rule answers one (method, path) itself, using `forward` to reach the module behind it.
Rule = Callable[[Request, bytes, Forward], Awaitable[Response]]


class Rewriting:
    """An ASGI app in front of `inner`: requests that a rule names go through the rule (every
    request through `every`, when given)."""

    def __init__(
        self, inner: ASGIApp, rules: Mapping[tuple[str, str], Rule], every: Rule | None = None
    ) -> None:
        self._inner = inner
        self._rules = rules
        self._every = every
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=inner), base_url="http://inner"
        )

    async def _forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> httpx.Response:
        return await self._client.request(method, path, headers=dict(headers), content=body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = (
            self._rules.get((scope["method"], scope["path"]), self._every)
            if scope["type"] == "http"
            else None
        )
        if rule is None:
            await self._inner(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await rule(request, await request.body(), self._forward)
        await response(scope, receive, send)


def relay(answer: httpx.Response, content: Any = None) -> Response:
    """The module's answer as it came, or with `content` (JSON) instead of its body."""
    body = answer.content if content is None else json.dumps(content).encode()
    return Response(body, answer.status_code, media_type="application/json")


def passed_on(request: Request) -> dict[str, str]:
    """The request's headers, but those of its own connection."""
    own = ("host", "content-length", "connection")
    return {k: v for k, v in request.headers.items() if k not in own}


# ---- another shape (the first worked example of docs/integrate.md) ----


def wrapped_in_auth(auth: ASGIApp) -> ASGIApp:
    """The reference module with its calls under /auth and its answers in {"auth": …}."""

    def rule(path: str) -> Rule:
        async def answer(request: Request, body: bytes, forward: Forward) -> Response:
            got = await forward("POST", path, passed_on(request), body)
            return relay(got, {"auth": got.json()})

        return answer

    calls = ("/login", "/login/check", "/refresh", "/logout")
    return Rewriting(auth, {("POST", "/auth" + path): rule(path) for path in calls})


# ---- the broken variants ----


def refresh_without_rotation(auth: ASGIApp) -> ASGIApp:
    """/refresh hands out new pairs, and an old refresh token keeps working forever."""
    latest: dict[str, str] = {}

    async def refresh(request: Request, body: bytes, forward: Forward) -> Response:
        token = json.loads(body)["refresh_token"]
        sent = json.dumps({"refresh_token": latest.get(token, token)}).encode()
        answer = await forward("POST", "/refresh", passed_on(request), sent)
        if answer.status_code == 200:
            latest[token] = answer.json()["refresh_token"]
        return relay(answer)

    return Rewriting(auth, {("POST", "/refresh"): refresh})


def grant_with_one_token(auth: ASGIApp) -> ASGIApp:
    """A granted login carries the access token only."""

    async def check(request: Request, body: bytes, forward: Forward) -> Response:
        answer = await forward("POST", "/login/check", passed_on(request), body)
        state = answer.json()
        if state.get("status") == "granted":
            state.pop("refresh_token", None)
        return relay(answer, state)

    return Rewriting(auth, {("POST", "/login/check"): check})


def login_never_expires(auth: ASGIApp) -> ASGIApp:
    """An expired login is still `pending`."""

    async def check(request: Request, body: bytes, forward: Forward) -> Response:
        answer = await forward("POST", "/login/check", passed_on(request), body)
        state = answer.json()
        if state.get("status") == "expired":
            state = {"status": "pending"}
        return relay(answer, state)

    return Rewriting(auth, {("POST", "/login/check"): check})


def grant_handed_out_twice(auth: ASGIApp) -> ASGIApp:
    """A granted login is granted again on every later check."""
    grants: dict[str, Any] = {}

    async def check(request: Request, body: bytes, forward: Forward) -> Response:
        token = json.loads(body)["login_token"]
        if token in grants:
            return Response(json.dumps(grants[token]).encode(), media_type="application/json")
        answer = await forward("POST", "/login/check", passed_on(request), body)
        if answer.json().get("status") == "granted":
            grants[token] = answer.json()
        return relay(answer)

    return Rewriting(auth, {("POST", "/login/check"): check})


def logout_that_ends_nothing(auth: ASGIApp) -> ASGIApp:
    """/logout answers 200 and revokes nothing."""

    async def logout(request: Request, body: bytes, forward: Forward) -> Response:
        return Response(b'{"revoked": 0}', media_type="application/json")

    return Rewriting(auth, {("POST", "/logout"): logout})


def prompt_with_the_login_token(auth: ASGIApp) -> ASGIApp:
    """The prompt shows tggate's login token (a debugging aid left in)."""

    async def login(request: Request, body: bytes, forward: Forward) -> Response:
        answer = await forward("POST", "/login", passed_on(request), body)
        prompt = answer.json()
        prompt["text"] += f" (ref {json.loads(body)['login_token']})"
        return relay(answer, prompt)

    return Rewriting(auth, {("POST", "/login"): login})


def server_error_for_expired_tokens(main: ASGIApp) -> ASGIApp:
    """An expired access token is a 500, not a 401 (a forged one is still 401)."""

    async def answer(request: Request, body: bytes, forward: Forward) -> Response:
        got = await forward(request.method, request.url.path, passed_on(request), body)
        if got.status_code == 401 and "expired" in got.text:
            return Response(b'{"detail":"Internal Server Error"}', 500)
        return relay(got)

    return Rewriting(main, {}, every=answer)


def delete_deletes_everything(main: ASGIApp) -> ASGIApp:
    """DELETE /notification deletes every notification of the person, not just those named."""

    async def delete(request: Request, body: bytes, forward: Forward) -> Response:
        headers = passed_on(request)
        listed = await forward("GET", "/notification", headers, b"")
        if listed.status_code != 200:
            return relay(listed)
        every = json.dumps({"ids": [item["id"] for item in listed.json()]}).encode()
        return relay(await forward("DELETE", "/notification", headers, every))

    return Rewriting(main, {("DELETE", "/notification"): delete})


@dataclass(frozen=True)
class Variant:
    name: str
    breaks: str  # "auth" or "main"
    build: Callable[[ASGIApp], ASGIApp]
    failure: str  # the line the check must print, from its start


VARIANTS = (
    Variant(
        "a refresh that does not rotate",
        "auth",
        refresh_without_rotation,
        "FAIL  auth refresh (the old token at once): the old refresh token still works: it gave "
        "another new pair (a grace window may only repeat the same pair)",
    ),
    Variant(
        "a 500 instead of 401 for an expired token",
        "main",
        server_error_for_expired_tokens,
        "FAIL  main me (expired token): expected 401, got HTTP 500",
    ),
    Variant(
        "a grant with one token",
        "auth",
        grant_with_one_token,
        "FAIL  auth login_check granted (alice): a grant without two JWTs: refresh_token: missing",
    ),
    Variant(
        "a DELETE /notification that deletes everything",
        "main",
        delete_deletes_everything,
        "FAIL  main DELETE /notification (exactly those ids): it also deleted a notification it "
        "was not given: one that arrives between tggate's read and delete is lost",
    ),
    Variant(
        "a grant handed out twice",
        "auth",
        grant_handed_out_twice,
        "FAIL  auth login_check (the same token again): the grant was handed out twice (it is "
        "handed out once)",
    ),
    Variant(
        "a logout that ends no session",
        "auth",
        logout_that_ends_nothing,
        "FAIL  auth refresh (the logged-out session): still works after /logout (expected "
        "`refused`, got `refreshed` (HTTP 200)): logout ends every session",
    ),
    Variant(
        "a prompt that shows the login token",
        "auth",
        prompt_with_the_login_token,
        "FAIL  auth login (github): the prompt shows the login token (it must stay between "
        "tggate and the module)",
    ),
    Variant(
        "a login check that never expires",
        "auth",
        login_never_expires,
        "FAIL  auth login_check expired: expected `expired`, got `pending` (HTTP 200) after the "
        "test hook expired it",
    ),
)


@dataclass(frozen=True)
class Modules:
    auth_url: str
    main_url: str

    @property
    def hooks_url(self) -> str:
        return self.auth_url + "/test"


@contextmanager
def reference_modules(
    *,
    broken: Variant | None = None,
    grace_s: float = 1.0,
    login_ttl_s: int = 600,
    auth_skin: Callable[[ASGIApp], ASGIApp] | None = None,
) -> Iterator[Modules]:
    """The reference modules under uvicorn (one of them broken by `broken`, the Authorization
    module in another shape by `auth_skin`)."""
    auth: ASGIApp = create_auth(
        jwt_secret=JWT_SECRET,
        grace_s=grace_s,
        login_ttl_s=login_ttl_s,
        test_api_secret=TEST_API_SECRET,
    )
    main: ASGIApp = create_main(jwt_secret=JWT_SECRET, admin_secret=ADMIN_SECRET)
    if auth_skin is not None:
        auth = auth_skin(auth)
    if broken is not None and broken.breaks == "auth":
        auth = broken.build(auth)
    if broken is not None and broken.breaks == "main":
        main = broken.build(main)
    with run_asgi(auth) as auth_url, run_asgi(main) as main_url:
        yield Modules(auth_url, main_url)
