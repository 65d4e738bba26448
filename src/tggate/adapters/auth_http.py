"""The Authorization module over HTTP (SPEC §5.2), answers translated into domain results."""

from __future__ import annotations

from typing import Any

from tggate.adapters.http_base import HttpAnswer, JsonHttp
from tggate.core.ports import (
    LoginCheck,
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    ModuleUnavailable,
    Refreshed,
    RefreshRejected,
)
from tggate.core.session import LoginPrompt

__all__ = ["HttpAuthModule", "looks_like_jwt"]

_NAME = "auth"


def looks_like_jwt(value: Any) -> bool:
    """Three non-empty base64url segments: the seed asks Bot Logic to check both are JWTs."""
    if not isinstance(value, str) or len(value) > 8192:
        return False
    parts = value.split(".")
    return (
        len(parts) == 3
        and all(parts[:2])
        and all(c.isalnum() or c in "-_" for part in parts for c in part)
    )


def _unavailable(answer: HttpAnswer | None, what: str) -> ModuleUnavailable:
    detail = "no answer" if answer is None else f"HTTP {answer.status} on {what}"
    return ModuleUnavailable(_NAME, detail)


def _pair(body: Any) -> tuple[str, str] | None:
    if not isinstance(body, dict):
        return None
    access, refresh = body.get("access_token"), body.get("refresh_token")
    if (
        isinstance(access, str)
        and isinstance(refresh, str)
        and looks_like_jwt(access)
        and looks_like_jwt(refresh)
    ):
        return access, refresh
    return None


class HttpAuthModule:
    """`AuthModule` over HTTP. Only /refresh is retried: its grace window makes a repeat safe,
    while a repeated /login/check could swallow a grant that is handed out once."""

    def __init__(self, http: JsonHttp) -> None:
        self._http = http

    async def start_login(
        self, *, login_token: str, login_type: str, chat_id: int, language: str = "ru"
    ) -> LoginStarted | ModuleUnavailable:
        body = {
            "login_token": login_token,
            "type": login_type,
            "chat_id": chat_id,
            "language": language,
        }
        answer = await self._http.request("POST", "/login", json=body)
        if answer is None or answer.status != 200 or not isinstance(answer.body, dict):
            return _unavailable(answer, "/login")
        data = answer.body
        text, url, code = data.get("text"), data.get("url"), data.get("code")
        if not isinstance(text, str) or not text:
            return _unavailable(answer, "/login (no text)")
        expires_in = data.get("expires_in")
        prompt = LoginPrompt(
            text=text,
            url=url if isinstance(url, str) and url else None,
            code=code if isinstance(code, str) and code else None,
        )
        ttl = expires_in if isinstance(expires_in, int) and expires_in > 0 else 600
        return LoginStarted(prompt=prompt, expires_in=ttl)

    async def check_login(self, *, login_token: str) -> LoginCheck | ModuleUnavailable:
        answer = await self._http.request("POST", "/login/check", json={"login_token": login_token})
        if answer is None or answer.status != 200 or not isinstance(answer.body, dict):
            return _unavailable(answer, "/login/check")
        status = answer.body.get("status")
        if status == "pending":
            return LoginPending()
        if status == "denied":
            return LoginDenied()
        if status in ("unknown", "expired"):
            return LoginGone(reason=str(status))
        if status == "granted":
            pair = _pair(answer.body)
            if pair is None:  # A5: both JWTs must be present
                return ModuleUnavailable(_NAME, "a grant without two JWTs")
            return LoginGranted(access_token=pair[0], refresh_token=pair[1])
        return ModuleUnavailable(_NAME, "unknown login status")

    async def refresh(
        self, *, refresh_token: str
    ) -> Refreshed | RefreshRejected | ModuleUnavailable:
        answer: HttpAnswer | None = None
        for _attempt in range(2):
            answer = await self._http.request(
                "POST", "/refresh", json={"refresh_token": refresh_token}
            )
            if answer is not None:
                break
        if answer is not None and answer.status in (400, 401, 403):
            return RefreshRejected()
        if answer is None or answer.status != 200:
            return _unavailable(answer, "/refresh")
        pair = _pair(answer.body)
        if pair is None:
            return ModuleUnavailable(_NAME, "a refresh without two JWTs")
        return Refreshed(access_token=pair[0], refresh_token=pair[1])

    async def logout_everywhere(self, *, refresh_token: str) -> ModuleUnavailable | None:
        answer = await self._http.request("POST", "/logout", json={"refresh_token": refresh_token})
        if answer is None or answer.status >= 500:
            return _unavailable(answer, "/logout")
        # 2xx: done; 4xx: the token is already unknown, so nothing is left to revoke with it.
        return None
