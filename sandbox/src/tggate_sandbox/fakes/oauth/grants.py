"""The fake provider's memory: its users, the codes it handed out and the tokens it issued.

Codes are single-use and expire; a token request that names a code burns it whatever the outcome
(RFC 6749 §4.1.2: a code must not be used twice). PKCE (RFC 7636): a code issued with an S256
challenge is only exchanged with the verifier that hashes to it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass

__all__ = ["DEMO_USERS", "AuthorizationCode", "FakeUser", "GrantBook", "GrantRefused"]


@dataclass(frozen=True, slots=True)
class FakeUser:
    """A person with an account at the fake provider."""

    id: int
    login: str
    name: str


DEMO_USERS: tuple[FakeUser, ...] = (
    FakeUser(1001, "alice", "Alice Ivanova"),
    FakeUser(1002, "bob", "Boris Petrov"),
    FakeUser(1003, "octocat", "The Octocat"),
)


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    user_id: int
    scope: str
    code_challenge: str | None
    expires_at: float


class GrantRefused(Exception):
    """The token request is refused; `error` is the OAuth error code (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def s256(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class GrantBook:
    """Thread-safe, in memory."""

    def __init__(self, *, code_ttl_s: float) -> None:
        self._code_ttl_s = code_ttl_s
        self._codes: dict[str, AuthorizationCode] = {}
        self._tokens: dict[str, int] = {}  # access token -> user id
        self._lock = threading.Lock()

    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        user_id: int,
        scope: str,
        code_challenge: str | None,
        now: float,
    ) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            for stale in [c for c, g in self._codes.items() if now >= g.expires_at]:
                del self._codes[stale]
            self._codes[code] = AuthorizationCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                user_id=user_id,
                scope=scope,
                code_challenge=code_challenge,
                expires_at=now + self._code_ttl_s,
            )
        return code

    def exchange(
        self,
        code: str,
        *,
        client_id: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        now: float,
    ) -> tuple[str, AuthorizationCode]:
        """An access token for the code, or GrantRefused("invalid_grant", …)."""
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None or now >= grant.expires_at:
            raise GrantRefused("invalid_grant", "the code is unknown, used or expired")
        if grant.client_id != client_id:
            raise GrantRefused("invalid_grant", "the code was issued to another client")
        if redirect_uri is not None and redirect_uri != grant.redirect_uri:
            raise GrantRefused("invalid_grant", "redirect_uri does not match")
        if grant.code_challenge is not None and (
            not code_verifier
            or not secrets.compare_digest(s256(code_verifier), grant.code_challenge)
        ):
            raise GrantRefused("invalid_grant", "the PKCE code_verifier does not match")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = grant.user_id
        return token, grant

    def user_of(self, token: str) -> int | None:
        with self._lock:
            return self._tokens.get(token)
