"""Instruments of the reference modules for tests: calls per route, their answers by status, and
an artificial delay (`tggate_sandbox.reference.delay`), behind each module's `/test` API.

A route is named in the stats by "METHOD path-template" ("GET /api/courses/{course_id}", the
Main module), or by the name a module gives its path ("login/check", the Authorization module,
whose stats name only its endpoints of docs/openapi/auth.yaml, each from 0).

A pure ASGI middleware, so a request with a malformed body is counted and delayed too. The
route is matched up front (the router does it again later) against the app's own route list,
so the count is in place before the answer leaves: a test that reads the stats right after a
call always sees it. An answer is counted when its status line leaves, before the caller can
read it, so a test waiting for "so many 401s" (the single-flight refresh,
docs/scenarios.md#z7) sees each one as it happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tggate_sandbox.reference.delay import Delay

__all__ = ["DelayRequest", "Instrument", "InstrumentMiddleware"]

# Where both modules keep their test API: its own calls are never counted nor delayed, so a
# test can read the stats while a module call waits out its delay.
_TEST_API = "/test/"


class Instrument:
    """Counters and the delay that every instrumented request waits before it is handled.

    `names` maps a path to its name in the stats, and only those paths are instrumented;
    without it, every route the app has but the test API's, by "METHOD path-template"."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names = None if names is None else dict(names)
        self.delay = Delay()
        self.delayed_route: str | None = None  # the only route the delay holds; None: all
        self.counts: dict[str, int] = {}
        self.answers: dict[str, dict[str, int]] = {}  # route -> status -> count
        self.reset()

    def reset(self) -> None:
        self.counts = {} if self.names is None else dict.fromkeys(self.names.values(), 0)
        self.answers = {}

    async def arrived(self, route: str) -> None:
        """A request for `route` is in: counted, then held for the delay when it applies."""
        self.counts[route] = self.counts.get(route, 0) + 1
        if self.delayed_route in (None, route):
            await self.delay.wait()

    def answered(self, route: str, status: int) -> None:
        by_status = self.answers.setdefault(route, {})
        by_status[str(status)] = by_status.get(str(status), 0) + 1


class InstrumentMiddleware:
    def __init__(
        self, app: ASGIApp, *, instrument: Instrument, routes: Sequence[BaseRoute] = ()
    ) -> None:
        self._app = app
        self._instrument = instrument
        # The app's live list, so routes added later are seen; unused with `names`. FastAPI
        # keeps an included router as one entry, so the routes named by template go straight
        # onto the app.
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope) if scope["type"] == "http" else None
        if route is None:
            await self._app(scope, receive, send)
            return
        instrument = self._instrument
        await instrument.arrived(route)

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                instrument.answered(route, message["status"])
            await send(message)

        await self._app(scope, receive, counted)

    def _route(self, scope: Scope) -> str | None:
        """The request's route as the stats name it; None when it is not instrumented."""
        path: str = scope["path"]
        if path.startswith(_TEST_API):
            return None
        if self._instrument.names is not None:
            return self._instrument.names.get(path)
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                return f"{scope['method']} {route.path}"
        return None


class DelayRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seconds: float = Field(ge=0, le=600, allow_inf_nan=False)
    # Only this route (as /test/stats names it: "DELETE /notification", "refresh"); None: all.
    route: str | None = Field(default=None, max_length=200)
