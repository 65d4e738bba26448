"""What the module remembers, server side, about people's browsers on the login pages.

The signed session cookie carries only a random session id, the CSRF token and who signed in;
everything else stays here, keyed by something random: OAuth attempts by their `state` (with the
PKCE verifier, which never reaches the browser), confirmations waiting for Yes/No by a ticket id,
and wrong code guesses by client address. Each entry expires; a sweep on every write forgets old
ones.

Wrong guesses are counted per address, not per session (issue 9: sessions are free, so a limit
per session limited nothing), and a right code does not wipe them (the attacker's own code used
to reset the count). Behind a reverse proxy the address is the proxy's unless uvicorn is told to
trust its X-Forwarded-For (`--forwarded-allow-ips`).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

__all__ = ["BrowserState", "Confirmation", "OAuthAttempt"]


@dataclass(frozen=True, slots=True)
class OAuthAttempt:
    """A trip to the provider. Without a login token it only signs the browser in (code login)."""

    provider: str
    session_id: str
    code_verifier: str
    login_token: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A login that a signed-in browser may answer Yes or No, on behalf of `identity`."""

    login_token: str
    session_id: str
    identity: str
    name: str
    expires_at: float


@dataclass(slots=True)
class _Guesses:
    wrong: int = 0
    last_at: float = 0.0
    locked_until: float = 0.0


class BrowserState:
    """Thread-safe, in memory."""

    def __init__(
        self, *, client_guess_limit: int, client_lock_s: float, attempt_ttl_s: float
    ) -> None:
        if client_guess_limit <= 0 or client_lock_s < 0 or attempt_ttl_s <= 0:
            raise ValueError(
                "client_guess_limit and attempt_ttl_s must be positive, client_lock_s not negative"
            )
        self._guess_limit = client_guess_limit
        self._lock_s = client_lock_s
        self._attempt_ttl_s = attempt_ttl_s
        self._attempts: dict[str, OAuthAttempt] = {}
        self._confirmations: dict[str, Confirmation] = {}
        self._guesses: dict[str, _Guesses] = {}
        self._lock = threading.Lock()

    # ---- OAuth attempts ----

    def begin_attempt(
        self,
        *,
        provider: str,
        session_id: str,
        code_verifier: str,
        login_token: str | None,
        login_expires_at: float | None,
        now: float,
    ) -> str:
        """Remember the attempt; its random `state` goes to the provider and comes back.

        An attempt for a login outlives the login by the attempt TTL, so that a person who comes
        back late is told the login expired rather than that the state is unknown.
        """
        state = secrets.token_urlsafe(32)
        with self._lock:
            self._sweep(now)
            self._attempts[state] = OAuthAttempt(
                provider=provider,
                session_id=session_id,
                code_verifier=code_verifier,
                login_token=login_token,
                expires_at=(now if login_expires_at is None else login_expires_at)
                + self._attempt_ttl_s,
            )
        return state

    def finish_attempt(
        self, state: str, *, provider: str, session_id: str, now: float
    ) -> OAuthAttempt | None:
        """The attempt `state` names, if this browser started it with this provider; single use.

        A state that does not match leaves the real attempt alone, so a forged callback cannot
        cancel the person's own login.
        """
        with self._lock:
            attempt = self._attempts.get(state)
            if (
                attempt is None
                or now >= attempt.expires_at
                or attempt.provider != provider
                or not secrets.compare_digest(attempt.session_id, session_id)
            ):
                return None
            del self._attempts[state]
            return attempt

    # ---- confirmations ----

    def offer_confirmation(self, confirmation: Confirmation, *, now: float) -> str:
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._sweep(now)
            self._confirmations[ticket] = confirmation
        return ticket

    def confirmation(self, ticket: str, *, session_id: str) -> Confirmation | None:
        """The confirmation, if this browser session was offered it. Kept a while after its
        login expired, so that the page can say "expired" rather than "nothing to confirm"."""
        with self._lock:
            found = self._confirmations.get(ticket)
        if found is None or not secrets.compare_digest(found.session_id, session_id):
            return None
        return found

    def close_confirmation(self, ticket: str) -> None:
        with self._lock:
            self._confirmations.pop(ticket, None)

    # ---- code guesses ----

    def locked_for(self, client: str, *, now: float) -> float:
        """Seconds until this client may guess a code again (0: it may now)."""
        with self._lock:
            guesses = self._guesses.get(client)
            return 0.0 if guesses is None else max(0.0, guesses.locked_until - now)

    def wrong_guess(self, client: str, *, now: float) -> float:
        """Count a wrong code; the limit-th since the last lock locks the client. The lock's
        seconds. Nothing but time forgets a wrong guess."""
        with self._lock:
            self._sweep(now)
            guesses = self._guesses.setdefault(client, _Guesses())
            guesses.wrong += 1
            guesses.last_at = now
            if guesses.wrong >= self._guess_limit:
                guesses.wrong = 0
                guesses.locked_until = now + self._lock_s
            return max(0.0, guesses.locked_until - now)

    def _sweep(self, now: float) -> None:
        for state in [s for s, a in self._attempts.items() if now >= a.expires_at]:
            del self._attempts[state]
        grace = self._attempt_ttl_s
        for ticket in [t for t, c in self._confirmations.items() if now >= c.expires_at + grace]:
            del self._confirmations[ticket]
        # A client's wrong guesses are forgotten once its lock is over and it has been quiet.
        stale = [
            client
            for client, g in self._guesses.items()
            if now >= g.locked_until and now >= g.last_at + self._attempt_ttl_s
        ]
        for client in stale:
            del self._guesses[client]
