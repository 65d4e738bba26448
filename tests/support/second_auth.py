"""A second Authorization module with an API of another shape: the second worked example of
docs/integrate.md ("Connect your own modules"), which tggate reaches through configuration
alone (TGGATE_AUTH_API_FILE).

    POST /v2/sessions         {"nonce", "method": "otp"|"github"|"yandex", "telegram": {"chat"},
                               "locale"}  → 201 {"prompt": {"message", "link", "otp"}, "ttl"}
    POST /v2/sessions/poll    {"nonce"}  → 202 {"state": "waiting"} | 200 {"state": "approved",
                               "tokens": {"access", "refresh"}} | 403 {"state": "rejected"} |
                               404 (unknown) | 410 (expired)
    POST /token/refresh       {"grant_type": "refresh_token", "token"}
                               → 200 {"data": {"accessToken", "refreshToken"}}
                               | 400 {"error": "invalid_grant"}
    POST /token/revoke        {"token", "everywhere": true} → 204

Its tokens are HS256 JWTs the reference Main module accepts (typ "access", sub, exp). Refresh
tokens rotate with a grace window; revoking ends every session of the person. Its test hooks are
those `tggate check-modules --hooks` speaks: `POST /test/logins/resolve` and
`/test/logins/expire`, by chat id. In memory, one event loop: no locks needed.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["API_DOCS_ANCHOR", "create_second_auth", "example_toml"]

API_DOCS_ANCHOR = "example-token-refresh"
_DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrate.md"


def example_toml(anchor: str) -> str:
    """The TOML of a worked example of docs/integrate.md: the first ```toml block after the
    anchor, so the documentation and the tests read one text."""
    text = _DOCS.read_text("utf-8")
    start = text.index(f'<a id="{anchor}"></a>')
    found = re.search(r"```toml\n(.*?)```", text[start:], re.S)
    assert found is not None, f"no TOML block after {anchor} in docs/integrate.md"
    return found.group(1)


@dataclass
class _Login:
    chat_id: int
    method: str
    otp: str
    expires_at: float
    decision: str = "waiting"  # approved, rejected
    identity: str = ""
    access_ttl_s: int | None = None


@dataclass
class _Refresh:
    sub: str
    family: str
    expires_at: float
    successor: tuple[str, str] | None = None
    rotated_at: float = 0.0


@dataclass
class _State:
    logins: dict[str, _Login] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)  # by jti


def create_second_auth(
    *,
    jwt_secret: str,
    access_ttl_s: int = 300,
    refresh_ttl_s: int = 86_400,
    login_ttl_s: int = 600,
    grace_s: float = 1.0,
) -> FastAPI:
    state = _State()
    app = FastAPI(title="a second Authorization module", openapi_url=None)
    app.state.calls = calls = []  # the paths called, in order, for tests to read

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        calls.append(request.url.path)
        response: Response = await call_next(request)
        return response

    def mint(sub: str, *, typ: str, ttl_s: int, family: str) -> tuple[str, str]:
        jti = uuid.uuid4().hex
        now = int(time.time())
        claims = {"sub": sub, "name": sub, "typ": typ, "iat": now, "exp": now + ttl_s, "jti": jti}
        if typ == "refresh":
            claims["fam"] = family
        return jwt.encode(claims, jwt_secret, algorithm="HS256"), jti

    def issue(sub: str, *, family: str, access_for_s: int | None = None) -> tuple[str, str]:
        ttl = access_ttl_s if access_for_s is None else access_for_s
        access, _ = mint(sub, typ="access", ttl_s=ttl, family=family)
        refresh, jti = mint(sub, typ="refresh", ttl_s=refresh_ttl_s, family=family)
        state.refresh[jti] = _Refresh(sub, family, time.time() + refresh_ttl_s)
        return access, refresh

    def claims_of(token: Any) -> dict[str, Any] | None:
        if not isinstance(token, str):
            return None
        try:
            claims: dict[str, Any] = jwt.decode(token, jwt_secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        return claims if claims.get("typ") == "refresh" else None

    @app.post("/v2/sessions")
    async def start(request: Request) -> Response:
        body = await request.json()
        nonce, method = body.get("nonce"), body.get("method")
        chat = (body.get("telegram") or {}).get("chat")
        if not isinstance(nonce, str) or method not in ("otp", "github", "yandex"):
            return JSONResponse({"error": "bad_request"}, 400)
        if nonce in state.logins:
            return JSONResponse({"error": "nonce_reused"}, 409)
        otp = f"{secrets.randbelow(10**6):06d}"
        state.logins[nonce] = _Login(chat, method, otp, time.time() + login_ttl_s)
        english = body.get("locale") == "en"
        if method == "otp":
            message = f"Your one-time code: {otp}" if english else f"Ваш код: {otp}"
            prompt = {"message": message, "link": None, "otp": otp}
        else:
            link = f"https://sso.example/{method}?session={uuid.uuid4().hex}"
            prompt = {"message": "Sign in:" if english else "Войдите:", "link": link, "otp": None}
        return JSONResponse({"prompt": prompt, "ttl": login_ttl_s}, 201)

    @app.post("/v2/sessions/poll")
    async def poll(request: Request) -> Response:
        nonce = (await request.json()).get("nonce")
        login = state.logins.get(nonce) if isinstance(nonce, str) else None
        if login is None:
            return JSONResponse({"error": "unknown_session"}, 404)
        if login.decision == "waiting" and time.time() >= login.expires_at:
            return JSONResponse({"error": "session_expired"}, 410)
        if login.decision == "waiting":
            return JSONResponse({"state": "waiting"}, 202)
        del state.logins[nonce]  # decided: answered once
        if login.decision == "rejected":
            return JSONResponse({"state": "rejected"}, 403)
        access, refresh = issue(
            login.identity, family=uuid.uuid4().hex, access_for_s=login.access_ttl_s
        )
        return JSONResponse({"state": "approved", "tokens": {"access": access, "refresh": refresh}})

    @app.post("/token/refresh")
    async def refresh(request: Request) -> Response:
        body = await request.json()
        claims = claims_of(body.get("token")) if body.get("grant_type") == "refresh_token" else None
        record = state.refresh.get(claims["jti"]) if claims else None
        now = time.time()
        if record is None or now >= record.expires_at:
            return JSONResponse({"error": "invalid_grant"}, 400)
        if record.successor is not None:
            if now - record.rotated_at > grace_s:
                return JSONResponse({"error": "invalid_grant"}, 400)
            access, new = record.successor
        else:
            access, new = issue(record.sub, family=record.family)
            record.successor, record.rotated_at = (access, new), now
        return JSONResponse({"data": {"accessToken": access, "refreshToken": new}})

    @app.post("/token/revoke")
    async def revoke(request: Request) -> Response:
        body = await request.json()
        claims = claims_of(body.get("token"))
        record = state.refresh.get(claims["jti"]) if claims else None
        usable = record is not None and (
            record.successor is None or time.time() - record.rotated_at <= grace_s
        )
        if record is not None and usable and body.get("everywhere") is True:
            for jti in [j for j, r in state.refresh.items() if r.sub == record.sub]:
                del state.refresh[jti]
        return Response(status_code=204)

    @app.post("/test/logins/resolve")
    async def resolve(request: Request) -> Response:
        body = await request.json()
        waiting = [
            login
            for login in state.logins.values()
            if login.chat_id == body.get("chat_id") and login.decision == "waiting"
        ]
        if not waiting:
            return JSONResponse({"detail": "no pending login for that chat"}, 404)
        login = waiting[-1]
        login.decision = "approved" if body.get("decision") == "granted" else "rejected"
        login.identity = str(body.get("identity") or "")
        login.access_ttl_s = body.get("access_ttl_s")
        return JSONResponse({"chat_id": login.chat_id, "decision": login.decision})

    @app.post("/test/logins/expire")
    async def expire(request: Request) -> Response:
        chat_id = (await request.json()).get("chat_id")
        ended = 0
        for login in state.logins.values():
            if login.chat_id == chat_id and login.decision == "waiting":
                login.expires_at, ended = 0.0, ended + 1
        return JSONResponse({"expired": ended})

    return app
