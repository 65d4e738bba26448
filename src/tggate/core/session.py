"""Session states of one chat (docs/scenarios.md#sessions): Unknown is the absence of a session."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Anonymous", "Authorized", "LoginPrompt", "Session", "Status", "StoredSession"]


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
class StoredSession:
    """A session as read from the store, with the revision a compare-and-set must name.

    A revision is a random string written with every change, so a stale writer can never
    match a newer session that happens to hold equal values (no ABA).
    """

    session: Session
    revision: str
