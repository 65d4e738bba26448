"""Request and answer bodies of the reference Authorization module (SPEC §5.2 and its test API)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from tggate_sandbox.reference.auth.logins import CheckStatus, LoginType
from tggate_sandbox.reference.auth.texts import Language

__all__ = [
    "DelayRequest",
    "ExpireAnswer",
    "ExpireRequest",
    "LoginCheckAnswer",
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

# Long enough for any real token, short enough that nobody stores megabytes through us.
Token = Annotated[str, Field(min_length=1, max_length=4096)]
Identity = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class LoginRequest(_Body):
    login_token: Token
    type: LoginType
    chat_id: StrictInt
    # Not in SPEC §5.2: lets Bot Logic ask for the person's language; Russian otherwise.
    language: Language = "ru"


class LoginStarted(BaseModel):
    text: str
    url: str | None
    code: str | None
    expires_in: int


class LoginCheckRequest(_Body):
    login_token: Token


class LoginCheckAnswer(BaseModel):
    status: CheckStatus
    access_token: str | None = None
    refresh_token: str | None = None


class RefreshRequest(_Body):
    refresh_token: Token


class TokenPairAnswer(BaseModel):
    access_token: str
    refresh_token: str


class LogoutAnswer(BaseModel):
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


class DelayRequest(_Body):
    seconds: float = Field(ge=0, le=600, allow_inf_nan=False)


class PendingView(BaseModel):
    chat_id: int
    type: LoginType
    code: str | None
    expires_in: int
