"""Request and answer bodies of the reference Authorization module (docs/openapi/auth.yaml and
its test API).

The bodies Bot Logic sends and reads are the contract's own models (`tggate.contract.auth`), so
the reference module and tggate's adapter cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from tggate.contract.auth import (
    LoginAnswer,
    LoginCheckRequest,
    LoginRequest,
    RefreshRequest,
    TelegramUserJson,
    TokenPairAnswer,
)
from tggate_sandbox.reference.auth.logins import LoginType

__all__ = [
    "ExpireAnswer",
    "ExpireRequest",
    "LoginCheckRequest",
    "LoginRequest",
    "LoginStarted",
    "LogoutAnswer",
    "MintRequest",
    "PendingView",
    "RefreshRequest",
    "ResolveAnswer",
    "ResolveRequest",
    "TokenPairAnswer",
]

Identity = Annotated[str, Field(min_length=1, max_length=200)]

# The /login answer is the contract's `LoginAnswer`; app.py knows it by this name.
LoginStarted = LoginAnswer


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class LogoutAnswer(BaseModel):
    """Not read by tggate (the contract's /logout answer has no body it needs)."""

    revoked: int


# ---- test API ----


class ResolveRequest(_Body):
    """Decide the most recent pending login of a chat, or the one showing `code`."""

    chat_id: StrictInt | None = None
    code: str | None = Field(default=None, min_length=1, max_length=32)
    decision: Literal["granted", "denied"]
    identity: Identity | None = None
    name: Identity | None = None
    access_ttl_s: StrictInt | None = None
    refresh_ttl_s: StrictInt | None = None

    @model_validator(mode="after")
    def _one_selector_and_an_identity(self) -> Self:
        if (self.chat_id is None) == (self.code is None):
            raise ValueError("give exactly one of chat_id or code")
        if self.decision == "granted" and self.identity is None:
            raise ValueError("a granted login needs an identity")
        return self


class ExpireRequest(_Body):
    """Let a chat's open logins expire now (issue 4: the browser test of an expired login)."""

    chat_id: StrictInt


class ExpireAnswer(BaseModel):
    expired: int


class ResolveAnswer(BaseModel):
    chat_id: int
    type: LoginType
    code: str | None
    decision: Literal["granted", "denied"]


class MintRequest(_Body):
    """Issue a pair without a login (a shortcut for tests that start Authorized)."""

    identity: Identity
    name: Identity | None = None
    access_ttl_s: StrictInt | None = None
    refresh_ttl_s: StrictInt | None = None


class PendingView(BaseModel):
    chat_id: int
    type: LoginType
    code: str | None
    expires_in: int
    telegram_user: TelegramUserJson | None = None
