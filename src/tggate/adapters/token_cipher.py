"""Secrets sealed at rest in Redis when keys are configured (docs/contract.md#secrets).

Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`; several keys allow rotation: the
first seals, every key opens. What is sealed: a session's tokens and its login prompt (the
link or code a person is shown, issue 9, finding 7), and whatever else a store passes to
`seal_text` (the answers it keeps for repeated updates). Values written before sealing was
switched on have no prefix and are read as they are, so turning it on needs no migration.

A sealed value that no configured key opens (the keys were replaced, or dropped) raises
`TokenCipherError`; the store reads such a session as lost (`tggate.core.session.LostSession`).

`seal_bytes` (a whole session, read by every timer cycle for every chat) uses AES-256-GCM with
a key derived from each Fernet key (HKDF-SHA256): one call into OpenSSL, 20 times cheaper than
Fernet's (issue 11: a cycle's CPU per chat), with the same keys and the same rotation.
`seal_raw` is the same seal as bytes, without base64's third more (a kept answer, issue 11:
≤ 128 bytes per command).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tggate.core.session import Anonymous, Authorized, LoginPrompt, Session

__all__ = [
    "SEALED_FIELDS",
    "TokenCipher",
    "TokenCipherError",
    "is_sealed",
    "open_sealed",
    "open_session_fields",
]

# The session hash's fields that are sealed (tggate.adapters.redis_store writes them).
SEALED_FIELDS = (
    "login_token",
    "access_token",
    "refresh_token",
    "prompt_text",
    "prompt_url",
    "prompt_code",
)
_PREFIX = "f1:"
_NONCE = 12  # bytes: random per seal (a key should seal fewer than 2**32 values: rotate)
_BLOB_KEY_INFO = b"tggate session blob v1"


class TokenCipherError(ValueError):
    """A key is malformed, or a stored value was sealed with a key we do not have."""


def is_sealed(value: str) -> bool:
    return value.startswith(_PREFIX)


class TokenCipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise TokenCipherError("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
            raw = [base64.urlsafe_b64decode(key.strip().encode()) for key in keys]
        except ValueError:
            raise TokenCipherError(
                "a key is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
        self._blob_keys = [AESGCM(_derive(secret)) for secret in raw]

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def seal_text(self, value: str) -> str:
        """`value` sealed with the first key, marked so `open_text` recognises it."""
        return _PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open_text(self, value: str) -> str:
        """A value `seal_text` made, opened; a value without the mark is returned as it is."""
        if not is_sealed(value):
            return value
        try:
            return self._fernet.decrypt(value[len(_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise TokenCipherError(
                "a stored value does not open with the configured keys"
            ) from None

    def seal_bytes(self, data: bytes) -> str:
        """`data` sealed (AES-256-GCM) as url-safe text, without a prefix (the caller marks its
        format)."""
        return base64.urlsafe_b64encode(self.seal_raw(data)).decode()

    def open_bytes(self, value: str) -> bytes:
        try:
            sealed = base64.urlsafe_b64decode(value)
        except ValueError:
            raise TokenCipherError("a stored value is not sealed data") from None
        return self.open_raw(sealed)

    def seal_raw(self, data: bytes, *, bound: bytes = b"") -> bytes:
        """`data` sealed with the first key: a random 96-bit nonce, the AES-256-GCM ciphertext
        and its 128-bit tag, as bytes (for a store that keeps binary values). `bound` is
        authenticated with it but not part of it: the caller stores it beside (a header)."""
        nonce = os.urandom(_NONCE)
        return nonce + self._blob_keys[0].encrypt(nonce, data, bound)

    def open_raw(self, sealed: bytes, *, bound: bytes = b"") -> bytes:
        """What `seal_raw` sealed, with any configured key; `TokenCipherError` when none opens
        it, or it, or `bound`, was changed."""
        nonce, box = sealed[:_NONCE], sealed[_NONCE:]
        for key in self._blob_keys:
            try:
                return key.decrypt(nonce, box, bound)
            except InvalidTag:
                continue
        raise TokenCipherError("a stored value does not open with the configured keys")

    def seal_session(self, session: Session) -> Session:
        if isinstance(session, Anonymous):
            prompt = session.prompt
            return replace(
                session,
                login_token=self.seal_text(session.login_token),
                prompt=LoginPrompt(
                    text=self.seal_text(prompt.text),
                    url=None if prompt.url is None else self.seal_text(prompt.url),
                    code=None if prompt.code is None else self.seal_text(prompt.code),
                ),
            )
        assert isinstance(session, Authorized)
        return replace(
            session,
            access_token=self.seal_text(session.access_token),
            refresh_token=self.seal_text(session.refresh_token),
        )


def open_sealed(cipher: TokenCipher | None, value: str) -> str:
    """`value` opened if sealed; `TokenCipherError` when it does not open, which without a cipher
    (TGGATE_SESSION_KEYS was dropped) is whenever it is sealed."""
    if cipher is not None:
        return cipher.open_text(value)
    if is_sealed(value):
        raise TokenCipherError("a stored value is sealed, and no keys are configured")
    return value


def open_session_fields(cipher: TokenCipher | None, fields: Mapping[str, str]) -> dict[str, str]:
    """A session hash's fields with the sealed ones opened (`open_sealed`)."""
    return {k: open_sealed(cipher, v) if k in SEALED_FIELDS and v else v for k, v in fields.items()}


def _derive(secret: bytes) -> bytes:
    """An AES-256 key of its own for sealed blobs, from a Fernet key's 32 bytes."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_BLOB_KEY_INFO).derive(secret)
