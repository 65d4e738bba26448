"""Who is calling: the Bearer access token, verified like any resource server would.

HS256 only (so "none" and algorithm confusion are refused), the signature, the required claims,
`typ == "access"`, an issuer that is ours if there is one, and no audience (the module names
none, so a token meant for some audience is not for it). Expiry is checked against the injected
clock instead of the wall clock, so tests can move time. Every failure is one exception with a
short reason for the 401 body; the token itself is never logged or echoed.

The compact JWS is taken apart here rather than by `jwt.decode` (issue 11, bench/README.md
"cycles"): a notification cycle asks once per chat, 100k times a tick, and PyJWT spent ~60 µs
a token on its generic path (options merged, the key prepared, each segment checked character
by character in Python, then JSON). The checks are the ones `jwt.decode` made with the options
this module gave it, the HMAC is PyJWT's own over a key prepared once; what is refused on top:
a header naming critical extensions (RFC 7515 §4.1.11: none is understood here, "b64" included)
and numbers JSON cannot carry (NaN, Infinity, beyond 64 bits) anywhere in the token.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Any

import orjson
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_decode, base64url_encode

from tggate.core.ports import Clock

__all__ = ["ISSUER", "AccessVerifier", "Caller", "Unauthorized"]

ISSUER = "tggate-reference-auth"
_ALGORITHM = "HS256"
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2; PyJWT warns below it
_REQUIRED = ("exp", "iat", "sub")
# Three base64url segments (RFC 7515 §7.1, the padding some issuers add allowed, as PyJWT does).
_COMPACT = re.compile(r"([A-Za-z0-9_-]+={0,2})\.([A-Za-z0-9_-]+={0,2})\.([A-Za-z0-9_-]+={0,2})")
_INVALID = "invalid access token"


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
        self._hmac = HMACAlgorithm(HMACAlgorithm.SHA256)
        self._key = self._hmac.prepare_key(key)  # once, not per token
        self._clock = clock

    def verify(self, authorization: str | None) -> Caller:
        """The caller named by an `Authorization: Bearer <jwt>` header value."""
        if not authorization:
            raise Unauthorized("missing bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected an Authorization: Bearer token")
        payload = self._claims(token)
        exp, sub, name = payload.get("exp"), payload.get("sub"), payload.get("name")
        if any(payload.get(claim) is None for claim in _REQUIRED):
            raise Unauthorized(_INVALID)
        if payload.get("typ") != "access" or not isinstance(sub, str) or not sub:
            raise Unauthorized(_INVALID)
        # The issuer is optional for third-party tokens, but a wrong one is refused.
        if "iss" in payload and payload["iss"] != ISSUER:
            raise Unauthorized(_INVALID)
        # No audience is ours: a token that names one is meant for somebody else.
        if payload.get("aud"):
            raise Unauthorized(_INVALID)
        if "jti" in payload and not isinstance(payload["jti"], str):
            raise Unauthorized(_INVALID)
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Unauthorized(_INVALID)
        if self._clock() >= exp:
            raise Unauthorized("access token expired")
        return Caller(identity=sub, name=name if isinstance(name, str) and name else None)

    def _claims(self, token: str) -> dict[str, Any]:
        """The payload of a token signed with our key by HS256; Unauthorized otherwise."""
        parts = _COMPACT.fullmatch(token)
        if parts is None:
            raise Unauthorized(_INVALID)
        header_segment, payload_segment, signature_segment = (
            part.rstrip("=").encode("ascii") for part in parts.groups()
        )
        try:
            header = orjson.loads(_segment(header_segment))
            if (
                not isinstance(header, dict)
                or header.get("alg") != _ALGORITHM
                or "crit" in header
                or "b64" in header
                or not isinstance(header.get("kid", ""), str)
            ):
                raise Unauthorized(_INVALID)
            signed = self._hmac.verify(
                header_segment + b"." + payload_segment, self._key, _segment(signature_segment)
            )
            if not signed:
                raise Unauthorized(_INVALID)
            payload = orjson.loads(_segment(payload_segment))
        except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
            raise Unauthorized(_INVALID) from None
        if not isinstance(payload, dict):
            raise Unauthorized(_INVALID)
        return payload


def _segment(segment: bytes) -> bytes:
    """A base64url segment's bytes; ValueError for one that is not canonical (RFC 4648 §3.5:
    leftover bits set), as PyJWT refuses it."""
    decoded = base64url_decode(segment)
    if base64url_encode(decoded) != segment:
        raise ValueError("not a canonical base64url segment")
    return decoded
