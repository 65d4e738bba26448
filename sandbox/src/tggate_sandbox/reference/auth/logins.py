"""Pending logins: started by Bot Logic (U2/A1), decided by the person, checked by Bot Logic.

A login is keyed by Bot Logic's login token, which never leaves the server side: the person sees a
short code or a link carrying a separate single-use reference. A browser that presents the code or
the reference *claims* the login (`claim`): a reference works once, a code only for the browser
session that entered it first, so a forwarded link or a code seen over someone's shoulder cannot be
used by a second browser. The outcome of a decided login is handed out once
(docs/contract.md#the-authorization-module), then the login is forgotten.

A code dies after `guess_limit` wrong guesses (issue 9: 150 guesses in 2.4 s found a real code
when the limit was per browser session). A wrong guess names no code, so it counts against every
code open at that moment, whoever made it: no number of sessions or addresses buys an attacker
more than `guess_limit` tries at a code. A dead code's login is denied (the bot tells the chat
"login failed"), and the right code typed afterwards logs nobody in. The price is that a flood of
wrong guesses also kills honest codes; the per-address throttle (`browser.py`) bounds that.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, replace
from typing import Literal

from tggate.contract.auth import TelegramUserJson

__all__ = [
    "CheckStatus",
    "CodeBlocked",
    "Decision",
    "Grant",
    "LoginBook",
    "LoginConflict",
    "LoginExpired",
    "LoginTaken",
    "LoginType",
    "NoPendingLogin",
    "PendingLogin",
]

LoginType = Literal["github", "yandex", "code"]
Decision = Literal["pending", "granted", "denied"]
CheckStatus = Literal["pending", "granted", "denied", "unknown", "expired"]


class LoginConflict(Exception):
    """The login token is already used by a different or finished login."""


class NoPendingLogin(LookupError):
    """Nothing pending matches the selector."""


class LoginExpired(LookupError):
    """The login matching the selector expired before the person finished it."""


class LoginTaken(LookupError):
    """The login was already answered, or claimed by another browser (or its link was used)."""


class CodeBlocked(LoginTaken):
    """The code died after too many wrong guesses; its login was denied."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Who logged in, and optional token lifetimes for this login only (tests use them)."""

    identity: str
    name: str
    access_ttl_s: int | None = None
    refresh_ttl_s: int | None = None


@dataclass(slots=True)
class PendingLogin:
    chat_id: int
    type: LoginType
    code: str | None
    ref: str | None
    created_at: float
    expires_at: float
    seq: int
    # Who asked, as Telegram names them (the person chose these): shown on the confirmation page.
    telegram_user: TelegramUserJson | None = None
    decision: Decision = "pending"
    grant: Grant | None = None
    claimed_by: str | None = None  # the browser session that presented the code or reference
    wrong_guesses: int = 0  # wrong codes entered anywhere while this code was open
    blocked: bool = False  # denied because of them

    def open_at(self, now: float) -> bool:
        """Still waiting for the person, and not expired."""
        return self.decision == "pending" and now < self.expires_at


