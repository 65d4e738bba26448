"""The checks of the Authorization module (docs/contract.md#the-authorization-module), run
through the `AuthApi` Bot Logic uses, so a pass means Bot Logic reads the module correctly.

Each check prints one line; the steps it stands for are those of docs/scenarios.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tggate.adapters.auth_api import AuthApi, Call
from tggate.adapters.auth_http import read_values
from tggate.conformance.logins import Decider, GrantedTokens, StartedLogin
from tggate.conformance.plan import Persona
from tggate.conformance.probe import Probe
from tggate.conformance.report import Exchange, Report, Verdict
from tggate.contract.auth import LoginAnswer, TokenPairAnswer

__all__ = ["AuthChecks", "forged"]

PASS, FAIL, WARN, SKIP = Verdict.PASS, Verdict.FAIL, Verdict.WARN, Verdict.SKIP

# How often the old refresh token is tried while its grace window may still be open.
_GRACE_POLL_S = 0.5


def forged(token: str) -> str:
    """The token with a signature of its own making: the same claims, a signature that does
    not verify (a changed last character alone may only flip unused bits)."""
    head, _, signature = token.rpartition(".")
    fake = hashlib.sha256(b"tggate check-modules forged " + signature.encode()).digest()
    return head + "." + base64.urlsafe_b64encode(fake).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Refused:
    """A call that did not give what the check needed: why, and the exchange."""

    detail: str
    exchange: Exchange


def said(call: Call, exchange: Exchange, outcome: str | None) -> str:
    """How a line names what came back: "`pending`", or what matched nothing."""
    if exchange.status is None:
        return f"no answer ({exchange.error})"
    if outcome is None:
        return f"HTTP {exchange.status}, which is none of {call.name}'s outcomes"
    return f"`{outcome}` (HTTP {exchange.status})"


class AuthChecks:
    """The Authorization module's checks; logins are decided by the `Decider` given."""

    def __init__(
        self,
        *,
        probe: Probe,
        report: Report,
        api: AuthApi,
        base_url: str,
        decider: Decider,
        chat_ids: Iterator[int],
        login_with: str,
        max_wait_s: float,
    ) -> None:
        self._probe = probe
        self._report = report
        self._api = api
        self._base = base_url.rstrip("/")
        self._decider = decider
        self._chat_ids = chat_ids
        self._login_with = login_with  # the login type of the logins the check completes
        self._max_wait_s = max_wait_s
        self._handed_out_once_checked = False

    # ---- calls ----

    async def _call(self, call: Call, values: dict[str, Any]) -> tuple[str | None, Exchange]:
        exchange = await self._probe.send(
            call.method, self._base + call.path, content=call.body(values)
        )
        if exchange.status is None:
            return None, exchange
        return call.outcome(exchange.status, exchange.json()), exchange

    def _line(self, verdict: Verdict, call: Call, what: str, detail: str, *seen: Exchange) -> None:
        self._report.line(verdict, f"auth {call.name} {what}".rstrip(), detail, *seen)

    async def _open(self, login_type: str) -> StartedLogin | Refused:
        """`/login` as Bot Logic calls it (U2): the login, or why it did not start."""
        call = self._api.login
        login_token = secrets.token_urlsafe(32)  # as Bot Logic makes them
        self._report.redactor.add(login_token)
        chat_id = next(self._chat_ids)
        values = {
            "login_token": login_token,
            "type": self._api.login_types[login_type],
            "chat_id": chat_id,
            "language": "en",
        }
        started_at = time.monotonic()
        outcome, exchange = await self._call(call, values)
        if outcome != "started":
            return Refused(f"expected `started`, got {said(call, exchange, outcome)}", exchange)
        answer, misfit = read_values(call, exchange.json(), LoginAnswer)
        if answer is None:
            return Refused(f"the prompt does not fit: {misfit}", exchange)
        if any(login_token in (v or "") for v in (answer.text, answer.url, answer.code)):
            return Refused(
                "the prompt shows the login token (it must stay between tggate and the module)",
                exchange,
            )
        expires_in = call.read(exchange.json()).get("expires_in")
        return StartedLogin(
            chat_id=chat_id,
            login_token=login_token,
            login_type=login_type,
            text=answer.text,
            url=answer.url,
            code=answer.code,
            expires_in=expires_in if isinstance(expires_in, int) and expires_in > 0 else None,
            started_at=started_at,
            exchange=exchange,
        )

    async def start(self, login_type: str) -> StartedLogin | None:
        """`/login` of one type: a prompt with a link or a code, and its expiry."""
        call = self._api.login
        what = f"({login_type})"
        login = await self._open(login_type)
        if isinstance(login, Refused):
            self._line(FAIL, call, what, login.detail, login.exchange)
            return None
        shows = " and ".join(
            name for name, value in (("a link", login.url), ("a code", login.code)) if value
        )
        if login_type != "code" and not login.url:
            self._line(
                WARN,
                call,
                what,
                "no url: the person gets the link only inside the text",
                login.exchange,
            )
        elif not shows:
            self._line(
                WARN,
                call,
                what,
                "neither url nor code: the person reads only the text",
                login.exchange,
            )
        elif login.expires_in is None:
            self._line(
                WARN,
                call,
                what,
                f"a prompt with {shows}, but no positive expires_in: tggate keeps the chat "
                "Anonymous 600 s",
                login.exchange,
            )
        else:
            self._line(
                PASS, call, what, f"a prompt with {shows}; the login lives {login.expires_in} s"
            )
        return login

    async def check(self, login_token: str) -> tuple[str | None, Exchange]:
        return await self._call(self._api.login_check, {"login_token": login_token})

    # ---- login checks ----

    async def unknown_login(self) -> None:
        """A2/A3: a login token the module never saw is `unknown` (or `expired`)."""
        call = self._api.login_check
        token = secrets.token_urlsafe(32)
        self._report.redactor.add(token)
        outcome, exchange = await self.check(token)
        if outcome in ("unknown", "expired"):
            self._line(
                PASS, call, "(a token never started)", f"answered {said(call, exchange, outcome)}"
            )
        else:
            self._line(
                FAIL,
                call,
                "(a token never started)",
                f"expected `unknown`, got {said(call, exchange, outcome)}",
                exchange,
            )

    async def pending_login(self, login: StartedLogin) -> None:
        """A6: right after /login, nobody has decided yet."""
        call = self._api.login_check
        outcome, exchange = await self.check(login.login_token)
        if outcome == "pending":
            self._line(PASS, call, "(just started)", f"answered {said(call, exchange, outcome)}")
        else:
            self._line(
                FAIL,
                call,
                "(just started)",
                f"expected `pending`, got {said(call, exchange, outcome)}",
                exchange,
            )

    async def _decided(self, login: StartedLogin) -> tuple[str | None, Exchange, float]:
        """Ask until the login is no longer pending, for as long as the decider's patience."""
        deadline = time.monotonic() + self._decider.patience_s
        while True:
            outcome, exchange = await self.check(login.login_token)
            if outcome != "pending" or time.monotonic() >= deadline:
                return outcome, exchange, time.monotonic() - login.started_at
            await asyncio.sleep(self._decider.poll_s)

    async def grant(
        self, person: Persona, *, access_ttl_s: int | None = None, why: str = ""
    ) -> GrantedTokens | None:
        """A5: a login the person confirmed is `granted` with two JWTs; handed out once."""
        call = self._api.login_check
        what = f"granted ({person.identity}{why})"
        login = await self._open(self._login_with)
        if isinstance(login, Refused):
            self._line(FAIL, call, what, f"/login: {login.detail}", login.exchange)
            return None
        refused = await self._decider.grant(login, person, access_ttl_s=access_ttl_s)
        if refused is not None:
            self._line(FAIL, call, what, "the test hook refused to grant the login", refused)
            return None
        outcome, exchange, _ = await self._decided(login)
        if outcome == "pending":
            self._line(
                FAIL, call, what, f"still `pending` after {self._decider.patience_s:g} s", exchange
            )
            return None
        if outcome != "granted":
            self._line(
                FAIL,
                call,
                what,
                f"expected `granted`, got {said(call, exchange, outcome)}",
                exchange,
            )
            return None
        pair, misfit = read_values(call, exchange.json(), TokenPairAnswer)
        if pair is None:
            self._line(FAIL, call, what, f"a grant without two JWTs: {misfit}", exchange)
            return None
        self._report.redactor.add(pair.access_token, pair.refresh_token)
        if pair.access_token == pair.refresh_token:
            self._line(FAIL, call, what, "the access and refresh tokens are the same", exchange)
            return None
        self._line(PASS, call, what, "two JWTs, an access and a refresh token")
        if self._handed_out_once_checked:
            return GrantedTokens(person.identity, pair.access_token, pair.refresh_token)
        self._handed_out_once_checked = True
        again, repeat = await self.check(login.login_token)
        once = "(the same token again)"
        if again == "granted":
            self._line(
                FAIL, call, once, "the grant was handed out twice (it is handed out once)", repeat
            )
        elif again in ("unknown", "expired"):
            self._line(PASS, call, once, f"answered {said(call, repeat, again)}: handed out once")
        else:
            self._line(
                FAIL, call, once, f"expected `unknown`, got {said(call, repeat, again)}", repeat
            )
        return GrantedTokens(person.identity, pair.access_token, pair.refresh_token)

    async def deny(self) -> None:
        """A4: a login the person refused is `denied`."""
        call = self._api.login_check
        login = await self._open(self._login_with)
        if isinstance(login, Refused):
            self._line(FAIL, call, "denied", f"/login: {login.detail}", login.exchange)
            return
        refused = await self._decider.deny(login)
        if refused is not None:
            self._line(FAIL, call, "denied", "the test hook refused to deny the login", refused)
            return
        outcome, exchange, _ = await self._decided(login)
        if outcome == "pending":
            patience = self._decider.patience_s
            self._line(FAIL, call, "denied", f"still `pending` after {patience:g} s", exchange)
        elif outcome == "denied":
            self._line(PASS, call, "denied", f"answered {said(call, exchange, outcome)}")
        else:
            self._line(
                FAIL,
                call,
                "denied",
                f"expected `denied`, got {said(call, exchange, outcome)}",
                exchange,
            )

    async def expiry(self, login: StartedLogin) -> None:
        """A3: a login nobody finished in time is `expired` (or `unknown`)."""
        call = self._api.login_check
        what = "expired"
        if self._decider.expires_at_once:
            refused = await self._decider.expire(login)
            if refused is not None:
                self._line(FAIL, call, what, "the test hook refused to expire the login", refused)
                return
            after = "after the test hook expired it"
        else:
            if login.expires_in is None:
                self._line(
                    SKIP, call, what, "the module gave no expires_in to wait out; use --hooks"
                )
                return
            left = login.started_at + login.expires_in + 1 - time.monotonic()
            if left > self._max_wait_s:
                self._line(
                    SKIP,
                    call,
                    what,
                    f"the login lives {login.expires_in} s, {left:.0f} s "
                    f"more than --max-wait {self._max_wait_s:g} s allows; use --hooks, or a "
                    "module with shorter logins",
                )
                return
            if left > 0:
                self._report.note(f"waiting {left:.1f} s for a login to expire")
                await asyncio.sleep(left)
            after = f"{login.expires_in} s (its expires_in) after it started"
        outcome, exchange = await self.check(login.login_token)
        if outcome in ("expired", "unknown"):
            self._line(PASS, call, what, f"answered {said(call, exchange, outcome)} {after}")
        else:
            self._line(
                FAIL,
                call,
                what,
                f"expected `expired`, got {said(call, exchange, outcome)} {after}",
                exchange,
            )

    # ---- refresh and logout ----

    async def _refresh(
        self, refresh_token: str
    ) -> tuple[str | None, Exchange, TokenPairAnswer | None, str | None]:
        call = self._api.refresh
        outcome, exchange = await self._call(call, {"refresh_token": refresh_token})
        if outcome != "refreshed":
            return outcome, exchange, None, None
        pair, misfit = read_values(call, exchange.json(), TokenPairAnswer)
        if pair is not None:
            self._report.redactor.add(pair.access_token, pair.refresh_token)
        return outcome, exchange, pair, misfit

    async def rotation(
        self, old: GrantedTokens, accepted: Callable[[GrantedTokens], Awaitable[None]]
    ) -> None:
        """Z7/Z9: /refresh gives a new pair, and the old refresh token stops working (after a
        grace window in which it gives the same new pair again)."""
        call = self._api.refresh
        outcome, exchange, pair, misfit = await self._refresh(old.refresh_token)
        if outcome != "refreshed":
            self._line(
                FAIL,
                call,
                "rotates",
                f"expected `refreshed`, got {said(call, exchange, outcome)}",
                exchange,
            )
            return
        if pair is None:
            self._line(FAIL, call, "rotates", f"an answer without two JWTs: {misfit}", exchange)
            return
        if pair.refresh_token == old.refresh_token:
            self._line(
                FAIL,
                call,
                "rotates",
                "the answer carries the old refresh token: it does not rotate",
                exchange,
            )
            return
        self._line(PASS, call, "rotates", "a new access and refresh token")
        await accepted(GrantedTokens(old.identity, pair.access_token, pair.refresh_token))
        # Within the grace window the old token gives the same pair (RFC 9700 §4.14.2).
        again, repeat, second, _ = await self._refresh(old.refresh_token)
        grace = "(the old token at once)"
        if again == "refused":
            self._line(
                WARN,
                call,
                grace,
                "refused at once: no grace window, so an answer lost on the "
                "way logs the person out (docs/contract.md#the-authorization-module)",
                repeat,
            )
            self._line(PASS, call, "(the old token later)", "refused")
            return
        if again != "refreshed" or second is None:
            self._line(
                FAIL,
                call,
                grace,
                f"expected the same pair or `refused`, got {said(call, repeat, again)}",
                repeat,
            )
            return
        if (second.access_token, second.refresh_token) != (pair.access_token, pair.refresh_token):
            self._line(
                FAIL,
                call,
                grace,
                "the old refresh token still works: it gave another new pair "
                "(a grace window may only repeat the same pair)",
                repeat,
            )
            return
        self._line(PASS, call, grace, "the same new pair again (a grace window)")
        started = time.monotonic()
        while True:
            later, last, _, _ = await self._refresh(old.refresh_token)
            waited = time.monotonic() - started
            if later == "refused":
                self._line(
                    PASS,
                    call,
                    "(the old token later)",
                    f"refused {waited:.1f} s after the rotation",
                )
                return
            if later != "refreshed" or waited >= self._max_wait_s:
                break
            await asyncio.sleep(_GRACE_POLL_S)
        self._line(
            FAIL,
            call,
            "(the old token later)",
            f"still not refused {waited:.0f} s after the "
            f"rotation (--max-wait): got {said(call, last, later)}",
            last,
        )

    async def unknown_refresh(self, sample: GrantedTokens) -> None:
        """Z8: a refresh token the module never issued is refused."""
        call = self._api.refresh
        fake = forged(sample.refresh_token)
        self._report.redactor.add(fake)
        outcome, exchange, _, _ = await self._refresh(fake)
        if outcome == "refused":
            self._line(PASS, call, "(a forged token)", f"answered {said(call, exchange, outcome)}")
        else:
            self._line(
                FAIL,
                call,
                "(a forged token)",
                f"expected `refused`, got {said(call, exchange, outcome)}",
                exchange,
            )

    async def logout(self, kept: GrantedTokens, given: GrantedTokens) -> None:
        """Z3: /logout with one session's refresh token ends every session of the person."""
        call = self._api.logout
        outcome, exchange = await self._call(call, {"refresh_token": given.refresh_token})
        if outcome != "done":
            self._line(
                FAIL, call, "", f"expected `done`, got {said(call, exchange, outcome)}", exchange
            )
            return
        self._line(PASS, call, "", f"answered {said(call, exchange, outcome)}")
        refresh = self._api.refresh
        for token, what in (
            (given.refresh_token, "(the logged-out session)"),
            (kept.refresh_token, f"(another session of {kept.identity})"),
        ):
            after, seen, _, _ = await self._refresh(token)
            if after == "refused":
                self._line(PASS, refresh, what, "refused after /logout")
            else:
                self._line(
                    FAIL,
                    refresh,
                    what,
                    f"still works after /logout (expected `refused`, got "
                    f"{said(refresh, seen, after)}): logout ends every session",
                    seen,
                )
        again, repeat = await self._call(call, {"refresh_token": given.refresh_token})
        if again == "done":
            self._line(PASS, call, "(again)", f"answered {said(call, repeat, again)}: idempotent")
        else:
            self._line(
                FAIL,
                call,
                "(again)",
                f"expected `done` (200, or a 4xx), got {said(call, repeat, again)}",
                repeat,
            )
