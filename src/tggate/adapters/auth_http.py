"""The Authorization module over HTTP (docs/openapi/auth.yaml), answers as domain results.

Where each call goes and where its values sit come from an `AuthApi` (adapters/auth_api.py):
today's contract by default, a team's TGGATE_AUTH_API_FILE otherwise. The values themselves
are checked by the contract models (`tggate.contract.auth`) the document is generated from, so
a mapped module is held to the same rules (a grant carries two JWTs, a prompt has a text).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from tggate.adapters.auth_api import AuthApi, Call, default_auth_api
from tggate.adapters.http_base import JsonHttp
from tggate.adapters.http_pool import HttpAnswer
from tggate.contract.auth import (
    DEFAULT_LOGIN_TTL_S,
    LoginAnswer,
    LoginCheckRequest,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    TokenPairAnswer,
)
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

__all__ = ["HttpAuthModule", "read_values"]

log = logging.getLogger("tggate.adapters.auth")

_NAME = "auth"

Model = TypeVar("Model", bound=BaseModel)


def read_values(
    call: Call, document: object, model: type[Model]
) -> tuple[Model | None, str | None]:
    """The values `call` reads from an answer, checked by `model`: (the values, None), or
    (None, where they misfit), without the values themselves (they may be tokens)."""
    try:
        return model.model_validate(call.read(document)), None
    except ValidationError as error:
        problems = "; ".join(
            f"{call.where(str(problem['loc'][0])) if problem['loc'] else 'body'}: {problem['type']}"
            for problem in error.errors(include_url=False, include_input=False)[:3]
        )
        return None, problems


class HttpAuthModule:
    """`AuthModule` over HTTP. Only /refresh is retried: its grace window makes a repeat safe,
    while a repeated /login/check could swallow a grant that is handed out once."""

    def __init__(self, http: JsonHttp, api: AuthApi | None = None) -> None:
        self._http = http
        self._api = api or default_auth_api()

    async def _send(self, call: Call, body: BaseModel, **words: str) -> HttpAnswer | None:
        """`body`'s values where `call` puts them; `words` replace some by the module's words."""
        values = {**body.model_dump(), **words}
        return await self._http.request(call.method, call.path, content=call.body(values))

    def _misfit(self, call: Call, answer: HttpAnswer, model: type[Model]) -> Model | None:
        """The answer's values as `model`, or None (logged: an operator needs to know)."""
        values, problems = read_values(call, answer.json(), model)
        if problems is not None:
            log.warning(
                "%s: the answer to %s does not fit %s: %s",
                _NAME,
                call.path,
                self._api.source,
                problems,
            )
        return values

    def _unavailable(self, call: Call, answer: HttpAnswer | None) -> ModuleUnavailable:
        if answer is not None and call.accepts_status(answer.status):
            # The status is one the call knows, the body is not: say where it misfits.
            log.warning(
                "%s: the answer to %s (HTTP %d) does not fit %s: no outcome of %s matches",
                _NAME,
                call.path,
                answer.status,
                self._api.source,
                call.name,
            )
            return ModuleUnavailable(_NAME, f"a {call.path} answer that does not fit")
        detail = "no answer" if answer is None else f"HTTP {answer.status} on {call.path}"
        return ModuleUnavailable(_NAME, detail)

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
        call = self._api.login
        answer = await self._send(call, body, type=self._api.login_types[body.type])
        if answer is None or call.outcome(answer.status, answer.json()) != "started":
            return self._unavailable(call, answer)
        started = self._misfit(call, answer, LoginAnswer)
        if started is None:
            return ModuleUnavailable(_NAME, f"a {call.path} answer that does not fit")
        prompt = LoginPrompt(text=started.text, url=started.url, code=started.code)
        ttl = started.expires_in if started.expires_in > 0 else DEFAULT_LOGIN_TTL_S
        return LoginStarted(prompt=prompt, expires_in=ttl)

    async def check_login(self, *, login_token: str) -> LoginCheck | ModuleUnavailable:
        call = self._api.login_check
        answer = await self._send(call, LoginCheckRequest(login_token=login_token))
        outcome = None if answer is None else call.outcome(answer.status, answer.json())
        if answer is None or outcome is None:
            return self._unavailable(call, answer)
        if outcome == "pending":
            return LoginPending()
        if outcome == "denied":
            return LoginDenied()
        if outcome in ("unknown", "expired"):
            return LoginGone(reason=outcome)
        pair = self._misfit(call, answer, TokenPairAnswer)
        if pair is None:  # A5: a grant without two JWTs is no answer
            return ModuleUnavailable(_NAME, f"a {call.path} answer that does not fit")
        return LoginGranted(access_token=pair.access_token, refresh_token=pair.refresh_token)

    async def refresh(
        self, *, refresh_token: str
    ) -> Refreshed | RefreshRejected | ModuleUnavailable:
        call = self._api.refresh
        body = RefreshRequest(refresh_token=refresh_token)
        answer: HttpAnswer | None = None
        for _attempt in range(2):
            answer = await self._send(call, body)
            if answer is not None:
                break
        outcome = None if answer is None else call.outcome(answer.status, answer.json())
        if outcome == "refused":
            return RefreshRejected()
        if answer is None or outcome != "refreshed":
            return self._unavailable(call, answer)
        pair = self._misfit(call, answer, TokenPairAnswer)
        if pair is None:
            return ModuleUnavailable(_NAME, f"a {call.path} answer without two JWTs")
        return Refreshed(access_token=pair.access_token, refresh_token=pair.refresh_token)

    async def logout_everywhere(self, *, refresh_token: str) -> ModuleUnavailable | None:
        call = self._api.logout
        answer = await self._send(call, LogoutRequest(refresh_token=refresh_token))
        if answer is None or call.outcome(answer.status, answer.json()) != "done":
            return self._unavailable(call, answer)
        # By default 2xx: done; 4xx: the token is already unknown, nothing is left to revoke.
        return None
