"""Who is calling: the Bearer access token, verified like any resource server would.

HS256 only (`algorithms=["HS256"]`, so "none" and algorithm confusion are refused), the
signature, the required claims and `typ == "access"`. Expiry is checked against the injected
clock instead of PyJWT's wall clock, so tests can move time. Every failure is one exception with
a short reason for the 401 body; the token itself is never logged or echoed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from tggate.core.ports import Clock

__all__ = ["ISSUER", "AccessVerifier", "Caller", "Unauthorized"]

ISSUER = "tggate-reference-auth"
_ALGORITHM = "HS256"
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2; PyJWT warns below it


class Unauthorized(Exception):
    """No usable access token; the message is the 401 detail."""


@dataclass(frozen=True, slots=True)
class Caller:
    identity: str
    name: str | None


class AccessVerifier:
    def __init__(self, secret: str, *, clock: Clock) -> None:
        key = secret.encode("utf-8")
        if len(key) < _MIN_SECRET_BYTES:
            raise ValueError(
                f"jwt_secret must be at least {_MIN_SECRET_BYTES} bytes for HS256 (RFC 7518 §3.2)"
            )
        self._key = key
        self._clock = clock

    def verify(self, authorization: str | None) -> Caller:
        """The caller named by an `Authorization: Bearer <jwt>` header value."""
        if not authorization:
            raise Unauthorized("missing bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected an Authorization: Bearer token")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat", "sub"],
                },
            )
        except jwt.PyJWTError:
            raise Unauthorized("invalid access token") from None
        exp, sub, name = payload.get("exp"), payload.get("sub"), payload.get("name")
        if payload.get("typ") != "access" or not isinstance(sub, str) or not sub:
            raise Unauthorized("invalid access token")
        # The issuer is optional for third-party tokens, but a wrong one is refused.
        if "iss" in payload and payload["iss"] != ISSUER:
            raise Unauthorized("invalid access token")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Unauthorized("invalid access token")
        if self._clock() >= exp:
            raise Unauthorized("access token expired")
        return Caller(identity=sub, name=name if isinstance(name, str) and name else None)
