"""The Authorization module over HTTP (docs/openapi/auth.yaml), answers as domain results.

Requests are built and answers read through the contract models (`tggate.contract.auth`), the
same ones the document is generated from, so the adapter and docs/openapi/auth.yaml cannot drift.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from tggate.adapters.http_base import HttpAnswer, JsonHttp, misfit
from tggate.contract.auth import (
    CHECK_LOGIN,
    DEFAULT_LOGIN_TTL_S,
    LOGOUT,
    REFRESH,
    START_LOGIN,
    LoginAnswer,
    LoginCheckAnswer,
    LoginCheckRequest,
    LoginDeniedAnswer,
    LoginGrantedAnswer,
    LoginPendingAnswer,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    TokenPairAnswer,
)
from tggate.contract.operations import Operation
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
    TelegramUser,
)
from tggate.core.session import LoginPrompt

__all__ = ["HttpAuthModule"]

log = logging.getLogger("tggate.adapters.auth")

_NAME = "auth"
# The statuses of /refresh that refuse the token (Z8); docs/openapi/auth.yaml documents 401.
_REFUSED = frozenset({400, 401, 403})

Model = TypeVar("Model", bound=BaseModel)


def _unavailable(answer: HttpAnswer | None, operation: Operation) -> ModuleUnavailable:
    detail = "no answer" if answer is None else f"HTTP {answer.status} on {operation.path}"
    return ModuleUnavailable(_NAME, detail)


def _read(answer: HttpAnswer, model: type[Model], operation: Operation) -> Model | None:
    """The answer as `model`, or None (logged: an operator needs to know the module misfits)."""
    try:
        return model.model_validate_json(answer.content)
    except ValidationError as error:
        log.warning(
            "%s: the answer to %s does not fit docs/openapi/auth.yaml: %s",
            _NAME,
            operation.path,
            misfit(error),
        )
        return None


class HttpAuthModule:
    """`AuthModule` over HTTP. Only /refresh is retried: its grace window makes a repeat safe,
    while a repeated /login/check could swallow a grant that is handed out once."""

    def __init__(self, http: JsonHttp) -> None:
        self._http = http

    async def start_login(
        self,
        *,
        login_token: str,
        login_type: str,
        chat_id: int,
        language: str = "ru",
        telegram_user: TelegramUser | None = None,
    ) -> LoginStarted | ModuleUnavailable:
        # Validated, not just built: the core's login type and language are plain strings, and
        # what goes out must fit docs/openapi/auth.yaml.
        body = LoginRequest.model_validate(
            {
                "login_token": login_token,
                "type": login_type,
                "chat_id": chat_id,
                "language": language,
                "telegram_user": None if telegram_user is None else asdict(telegram_user),
            }
        )
        answer = await self._http.request(START_LOGIN.method, START_LOGIN.path, body=body)
        if answer is None or answer.status != 200:
            return _unavailable(answer, START_LOGIN)
        started = _read(answer, LoginAnswer, START_LOGIN)
        if started is None:
            return ModuleUnavailable(_NAME, "a /login answer that does not fit")
        prompt = LoginPrompt(text=started.text, url=started.url, code=started.code)
        ttl = started.expires_in if started.expires_in > 0 else DEFAULT_LOGIN_TTL_S
        return LoginStarted(prompt=prompt, expires_in=ttl)

    async def check_login(self, *, login_token: str) -> LoginCheck | ModuleUnavailable:
        body = LoginCheckRequest(login_token=login_token)
        answer = await self._http.request(CHECK_LOGIN.method, CHECK_LOGIN.path, body=body)
        if answer is None or answer.status != 200:
            return _unavailable(answer, CHECK_LOGIN)
        checked = _read(answer, LoginCheckAnswer, CHECK_LOGIN)
        if checked is None:  # among others, A5: a grant without two JWTs
            return ModuleUnavailable(_NAME, "a /login/check answer that does not fit")
        state = checked.root
        if isinstance(state, LoginPendingAnswer):
            return LoginPending()
        if isinstance(state, LoginDeniedAnswer):
            return LoginDenied()
        if isinstance(state, LoginGrantedAnswer):
            return LoginGranted(access_token=state.access_token, refresh_token=state.refresh_token)
        return LoginGone(reason=state.status)

    async def refresh(
        self, *, refresh_token: str
    ) -> Refreshed | RefreshRejected | ModuleUnavailable:
        body = RefreshRequest(refresh_token=refresh_token)
        answer: HttpAnswer | None = None
        for _attempt in range(2):
            answer = await self._http.request(REFRESH.method, REFRESH.path, body=body)
            if answer is not None:
                break
        if answer is not None and answer.status in _REFUSED:
            return RefreshRejected()
        if answer is None or answer.status != 200:
            return _unavailable(answer, REFRESH)
        pair = _read(answer, TokenPairAnswer, REFRESH)
        if pair is None:
            return ModuleUnavailable(_NAME, "a /refresh answer without two JWTs")
        return Refreshed(access_token=pair.access_token, refresh_token=pair.refresh_token)

    async def logout_everywhere(self, *, refresh_token: str) -> ModuleUnavailable | None:
        body = LogoutRequest(refresh_token=refresh_token)
        answer = await self._http.request(LOGOUT.method, LOGOUT.path, body=body)
        if answer is None or answer.status >= 500:
            return _unavailable(answer, LOGOUT)
        # 2xx: done; 4xx: the token is already unknown, so nothing is left to revoke with it.
        return None
