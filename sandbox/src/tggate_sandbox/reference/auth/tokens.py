"""Signed JWTs of the reference Authorization module (HS256 via PyJWT).

Expiry is checked against the injected clock rather than PyJWT's wall clock, so tests can move
time without sleeping; PyJWT still checks the signature, the algorithm and the issuer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

import jwt

__all__ = [
    "ALGORITHM",
    "ISSUER",
    "MIN_SECRET_BYTES",
    "Claims",
    "TokenCodec",
    "TokenPair",
    "TokenRejected",
    "TokenType",
]

ISSUER = "tggate-reference-auth"
ALGORITHM = "HS256"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. PyJWT warns below
# that, and the test suite treats warnings as errors, so a short secret is refused up front.
MIN_SECRET_BYTES = 32

TokenType = Literal["access", "refresh"]


class TokenRejected(Exception):
    """A token that must not be honoured; `reason` is "expired" or "invalid"."""

    def __init__(self, reason: Literal["expired", "invalid"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    name: str
    typ: TokenType
    jti: str
    iat: int
    exp: int


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str


def check_secret(secret: str) -> bytes:
    """The secret as bytes, or ValueError when it is too short for HS256."""
    key = secret.encode("utf-8")
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"jwt_secret must be at least {MIN_SECRET_BYTES} bytes for HS256 (RFC 7518 §3.2)"
        )
    return key


class TokenCodec:
    """Mints and reads this module's tokens; one instance per signing secret."""

    def __init__(self, secret: str) -> None:
        self._key = check_secret(secret)

    def mint(self, *, sub: str, name: str, typ: TokenType, now: float, ttl_s: int) -> Claims:
        """Claims for a new token; `encode` turns them into the JWT."""
        iat = int(now)
        return Claims(sub=sub, name=name, typ=typ, jti=uuid.uuid4().hex, iat=iat, exp=iat + ttl_s)

    def encode(self, claims: Claims) -> str:
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": claims.sub,
            "typ": claims.typ,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "name": claims.name,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def decode(
        self, token: str, *, typ: TokenType, now: float, check_expiry: bool = True
    ) -> Claims:
        """The claims of a genuine token of type `typ`; TokenRejected otherwise."""
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={
                    # Time is ours to check (see the module docstring).
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "typ", "iat", "exp", "jti"],
                },
            )
        except jwt.PyJWTError:
            raise TokenRejected("invalid", f"invalid {typ} token") from None
        claims = _claims(payload)
        if claims is None or claims.typ != typ:
            raise TokenRejected("invalid", f"invalid {typ} token")
        if check_expiry and now >= claims.exp:
            raise TokenRejected("expired", f"{typ} token expired")
        return claims


def _claims(payload: dict[str, Any]) -> Claims | None:
    sub, typ, jti = payload.get("sub"), payload.get("typ"), payload.get("jti")
    iat, exp, name = payload.get("iat"), payload.get("exp"), payload.get("name", sub)
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and isinstance(name, str)):
        return None
    if typ not in ("access", "refresh"):
        return None
    if not (_is_number(iat) and _is_number(exp)):
        return None
    return Claims(sub=sub, name=name, typ=typ, jti=jti, iat=int(iat), exp=int(exp))


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
