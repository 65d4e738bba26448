"""The subject of an access token: whose token it is (docs/contract.md#the-notification-feed).

The bulk notification mode routes each notification of the Main module's feed to the chats of
its person by the `sub` claim of the access tokens the Authorization module issued them. tggate
got those tokens from the module itself, so the claim is read, not verified: a forged token
never reaches this code.
"""

from __future__ import annotations

import base64
import binascii
import json

__all__ = ["token_subject"]


def token_subject(access_token: str) -> str | None:
    """The `sub` claim of a JWT (a non-empty string), or None for a token that is not a JWT or
    carries no subject (an opaque token: its chat cannot be reached by the feed)."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    subject = decoded.get("sub") if isinstance(decoded, dict) else None
    return subject if isinstance(subject, str) and subject else None
