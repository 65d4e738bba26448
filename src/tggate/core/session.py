"""Session states of one chat (docs/scenarios.md#sessions): Unknown is the absence of a session."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Anonymous",
    "Authorized",
    "LoginPrompt",
    "LostSession",
    "Session",
    "Status",
    "StoredSession",
]


class Status(StrEnum):
    ANONYMOUS = "anonymous"
    AUTHORIZED = "authorized"


@dataclass(frozen=True, slots=True)
class LoginPrompt:
    """What the Authorization module asked us to show for a pending login (A6 repeats it)."""

    text: str
    url: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Anonymous:
    login_token: str
    login_type: str
    prompt: LoginPrompt
    language: str = "ru"  # the person's, so timer messages (L, N) speak it too

    status = Status.ANONYMOUS


@dataclass(frozen=True, slots=True)
class Authorized:
    access_token: str
    refresh_token: str
    language: str = "ru"

    status = Status.AUTHORIZED


Session = Anonymous | Authorized


@dataclass(frozen=True, slots=True)
class LostSession:
    """A stored session whose tokens no configured key opens: the keys were replaced (a restart
    with a new key, a rotation done wrong) or dropped. Its tokens are gone for good, so the chat
    is told to log in again and the key is deleted (docs/state-machine.md#lost-sessions). Never
    written: only read."""

    was: Status
    language: str = "ru"


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session as read from the store, with the revision a compare-and-set must name.

    A revision is a random string written with every change, so a stale writer can never
    match a newer session that happens to hold equal values (no ABA).
    """

    session: Session | LostSession
    revision: str
