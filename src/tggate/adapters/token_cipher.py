"""Tokens encrypted at rest in Redis when keys are configured (SPEC §6).

Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`; several keys allow rotation: the
first encrypts, every key decrypts. Values written before encryption was switched on have no
prefix and are read as they are, so turning it on needs no migration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tggate.core.session import Anonymous, Authorized, Session

__all__ = ["TOKEN_FIELDS", "TokenCipher", "TokenCipherError"]

TOKEN_FIELDS = ("login_token", "access_token", "refresh_token")
_PREFIX = "f1:"


class TokenCipherError(ValueError):
    """A key is malformed, or a stored token was sealed with a key we do not have."""


class TokenCipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise TokenCipherError("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except ValueError:
            raise TokenCipherError(
                "a key is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, value: str) -> str:
        return _PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(_PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise TokenCipherError(
                "a stored token does not open with the configured keys"
            ) from None

    def seal_bytes(self, data: bytes) -> str:
        """`data` sealed as url-safe text, without a prefix (the caller marks its format)."""
        return self._fernet.encrypt(data).decode()

    def open_bytes(self, value: str) -> bytes:
        try:
            return self._fernet.decrypt(value.encode())
        except InvalidToken:
            raise TokenCipherError(
                "a stored value does not open with the configured keys"
            ) from None

    def seal_session(self, session: Session) -> Session:
        if isinstance(session, Anonymous):
            return replace(session, login_token=self.seal(session.login_token))
        assert isinstance(session, Authorized)
        return replace(
            session,
            access_token=self.seal(session.access_token),
            refresh_token=self.seal(session.refresh_token),
        )

    def open_fields(self, fields: Mapping[str, str]) -> dict[str, str]:
        return {k: self.open(v) if k in TOKEN_FIELDS and v else v for k, v in fields.items()}
