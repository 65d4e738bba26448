"""Instruments for tests: calls per "METHOD path-template" and an artificial delay.

A pure ASGI middleware, so a request with a malformed body is counted and delayed too. The
route is matched up front (the router does it again later) so the count is in place before the
answer leaves: a test that reads the stats right after a call always sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Instrument", "InstrumentMiddleware"]


class Instrument:
    """Counters and the delay that every instrumented request waits before it is handled."""

    def __init__(self, *, skip_prefix: str) -> None:
        self.skip_prefix = skip_prefix
        self.delay_s = 0.0
        self.counts: dict[str, int] = {}

    def reset(self) -> None:
        self.counts = {}


class InstrumentMiddleware:
    def __init__(
        self, app: ASGIApp, *, instrument: Instrument, routes: Sequence[BaseRoute]
    ) -> None:
        self._app = app
        self._instrument = instrument
        self._routes = routes  # the app's live list, so routes added later are seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self._instrument.skip_prefix):
            key = self._route_key(scope)
            if key is not None:
                self._instrument.counts[key] = self._instrument.counts.get(key, 0) + 1
            if self._instrument.delay_s > 0:
                await asyncio.sleep(self._instrument.delay_s)
        await self._app(scope, receive, send)

    def _route_key(self, scope: Scope) -> str | None:
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                return f"{scope['method']} {route.path}"
        return None
