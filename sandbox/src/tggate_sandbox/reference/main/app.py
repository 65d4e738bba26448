"""The reference Main module: a tiny course system speaking docs/openapi/main.yaml, as an
in-memory FastAPI app.

Actions answer 401 for a missing, invalid or expired access token, 403 when the role does not
allow the action, 404 for a course that does not exist or is not the person's. Notifications are
read and deleted by their person, and created through the admin API (`POST /notifications`,
`/notifications/broadcast`, with the admin secret in `X-Admin-Secret`) or by hand on the `/notify`
page, which signs in with the same secret (pages.py). Without an admin secret both are off: a
notification is a message the bot pushes into someone's Telegram, nothing to leave open (issue 9).
With a `test_api_secret`, `/test` instruments the module (stats, answers by status, delay).
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at
# runtime, and `Depends(caller)` names a local of `create_app` that only eager evaluation sees.

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response

from tggate.contract.main import FEED_LIMIT
from tggate.core.ports import Clock
from tggate_sandbox.hardening import (
    ADMIN_HEADER,
    SecretHeader,
    check_secret,
    guard_test_api,
    sandbox_app,
)
from tggate_sandbox.reference.instrument import DelayRequest, Instrument, InstrumentMiddleware
from tggate_sandbox.reference.main.catalog import Person, School
from tggate_sandbox.reference.main.fast_path import FastPath
from tggate_sandbox.reference.main.handlers import Handlers
from tggate_sandbox.reference.main.models import (
    Broadcast,
    BroadcastDone,
    CourseBrief,
    CourseDetail,
    FeedItemView,
    FeedPageView,
    GradeView,
    NewNotification,
    NotificationCreated,
    NotificationIds,
    NotificationView,
    PersonView,
    Profile,
    TaskView,
)
from tggate_sandbox.reference.main.notifications import NotificationBox
from tggate_sandbox.reference.main.pages import add_notification_pages
from tggate_sandbox.reference.main.security import AccessVerifier, Unauthorized

__all__ = ["create_app"]

log = logging.getLogger("tggate_sandbox.reference.main")

# The dependency that turns a request into its authenticated person (401 otherwise).
Authenticate = Callable[[Request], Awaitable[Person]]
# Checks a request for the admin secret (or refuses it: 401, 403, or 503 when there is none).
AdminCheck = Callable[[Request], Awaitable[None]]


def create_app(
    *,
    jwt_secret: str,
    teachers: Collection[str] = ("bob",),
    admin_secret: str | None = None,
    test_api_secret: str | None = None,
    service_token: str | None = None,
    secure_cookies: bool = False,
    clock: Clock = time.time,
    fast_path: bool = True,
) -> FastAPI:
    """Build the module. ValueError for a secret too short (HS256 wants 32 bytes, and so do the
    admin and test API secrets and the service token). `secure_cookies` marks the `/notify`
    sign-in cookie Secure. With a `service_token`, `GET /notifications` lists every person's
    notifications to a caller presenting it (the bulk mode); without one the route does not
    exist. `fast_path=False` serves every request through FastAPI's routes (the tests compare
    the two: they answer alike)."""
    verifier = AccessVerifier(jwt_secret, clock=clock)
    admin = (
        None
        if admin_secret is None
        else SecretHeader(header=ADMIN_HEADER, secret=admin_secret, purpose="the admin API")
    )
    test_guard = None if test_api_secret is None else guard_test_api(test_api_secret)
    school = School(teachers=teachers)
    box = NotificationBox()
    instrument = Instrument()

    handlers = Handlers(school=school, box=box)

    def person_of(authorization: str | None) -> Person:
        """The person behind an Authorization header value; Unauthorized otherwise."""
        who = verifier.verify(authorization)
        return school.meet(who.identity, who.name)

    async def caller(request: Request) -> Person:
        try:
            return person_of(request.headers.get("authorization"))
        except Unauthorized as refused:
            raise HTTPException(
                401, detail=str(refused), headers={"WWW-Authenticate": "Bearer"}
            ) from None

    app = sandbox_app(title="tggate reference Main module", version="1")
    app.add_middleware(InstrumentMiddleware, instrument=instrument, routes=app.router.routes)
    # Routes go straight onto the app, not through include_router: the instrument matches them
    # against the app's own route list to name them by template ("GET /api/courses/{course_id}").
    app.get("/healthz", include_in_schema=False)(_healthz)
    _add_actions(app, handlers=handlers, caller=caller)
    _add_notifications(
        app,
        school=school,
        box=box,
        handlers=handlers,
        caller=caller,
        admin=admin or _admin_off,
        clock=clock,
    )
    add_notification_pages(
        app,
        school=school,
        box=box,
        clock=clock,
        admin_secret=admin_secret,
        secure_cookies=secure_cookies,
    )
    if service_token is not None:
        _add_feed(app, box=box, token=check_secret("the service token", service_token))
    if test_guard is not None:
        log.warning("the test API is on (/test, X-Test-Api-Secret)")
        _add_test_api(app, instrument, guard=test_guard)
    if admin is None:
        log.info("no admin secret: /notify and POST /notifications are off")
    if fast_path:
        # Added last, so it is the outermost of the app's own middleware: in front of the
        # instrument and the security headers, which it applies itself (fast_path.py).
        app.add_middleware(
            FastPath, handlers=handlers, authenticate=person_of, instrument=instrument
        )
    return app


async def _healthz() -> dict[str, str]:
    """Up: what the topology waits for (a test endpoint needs the secret)."""
    return {"status": "ok"}


async def _admin_off(request: Request) -> None:
    raise HTTPException(
        503, detail="the admin API is off: start the module with TGGATE_REFERENCE_ADMIN_SECRET"
    )


def _add_actions(app: FastAPI, *, handlers: Handlers, caller: Authenticate) -> None:
    """The actions of the bundled command table (src/tggate/commands.toml)."""
    Me = Annotated[Person, Depends(caller)]

    @app.get("/api/me", tags=["actions"])
    async def me(person: Me) -> Profile:
        return handlers.me(person)

    @app.get("/api/courses", tags=["actions"])
    async def courses(person: Me) -> list[CourseBrief]:
        return handlers.courses(person)

    @app.get("/api/courses/{course_id}", tags=["actions"])
    async def course(person: Me, course_id: str) -> CourseDetail:
        return handlers.course(person, course_id)

    @app.get("/api/courses/{course_id}/tasks", tags=["actions"])
    async def tasks(person: Me, course_id: str) -> list[TaskView]:
        return handlers.tasks(person, course_id)

    @app.get("/api/courses/{course_id}/students", tags=["actions"])
    async def students(person: Me, course_id: str) -> list[PersonView]:
        return handlers.students(person, course_id)

    @app.get("/api/grades", tags=["actions"])
    async def grades(person: Me) -> list[GradeView]:
        return handlers.grades(person)


def _add_notifications(
    app: FastAPI,
    *,
    school: School,
    box: NotificationBox,
    handlers: Handlers,
    caller: Authenticate,
    admin: AdminCheck,
    clock: Clock,
) -> None:
    """The notifications of docs/openapi/main.yaml, plus creating them (the admin API)."""
    Me = Annotated[Person, Depends(caller)]
    admin_only = [Depends(admin)]

    @app.get("/notification", tags=["notifications"])
    async def read(person: Me) -> list[NotificationView]:
        return handlers.notifications(person)

    @app.delete("/notification", status_code=204, tags=["notifications"])
    async def delete(person: Me, body: NotificationIds) -> Response:
        handlers.delete_notifications(person, body.ids)
        return Response(status_code=204)

    @app.post("/notifications", status_code=201, tags=["notifications"], dependencies=admin_only)
    async def create(body: NewNotification) -> NotificationCreated:
        note = box.add(body.to, body.text, now=clock())
        return NotificationCreated(id=note.id)

    @app.post(
        "/notifications/broadcast",
        status_code=201,
        tags=["notifications"],
        dependencies=admin_only,
    )
    async def broadcast(body: Broadcast) -> BroadcastDone:
        now = clock()
        return BroadcastDone(
            ids=[box.add(who, body.text, now=now).id for who in school.identities()]
        )


def _add_feed(app: FastAPI, *, box: NotificationBox, token: str) -> None:
    """The notification feed of docs/openapi/main.yaml (bulk mode): everybody's notifications
    after a cursor, for the caller holding the service token. Nothing is deleted by reading."""
    expected = f"Bearer {token}".encode()

    async def service(request: Request) -> None:
        presented = request.headers.get("authorization", "").strip().encode()
        # One answer for a missing and a wrong credential; compared in constant time.
        if not secrets.compare_digest(presented, expected):
            raise HTTPException(
                401,
                detail="the feed needs the service token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/notifications", tags=["notifications"], dependencies=[Depends(service)])
    async def feed(
        limit: Annotated[int, Query(ge=1, le=FEED_LIMIT)],
        after: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    ) -> FeedPageView:
        items, cursor = box.feed(after=int(after or 0), limit=limit)
        return FeedPageView(
            notifications=[
                FeedItemView(
                    id=item.notification.id,
                    subject=item.identity,
                    text=item.notification.text,
                    created_at=item.notification.created_at,
                )
                for item in items
            ],
            cursor=str(cursor),
        )


def _add_test_api(app: FastAPI, instrument: Instrument, *, guard: SecretHeader) -> None:
    """Instruments for tests: calls per route template, their answers by status, reset, and an
    artificial delay (a new one cuts short the requests waiting on the old one)."""
    guarded = [Depends(guard)]

    @app.get("/test/stats", tags=["test"], dependencies=guarded)
    async def stats() -> dict[str, int]:
        return dict(instrument.counts)

    @app.post("/test/stats/reset", tags=["test"], dependencies=guarded)
    async def reset_stats() -> dict[str, int]:
        instrument.reset()
        return {}

    @app.get("/test/answers", tags=["test"], dependencies=guarded)
    async def answers() -> dict[str, dict[str, int]]:
        """Answers per route template and status: {"GET /api/me": {"401": 2, "200": 1}}."""
        return {key: dict(by_status) for key, by_status in instrument.answers.items()}

    @app.post("/test/delay", tags=["test"], dependencies=guarded)
    async def set_delay(body: DelayRequest) -> dict[str, float]:
        instrument.delayed_route = body.route
        instrument.delay.set(body.seconds)
        return {"seconds": instrument.delay.seconds}
