"""Who finishes the logins the check starts: the module's test hooks, or a person.

Completing a login needs someone to press Yes or No on the module's page. A module that offers
test hooks (docs/integrate.md#hooks; the reference module's `/test` API) decides a login at
once; without them the check prints what the person running it should do, and waits for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from tggate.conformance.plan import Persona
from tggate.conformance.probe import Probe
from tggate.conformance.report import Exchange, Report

__all__ = [
    "HOOK_SECRET_HEADER",
    "Decider",
    "GrantedTokens",
    "Hooks",
    "PersonAtThePage",
    "StartedLogin",
]

# The header the reference modules' test API reads its secret from; the check sends
# TGGATE_CHECK_HOOK_SECRET in it.
HOOK_SECRET_HEADER = "X-Test-Api-Secret"


@dataclass(frozen=True, slots=True)
class StartedLogin:
    """A login the check started: what the module showed, and when."""

    chat_id: int
    login_token: str
    login_type: str
    text: str
    url: str | None
    code: str | None
    expires_in: int | None  # None: the module did not say
    started_at: float  # time.monotonic()
    exchange: Exchange  # the /login that started it

    def how(self) -> str:
        """What the person does with it, in one phrase."""
        if self.url and self.code:
            return f"open {self.url} and enter the code {self.code}"
        if self.url:
            return f"open {self.url}"
        if self.code:
            return f"enter the code {self.code} on the module's login page"
        return "follow the module's text above"


@dataclass(frozen=True, slots=True)
class GrantedTokens:
    """A granted (or refreshed) pair, and whose it is."""

    identity: str
    access_token: str
    refresh_token: str


class Decider(Protocol):
    """Makes a pending login granted or denied, or lets it expire."""

    patience_s: float  # how long the check waits for the login to be decided
    poll_s: float  # how often it asks the module meanwhile
    expires_at_once: bool  # `expire` ends a login now (else the check waits out expires_in)

    async def grant(
        self, login: StartedLogin, person: Persona, *, access_ttl_s: int | None = None
    ) -> Exchange | None:
        """Ask for the grant; the exchange when a hook refused."""

    async def deny(self, login: StartedLogin) -> Exchange | None: ...

    async def expire(self, login: StartedLogin) -> Exchange | None: ...


class Hooks:
    """The module's test hooks: `POST {url}/logins/resolve` and `{url}/logins/expire`, by chat."""

    poll_s = 0.2
    expires_at_once = True

    def __init__(
        self, probe: Probe, *, url: str, secret: str | None, patience_s: float = 10.0
    ) -> None:
        self._probe = probe
        self._url = url.rstrip("/")
        self._headers = {HOOK_SECRET_HEADER: secret} if secret else {}
        self.patience_s = patience_s

    async def _post(self, path: str, body: dict[str, object]) -> Exchange | None:
        exchange = await self._probe.send(
            "POST", self._url + path, content=json.dumps(body).encode(), headers=self._headers
        )
        ok = exchange.status is not None and 200 <= exchange.status < 300
        return None if ok else exchange

    async def grant(
        self, login: StartedLogin, person: Persona, *, access_ttl_s: int | None = None
    ) -> Exchange | None:
        body: dict[str, object] = {
            "chat_id": login.chat_id,
            "decision": "granted",
            "identity": person.identity,
        }
        if access_ttl_s is not None:
            body["access_ttl_s"] = access_ttl_s
        return await self._post("/logins/resolve", body)

    async def deny(self, login: StartedLogin) -> Exchange | None:
        return await self._post("/logins/resolve", {"chat_id": login.chat_id, "decision": "denied"})

    async def expire(self, login: StartedLogin) -> Exchange | None:
        return await self._post("/logins/expire", {"chat_id": login.chat_id})


class PersonAtThePage:
    """A person at the module's login page: the check prints what to do, then waits."""

    poll_s = 1.0
    expires_at_once = False

    def __init__(self, report: Report, *, patience_s: float) -> None:
        self._report = report
        self.patience_s = patience_s

    def _show(self, login: StartedLogin, task: str) -> None:
        self._report.wait(f"{task}: {login.how()} (waiting up to {self.patience_s:g} s)")
        for line in login.text.splitlines():
            self._report.note(f"the module says: {line}")

    async def grant(
        self, login: StartedLogin, person: Persona, *, access_ttl_s: int | None = None
    ) -> Exchange | None:
        self._show(login, f"log in as {person.identity} ({person.role}) and confirm (Yes)")
        return None

    async def deny(self, login: StartedLogin) -> Exchange | None:
        self._show(login, "refuse this login (No), signed in as anyone")
        return None

    async def expire(self, login: StartedLogin) -> Exchange | None:
        return None  # nobody can end a login early: the check waits out its expires_in
