"""Instruments for tests: calls per endpoint of docs/openapi/auth.yaml and an artificial delay
("module slow").

A pure ASGI middleware rather than a dependency, so even a request with a malformed body is
counted and delayed like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Instrument", "InstrumentMiddleware"]


class Instrument:
    """Counters by endpoint name and the delay every counted endpoint waits before answering."""

    def __init__(self, endpoints: Mapping[str, str]) -> None:
        self._endpoints = dict(endpoints)  # path -> name in the stats
        self.delay_s = 0.0
        self.counts = dict.fromkeys(self._endpoints.values(), 0)

    def name_of(self, path: str) -> str | None:
        return self._endpoints.get(path)

    def reset(self) -> None:
        self.counts = dict.fromkeys(self._endpoints.values(), 0)


class InstrumentMiddleware:
    def __init__(self, app: ASGIApp, *, instrument: Instrument) -> None:
        self._app = app
        self._instrument = instrument

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = self._instrument.name_of(scope["path"])
            if name is not None:
                self._instrument.counts[name] += 1
                if self._instrument.delay_s > 0:
                    await asyncio.sleep(self._instrument.delay_s)
        await self._app(scope, receive, send)
