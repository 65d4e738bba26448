"""Instruments for tests: calls per "METHOD path-template", their answers by status, and an
artificial delay (`tggate_sandbox.reference.delay`).

A pure ASGI middleware, so a request with a malformed body is counted and delayed too. The
route is matched up front (the router does it again later) so the count is in place before the
answer leaves: a test that reads the stats right after a call always sees it. An answer is
counted when its status line leaves, before the caller can read it, so a test waiting for "so
many 401s" (the single-flight refresh, docs/scenarios.md#z7) sees each one as it happens.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tggate_sandbox.reference.delay import Delay

__all__ = ["Instrument", "InstrumentMiddleware"]


class Instrument:
    """Counters and the delay that every instrumented request waits before it is handled."""

    def __init__(self, *, skip_prefix: str) -> None:
        self.skip_prefix = skip_prefix
        self.delay = Delay()
        self.delayed_route: str | None = None  # the only route the delay holds; None: all
        self.counts: dict[str, int] = {}
        self.answers: dict[str, dict[str, int]] = {}  # route key -> status -> count

    def reset(self) -> None:
        self.counts = {}
        self.answers = {}

    def answered(self, key: str, status: int) -> None:
        by_status = self.answers.setdefault(key, {})
        by_status[str(status)] = by_status.get(str(status), 0) + 1


class InstrumentMiddleware:
    def __init__(
        self, app: ASGIApp, *, instrument: Instrument, routes: Sequence[BaseRoute]
    ) -> None:
        self._app = app
        self._instrument = instrument
        self._routes = routes  # the app's live list, so routes added later are seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self._instrument.skip_prefix):
            await self._app(scope, receive, send)
            return
        key = self._route_key(scope)
        if key is not None:
            self._instrument.counts[key] = self._instrument.counts.get(key, 0) + 1
        if self._instrument.delayed_route in (None, key):
            await self._instrument.delay.wait()
        if key is None:
            await self._app(scope, receive, send)
            return
        route = key

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._instrument.answered(route, message["status"])
            await send(message)

        await self._app(scope, receive, counted)

    def _route_key(self, scope: Scope) -> str | None:
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                return f"{scope['method']} {route.path}"
        return None
