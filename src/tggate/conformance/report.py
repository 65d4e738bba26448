"""What `tggate check-modules` prints: one line per check, and for a failure the exact request
and the answer received, with every token shortened (docs/integrate.md#reading-the-report).

A token is never printed in full: every secret the check made or received is registered with
the `Redactor`, and anything shaped like a JWT is shortened too, so even a token a module puts
where it should not (an error text) stays hidden.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

__all__ = ["Exchange", "Redactor", "Report", "Verdict"]

# A JWT's header is JSON, so its base64url starts with "eyJ" ('{"').
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_SHOWN = 4  # characters kept at a token's end, so two tokens in a report can be told apart
_BODY_MAX = 600


class Verdict(StrEnum):
    PASS = "PASS"  # the module does what tggate relies on
    FAIL = "FAIL"  # it does not: tggate would misbehave with it (the exit status is 1)
    WARN = "WARN"  # it works, but misses a recommendation of docs/contract.md
    SKIP = "SKIP"  # not checked, and the line says why


class Redactor:
    """Shortens every registered secret, and anything shaped like a JWT, to its last characters."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret and len(secret) >= 8:
                self._secrets.add(secret)

    def hide(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, _short(secret))
        return _JWT.sub(lambda match: _short(match.group(0)), text)


def _short(token: str) -> str:
    kind = "jwt" if token.count(".") == 2 else "token"
    return f"<{kind} …{token[-_SHOWN:]}>"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request the check made and what came back (status None: no answer)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    status: int | None = None
    answer: bytes = b""
    error: str | None = None  # why there was no answer

    def json(self) -> Any:
        """The answer as JSON, or None when it is empty or not JSON."""
        if not self.answer:
            return None
        try:
            return json.loads(self.answer)
        except (ValueError, RecursionError):
            return None

    def got(self) -> str:
        """What came back, the way a line names it: "HTTP 500", "no answer (timed out)"."""
        return f"HTTP {self.status}" if self.status is not None else f"no answer ({self.error})"


class Report:
    """Prints lines as the checks run (a person may be reading along) and counts verdicts."""

    def __init__(self, out: TextIO, redactor: Redactor) -> None:
        self._out = out
        self.redactor = redactor
        self.counts: Counter[Verdict] = Counter()

    def section(self, title: str) -> None:
        self._print(f"\n== {title}")

    def line(
        self,
        verdict: Verdict,
        subject: str,
        detail: str,
        *exchanges: Exchange,
    ) -> Verdict:
        """One check's line; a failure or warning shows the exchanges that decided it."""
        self.counts[verdict] += 1
        self._print(f"{verdict.value}  {subject}: {detail}")
        if verdict in (Verdict.FAIL, Verdict.WARN):
            for exchange in exchanges:
                self._exchange(exchange)
        return verdict

    def wait(self, text: str) -> None:
        """A request to the person running the check (WAIT lines are never verdicts)."""
        self._print(f"WAIT  {text}")

    def note(self, text: str) -> None:
        self._print(f"      {text}")

    def summary(self) -> str:
        parts = [
            f"{self.counts[Verdict.PASS]} passed",
            f"{self.counts[Verdict.FAIL]} failed",
            f"{self.counts[Verdict.WARN]} warnings",
            f"{self.counts[Verdict.SKIP]} skipped",
        ]
        text = ", ".join(parts)
        self._print(f"\n{text}")
        return text

    @property
    def failed(self) -> bool:
        return self.counts[Verdict.FAIL] > 0

    def _exchange(self, exchange: Exchange) -> None:
        self._print(f"        request:  {exchange.method} {exchange.url}")
        for name, value in exchange.headers.items():
            self._print(f"                  {name}: {value}")
        if exchange.body:
            self._print(f"                  {self._text(exchange.body)}")
        if exchange.status is None:
            self._print(f"        response: none ({exchange.error})")
        else:
            shown = self._text(exchange.answer) if exchange.answer else "(empty body)"
            self._print(f"        response: {exchange.status} {shown}")

    def _text(self, raw: bytes) -> str:
        """A body on one line, tokens shortened before it is cut (a cut token would show)."""
        text = self.redactor.hide(raw.decode("utf-8", errors="replace").replace("\n", " "))
        return text if len(text) <= _BODY_MAX else text[:_BODY_MAX] + f"… ({len(text)} chars)"

    def _print(self, text: str) -> None:
        print(self.redactor.hide(text), file=self._out, flush=True)
