"""The reference Main module: a tiny course system speaking SPEC §5.3, as an in-memory FastAPI app.

Actions answer 401 for a missing, invalid or expired access token, 403 when the role does not
allow the action, 404 for a course that does not exist or is not the person's. Notifications are
created without a token (an admin API in a real system) and read/deleted by their person;
`/notify` is a page to create them by hand (pages.py).
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at
# runtime, and `Depends(caller)` names a local of `create_app` that only eager evaluation sees.

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response

from tggate_sandbox.reference.main.catalog import Course, Person, School
from tggate_sandbox.reference.main.instrument import Instrument, InstrumentMiddleware
from tggate_sandbox.reference.main.models import (
    Broadcast,
    BroadcastDone,
    CourseBrief,
    CourseDetail,
    DelayRequest,
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

Clock = Callable[[], float]
# The dependency that turns a request into its authenticated person (401 otherwise).
Authenticate = Callable[[Request], Awaitable[Person]]


def create_app(
    *,
    jwt_secret: str,
    teachers: Collection[str] = ("bob",),
    test_api: bool = True,
    clock: Clock = time.time,
) -> FastAPI:
    """Build the module. ValueError for a secret too short for HS256."""
    verifier = AccessVerifier(jwt_secret, clock=clock)
    school = School(teachers=teachers)
    box = NotificationBox()
    instrument = Instrument(skip_prefix="/test/")

    async def caller(request: Request) -> Person:
        try:
            who = verifier.verify(request.headers.get("authorization"))
        except Unauthorized as refused:
            raise HTTPException(
                401, detail=str(refused), headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return school.meet(who.identity, who.name)

    app = FastAPI(title="tggate reference Main module", version="1")
    app.add_middleware(InstrumentMiddleware, instrument=instrument, routes=app.router.routes)
    # Routes go straight onto the app, not through include_router: the instrument matches them
    # against the app's own route list to name them by template ("GET /api/courses/{course_id}").
    _add_actions(app, school=school, caller=caller)
    _add_notifications(app, school=school, box=box, caller=caller, clock=clock)
    add_notification_pages(app, school=school, box=box, clock=clock)
    if test_api:
        _add_test_api(app, instrument)
    return app


def _add_actions(app: FastAPI, *, school: School, caller: Authenticate) -> None:
    """The actions of the bundled command table (src/tggate/commands.toml)."""
    Me = Annotated[Person, Depends(caller)]

    def own_course(person: Person, course_id: str) -> Course:
        course = school.course_of(person, course_id)
        if course is None:
            raise HTTPException(404, detail="course not found")
        return course

    @app.get("/api/me", tags=["actions"])
    async def me(person: Me) -> Profile:
        return Profile(id=person.id, name=person.name, role=person.role)

    @app.get("/api/courses", tags=["actions"])
    async def courses(person: Me) -> list[CourseBrief]:
        return [
            CourseBrief(id=c.id, title=c.title, teacher=c.teacher)
            for c in school.courses_of(person)
        ]

    @app.get("/api/courses/{course_id}", tags=["actions"])
    async def course(person: Me, course_id: str) -> CourseDetail:
        found = own_course(person, course_id)
        return CourseDetail(
            id=found.id,
            title=found.title,
            description=found.description,
            teacher=found.teacher,
            students=len(school.students_of(found)),
        )

    @app.get("/api/courses/{course_id}/tasks", tags=["actions"])
    async def tasks(person: Me, course_id: str) -> list[TaskView]:
        return [
            TaskView(id=t.id, title=t.title, due=t.due) for t in own_course(person, course_id).tasks
        ]

    @app.get("/api/courses/{course_id}/students", tags=["actions"])
    async def students(person: Me, course_id: str) -> list[PersonView]:
        found = own_course(person, course_id)
        if person.role != "teacher":
            raise HTTPException(403, detail="teachers only")
        return [PersonView(id=p.id, name=p.name) for p in school.students_of(found)]

    @app.get("/api/grades", tags=["actions"])
    async def grades(person: Me) -> list[GradeView]:
        if person.role != "student":
            raise HTTPException(403, detail="students only")
        return [
            GradeView(course=g.course, task=g.task, task_title=g.task_title, grade=g.grade)
            for g in school.grades_of(person)
        ]


def _add_notifications(
    app: FastAPI, *, school: School, box: NotificationBox, caller: Authenticate, clock: Clock
) -> None:
    """SPEC §5.3 notifications, plus creating them (no token: an admin API in a real system)."""
    Me = Annotated[Person, Depends(caller)]

    @app.get("/notification", tags=["notifications"])
    async def read(person: Me) -> list[NotificationView]:
        return [
            NotificationView(id=n.id, text=n.text, created_at=n.created_at)
            for n in box.of(person.id)
        ]

    @app.delete("/notification", status_code=204, tags=["notifications"])
    async def delete(person: Me, body: NotificationIds) -> Response:
        deleted = box.delete(person.id, body.ids)
        log.info("deleted %d of %d notifications of %s", deleted, len(body.ids), person.id)
        return Response(status_code=204)

    @app.post("/notifications", status_code=201, tags=["notifications"])
    async def create(body: NewNotification) -> NotificationCreated:
        note = box.add(body.to, body.text, now=clock())
        return NotificationCreated(id=note.id)

    @app.post("/notifications/broadcast", status_code=201, tags=["notifications"])
    async def broadcast(body: Broadcast) -> BroadcastDone:
        now = clock()
        return BroadcastDone(
            ids=[box.add(who, body.text, now=now).id for who in school.identities()]
        )


def _add_test_api(app: FastAPI, instrument: Instrument) -> None:
    """Instruments for tests: calls per route template, reset, and an artificial delay."""

    @app.get("/test/stats", tags=["test"])
    async def stats() -> dict[str, int]:
        return dict(instrument.counts)

    @app.post("/test/stats/reset", tags=["test"])
    async def reset_stats() -> dict[str, int]:
        instrument.reset()
        return {}

    @app.post("/test/delay", tags=["test"])
    async def set_delay(body: DelayRequest) -> dict[str, float]:
        instrument.delay_s = body.seconds
        return {"seconds": instrument.delay_s}
