"""The reference Authorization module: an in-memory FastAPI app speaking docs/openapi/auth.yaml.

`create_app` wires the pieces: `LoginBook` (logins in flight), `SessionRegistry` (refresh tokens,
rotation, logout), `TokenCodec` (JWTs), the login pages the person's browser visits (`web.py`:
code login with a confirmation page, GitHub / Yandex ID OAuth through `oauth.py`) and, with a
`test_api_secret`, a `/test` API that plays the person (decides logins) and instruments the
module (stats, delay), every call of it carrying the secret (`tggate_sandbox.hardening`). Without
the secret there is no test API: it logs in any chat as anyone (issue 9). Nothing happens at
import.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping, Sequence

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from starlette.middleware.sessions import SessionMiddleware

from tggate.contract.auth import LoginCheckAnswer, LoginGrantedAnswer
from tggate.core.ports import Clock
from tggate_sandbox.hardening import guard_test_api, sandbox_app
from tggate_sandbox.reference.auth.browser import BrowserState
from tggate_sandbox.reference.auth.logins import Grant, LoginBook, LoginConflict, NoPendingLogin
from tggate_sandbox.reference.auth.models import (
    ExpireAnswer,
    ExpireRequest,
    LoginCheckRequest,
    LoginRequest,
    LoginStarted,
    LogoutAnswer,
    MintRequest,
    PendingView,
    RefreshRequest,
    ResolveAnswer,
    ResolveRequest,
    TokenPairAnswer,
)
from tggate_sandbox.reference.auth.oauth import OAuthProvider, OAuthProviderConfig
from tggate_sandbox.reference.auth.pages import DEMO_IDENTITIES, DemoIdentity
from tggate_sandbox.reference.auth.sessions import RefreshRefused, SessionRegistry
from tggate_sandbox.reference.auth.texts import login_text, not_configured_text
from tggate_sandbox.reference.auth.tokens import TokenCodec
from tggate_sandbox.reference.auth.web import OAUTH_LOGIN_TYPES, pages_router
from tggate_sandbox.reference.instrument import DelayRequest, Instrument, InstrumentMiddleware

__all__ = ["create_app"]

log = logging.getLogger("tggate_sandbox.reference.auth")

# Path -> name in /test/stats (the names the brief of the test API uses).
_MODULE_ENDPOINTS = {
    "/login": "login",
    "/login/check": "login/check",
    "/refresh": "refresh",
    "/logout": "logout",
}


def create_app(
    *,
    jwt_secret: str,
    public_url: str = "http://127.0.0.1:8081",
    access_ttl_s: int = 300,
    refresh_ttl_s: int = 30 * 24 * 3600,
    login_ttl_s: int = 600,
    grace_s: float = 10.0,
    test_api_secret: str | None = None,
    clock: Clock = time.time,
    oauth: Mapping[str, OAuthProviderConfig] | None = None,
    session_secret: str | None = None,
    secure_cookies: bool | None = None,
    demo_sign_in: bool = True,
    demo_identities: Sequence[DemoIdentity] = DEMO_IDENTITIES,
    code_guess_limit: int = 10,
    client_guess_limit: int = 5,
    client_lock_s: float = 60.0,
    provider_timeout_s: float = 10.0,
) -> FastAPI:
    """Build the module. ValueError for a short secret, a non-positive lifetime or an unknown
    OAuth provider name.

    `oauth` maps "github" / "yandex" to their OAuth apps (`github_config`, `yandex_config`). A
    login with a provider that has none is answered with a "not configured" text and no link,
    except with the test API on, where the link is still given and the test API decides the
    login. The browser session cookie is signed with `session_secret` (default: derived from
    `jwt_secret`) and marked Secure when `secure_cookies` (default: `public_url` is https).
    `demo_sign_in` offers the demo identities (and a free user name) on the code page, and logs a
    warning; without it, only the configured providers sign a browser in. A one-time code dies
    after `code_guess_limit` wrong codes entered anywhere while it is open; an address is locked
    out for `client_lock_s` after `client_guess_limit` wrong codes.
    """
    for name, value in (
        ("access_ttl_s", access_ttl_s),
        ("refresh_ttl_s", refresh_ttl_s),
        ("login_ttl_s", login_ttl_s),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be positive")
    if grace_s < 0:
        raise ValueError("grace_s must not be negative")
    providers_config = dict(oauth or {})
    unknown = sorted(set(providers_config) - set(OAUTH_LOGIN_TYPES))
    if unknown:
        raise ValueError(f"unknown OAuth providers {unknown}; known: {list(OAUTH_LOGIN_TYPES)}")
    if provider_timeout_s <= 0:
        raise ValueError("provider_timeout_s must be positive")
    guard = None if test_api_secret is None else guard_test_api(test_api_secret)
    codec = TokenCodec(jwt_secret)
    logins = LoginBook(ttl_s=login_ttl_s, guess_limit=code_guess_limit)
    sessions = SessionRegistry(
        codec, access_ttl_s=access_ttl_s, refresh_ttl_s=refresh_ttl_s, grace_s=grace_s
    )
    instrument = Instrument(_MODULE_ENDPOINTS)
    base_url = public_url.rstrip("/")
    providers = {
        name: OAuthProvider(
            name,
            config,
            redirect_url=f"{base_url}/oauth/{name}/callback",
            timeout_s=provider_timeout_s,
        )
        for name, config in providers_config.items()
    }
    browser = BrowserState(
        client_guess_limit=client_guess_limit,
        client_lock_s=client_lock_s,
        attempt_ttl_s=float(login_ttl_s),
    )
    if demo_sign_in:
        # Issue 10: the demo sign-in trusts a typed name; whoever starts the module must know.
        log.warning(
            "DEMO SIGN-IN IS ON: anyone can sign in on %s/code as anyone by typing a name; "
            "never put this module in front of real people",
            base_url,
        )
    if guard is not None:
        log.warning("the test API is on (/test, X-Test-Api-Secret): it logs any chat in")

    app = sandbox_app(title="tggate reference Authorization module", version="1")
    app.get("/healthz", include_in_schema=False)(_healthz)
    app.add_middleware(InstrumentMiddleware, instrument=instrument)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret or _derived_session_secret(jwt_secret),
        session_cookie="tggate_auth_session",
        max_age=24 * 3600,
        same_site="lax",
        https_only=base_url.startswith("https://") if secure_cookies is None else secure_cookies,
    )
    app.include_router(
        _module_router(
            logins=logins,
            sessions=sessions,
            public_url=base_url,
            ttl_s=login_ttl_s,
            clock=clock,
            # Without an OAuth app, the test API can still decide a provider login (tests, demo).
            link_types=set(providers) | (set(OAUTH_LOGIN_TYPES) if guard else set()),
        )
    )
    app.include_router(
        pages_router(
            logins=logins,
            browser=browser,
            providers=providers,
            demo_identities=demo_identities,
            demo_sign_in=demo_sign_in,
            clock=clock,
        )
    )
    if guard is not None:
        app.include_router(
            _test_router(logins=logins, sessions=sessions, instrument=instrument, clock=clock),
            prefix="/test",
            dependencies=[Depends(guard)],
        )
    return app


async def _healthz() -> dict[str, str]:
    """Up: what the topology waits for (a test endpoint needs the secret)."""
    return {"status": "ok"}


def _derived_session_secret(jwt_secret: str) -> str:
    """A key for the session cookie that is not the JWT key itself."""
    return hmac.new(
        jwt_secret.encode("utf-8"), b"tggate reference auth: session cookie", hashlib.sha256
    ).hexdigest()


def _module_router(
    *,
    logins: LoginBook,
    sessions: SessionRegistry,
    public_url: str,
    ttl_s: int,
    clock: Clock,
    link_types: set[str],
) -> APIRouter:
    """The endpoints of docs/openapi/auth.yaml, the only ones Bot Logic calls."""
    router = APIRouter(tags=["module"])

    @router.post("/login")
    async def start_login(body: LoginRequest) -> LoginStarted:
        if body.type != "code" and body.type not in link_types:
            log.info("login refused: chat_id=%s type=%s not configured", body.chat_id, body.type)
            return LoginStarted(
                text=not_configured_text(body.type, language=body.language),
                url=None,
                code=None,
                expires_in=0,
            )
        try:
            login = logins.start(
                body.login_token,
                chat_id=body.chat_id,
                type=body.type,
                now=clock(),
                telegram_user=body.telegram_user,
            )
        except LoginConflict as conflict:
            raise HTTPException(409, detail=str(conflict)) from None
        url = (
            None if login.ref is None else f"{public_url}/oauth/{login.type}/start?ref={login.ref}"
        )
        log.info("login started: chat_id=%s type=%s", login.chat_id, login.type)
        return LoginStarted(
            text=login_text(
                login.type,
                public_url=public_url,
                code=login.code,
                url=url,
                ttl_s=ttl_s,
                language=body.language,
            ),
            url=url,
            code=login.code,
            expires_in=max(0, round(login.expires_at - clock())),
        )

    @router.post("/login/check", response_model_exclude_none=True)
    async def check_login(body: LoginCheckRequest) -> LoginCheckAnswer:
        now = clock()
        status, grant = logins.take_status(body.login_token, now=now)
        if status != "granted" or grant is None:
            return LoginCheckAnswer.model_validate({"status": status})
        pair = sessions.issue(
            sub=grant.identity,
            name=grant.name,
            now=now,
            access_ttl_s=grant.access_ttl_s,
            refresh_ttl_s=grant.refresh_ttl_s,
        )
        log.info("login granted and handed out: sub=%s", grant.identity)
        return LoginCheckAnswer(
            LoginGrantedAnswer(
                status="granted", access_token=pair.access_token, refresh_token=pair.refresh_token
            )
        )

    @router.post("/refresh")
    async def refresh(body: RefreshRequest) -> TokenPairAnswer:
        try:
            pair = sessions.rotate(body.refresh_token, now=clock())
        except RefreshRefused as refused:
            log.info("refresh refused: %s", refused.detail)
            raise HTTPException(
                401, detail=refused.detail, headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return TokenPairAnswer(access_token=pair.access_token, refresh_token=pair.refresh_token)

    @router.post("/logout")
    async def logout(body: RefreshRequest) -> LogoutAnswer:
        # Idempotent: a token that no longer works revokes nothing and still answers 200.
        return LogoutAnswer(revoked=sessions.revoke_person(body.refresh_token, now=clock()))

    return router


def _test_router(
    *, logins: LoginBook, sessions: SessionRegistry, instrument: Instrument, clock: Clock
) -> APIRouter:
    """Plays the person (decides logins) and instruments the module for tests and the demo."""
    router = APIRouter(tags=["test"])

    @router.post("/logins/resolve")
    async def resolve_login(body: ResolveRequest) -> ResolveAnswer:
        now = clock()
        try:
            token = logins.find(now=now, chat_id=body.chat_id, code=body.code)
        except NoPendingLogin:
            selector = f"chat_id {body.chat_id}" if body.code is None else f"code {body.code}"
            raise HTTPException(404, detail=f"no pending login for {selector}") from None
        grant = None
        if body.decision == "granted" and body.identity is not None:
            grant = Grant(
                identity=body.identity,
                name=body.name or body.identity,
                access_ttl_s=body.access_ttl_s,
                refresh_ttl_s=body.refresh_ttl_s,
            )
        try:
            login = logins.decide(token, decision=body.decision, grant=grant, now=now)
        except NoPendingLogin:
            raise HTTPException(404, detail="the login is no longer pending") from None
        log.info("test API: login of chat_id=%s %s", login.chat_id, body.decision)
        return ResolveAnswer(
            chat_id=login.chat_id, type=login.type, code=login.code, decision=body.decision
        )

    @router.post("/logins/expire")
    async def expire_logins(body: ExpireRequest) -> ExpireAnswer:
        # Issue 4: a login lives 10 minutes; the browser test of an expired login (A3, L2)
        # cannot wait that long, so the test API ends it early.
        expired = logins.expire(chat_id=body.chat_id, now=clock())
        log.info("test API: %d login(s) of chat_id=%s expired", expired, body.chat_id)
        return ExpireAnswer(expired=expired)

    @router.post("/tokens")
    async def mint_tokens(body: MintRequest) -> TokenPairAnswer:
        pair = sessions.issue(
            sub=body.identity,
            name=body.name or body.identity,
            now=clock(),
            access_ttl_s=body.access_ttl_s,
            refresh_ttl_s=body.refresh_ttl_s,
        )
        return TokenPairAnswer(access_token=pair.access_token, refresh_token=pair.refresh_token)

    @router.get("/pending")
    async def pending() -> list[PendingView]:
        now = clock()
        return [
            PendingView(
                chat_id=login.chat_id,
                type=login.type,
                code=login.code,
                expires_in=max(0, round(login.expires_at - now)),
                telegram_user=login.telegram_user,
            )
            for login in logins.open_logins(now=now)
        ]

    @router.get("/stats")
    async def stats() -> dict[str, int]:
        return dict(instrument.counts)

    @router.post("/stats/reset")
    async def reset_stats() -> dict[str, int]:
        instrument.reset()
        return dict(instrument.counts)

    @router.post("/delay")
    async def set_delay(body: DelayRequest) -> dict[str, float]:
        instrument.delayed_route = body.route
        instrument.delay.set(body.seconds)  # requests waiting on the old delay go on now
        return {"seconds": instrument.delay.seconds}

    return router