class LoginBook:
    """All logins in flight, by login token. Thread-safe."""

    def __init__(self, *, ttl_s: int, guess_limit: int) -> None:
        if guess_limit <= 0:
            raise ValueError("guess_limit must be positive")
        self._ttl_s = ttl_s
        self._guess_limit = guess_limit
        self._logins: dict[str, PendingLogin] = {}
        # Links of logins already handed out, until when they are remembered (issue 4: a person
        # who opens the link again is told it was used, not that it never existed).
        self._spent_refs: dict[str, float] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._swept_at = float("-inf")

    def start(
        self,
        token: str,
        *,
        chat_id: int,
        type: LoginType,
        now: float,
        telegram_user: TelegramUserJson | None = None,
    ) -> PendingLogin:
        """Start a login; repeating the same request while it is open returns the same login.

        The repeat makes a Bot Logic retry (its first answer was lost) show the same code.
        """
        with self._lock:
            self._sweep(now)
            existing = self._logins.get(token)
            if (
                existing is not None
                and existing.decision == "pending"
                and now >= existing.expires_at
            ):
                existing = None  # an expired login may be replaced
            if existing is not None:
                if existing.open_at(now) and (existing.chat_id, existing.type) == (chat_id, type):
                    return existing
                raise LoginConflict("login token already used")
            login = PendingLogin(
                chat_id=chat_id,
                type=type,
                code=self._new_code(now) if type == "code" else None,
                ref=None if type == "code" else secrets.token_urlsafe(24),
                created_at=now,
                expires_at=now + self._ttl_s,
                seq=next(self._seq),
                telegram_user=telegram_user,
            )
            self._logins[token] = login
            return login

    def take_status(self, token: str, *, now: float) -> tuple[CheckStatus, Grant | None]:
        """The login's status for Bot Logic; a decision is reported once, then forgotten."""
        with self._lock:
            self._sweep(now)
            login = self._logins.get(token)
            if login is None:
                return "unknown", None
            if login.decision == "pending":
                return ("pending" if now < login.expires_at else "expired"), None
            del self._logins[token]
            if login.ref is not None:
                self._spent_refs[login.ref] = now + self._ttl_s
            return login.decision, login.grant

    def find(
        self,
        *,
        now: float,
        chat_id: int | None = None,
        code: str | None = None,
        ref: str | None = None,
    ) -> str:
        """The token of the most recent open login matching every given selector."""
        with self._lock:
            matches = [
                (login.seq, token)
                for token, login in self._logins.items()
                if login.open_at(now)
                and (chat_id is None or login.chat_id == chat_id)
                and (code is None or login.code == code)
                and (ref is None or login.ref == ref)
            ]
            if not matches:
                raise NoPendingLogin("no pending login matches")
            return max(matches)[1]

    def decide(
        self, token: str, *, decision: Literal["granted", "denied"], grant: Grant | None, now: float
    ) -> PendingLogin:
        """Record the person's answer. A granted login waits another TTL for its check."""
        with self._lock:
            login = self._logins.get(token)
            if login is None or not login.open_at(now):
                raise NoPendingLogin("the login is no longer pending")
            if decision == "granted" and grant is None:
                raise ValueError("a granted login needs a grant")
            login.decision = decision
            login.grant = grant if decision == "granted" else None
            login.expires_at = now + self._ttl_s
            return replace(login)

    def claim(
        self,
        *,
        now: float,
        claimant: str,
        code: str | None = None,
        ref: str | None = None,
        type: LoginType | None = None,
    ) -> tuple[str, PendingLogin]:
        """Bind the login showing `code` (or linked by `ref`) to the browser session `claimant`.

        A reference is single-use: a second claim is refused even from the same browser. A code
        may be entered again by the browser that claimed it (the person went back a page), by
        nobody else. A login of another `type` is not matched (and not claimed). NoPendingLogin,
        LoginExpired, CodeBlocked or LoginTaken otherwise; a code that matches nothing is a wrong
        guess against every open code (the module docstring).
        """
        if (code is None) == (ref is None):
            raise ValueError("give exactly one of code or ref")
        with self._lock:
            matches = [
                (token, login)
                for token, login in self._logins.items()
                if (type is None or login.type == type)
                and (
                    (code is not None and login.code == code)
                    or (ref is not None and login.ref == ref)
                )
            ]
            open_ = [(token, login) for token, login in matches if login.open_at(now)]
            if not open_:
                if any(login.decision == "pending" for _, login in matches):
                    raise LoginExpired("the login expired")
                if any(login.blocked for _, login in matches):
                    raise CodeBlocked("the code died after too many wrong guesses")
                if matches or (ref is not None and now < self._spent_refs.get(ref, 0.0)):
                    raise LoginTaken("the login was already answered")
                if code is not None:
                    self._wrong_guess(now)
                raise NoPendingLogin("no pending login matches")
            # Codes are unique among open logins; references are unique outright.
            token, login = open_[0]
            if login.claimed_by is not None and (ref is not None or login.claimed_by != claimant):
                raise LoginTaken("the login was claimed by another browser")
            login.claimed_by = claimant
            return token, replace(login)

    def view(self, token: str, *, now: float) -> PendingLogin:
        """A copy of the login, to show the person; NoPendingLogin / LoginExpired / LoginTaken."""
        with self._lock:
            login = self._logins.get(token)
            if login is None:
                raise NoPendingLogin("no such login")
            if login.decision != "pending":
                raise LoginTaken("the login was already answered")
            if now >= login.expires_at:
                raise LoginExpired("the login expired")
            return replace(login)

    def expire(self, *, chat_id: int, now: float) -> int:
        """Let the chat's open logins expire now; how many did (the test API, issue 4: the real
        lifetime is 10 minutes, too long for a browser test of an expired login)."""
        with self._lock:
            open_ = [
                login
                for login in self._logins.values()
                if login.chat_id == chat_id and login.open_at(now)
            ]
            for login in open_:
                login.expires_at = now
            return len(open_)

    def open_logins(self, *, now: float) -> list[PendingLogin]:
        with self._lock:
            return sorted(
                (login for login in self._logins.values() if login.open_at(now)),
                key=lambda login: login.seq,
            )

    def _wrong_guess(self, now: float) -> None:
        """Count a wrong code against every open code; deny those that reach the limit."""
        for login in self._logins.values():
            if login.code is None or not login.open_at(now):
                continue
            login.wrong_guesses += 1
            if login.wrong_guesses >= self._guess_limit:
                login.blocked = True
                login.decision = "denied"
                login.grant = None
                login.expires_at = now + self._ttl_s  # the denial waits a TTL for its check

    def _new_code(self, now: float) -> str:
        taken = {login.code for login in self._logins.values() if login.open_at(now)}
        while True:
            number = secrets.randbelow(1_000_000)
            code = f"{number // 1000:03d}-{number % 1000:03d}"
            if code not in taken:
                return code

    def _sweep(self, now: float) -> None:
        """Forget logins a TTL after they expired; until then a check reports "expired".

        At most once a second: a sweep reads every login, and a check per login per timer tick
        would otherwise cost O(logins²) per tick (bench/README.md, cycles)."""
        if now - self._swept_at < 1.0:
            return
        self._swept_at = now
        stale = [t for t, login in self._logins.items() if now >= login.expires_at + self._ttl_s]
        for token in stale:
            del self._logins[token]
        for ref in [ref for ref, until in self._spent_refs.items() if now >= until]:
            del self._spent_refs[ref]
