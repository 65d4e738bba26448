"""What the module's per-person endpoints answer, as plain functions of the person and the path's
values: the FastAPI routes in app.py (which declare and document them) and the fast path in
fast_path.py (which serves them) both call these, so the two cannot answer differently.

A refusal is an `HTTPException` (403, 404) with its message, as FastAPI raises it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from fastapi import HTTPException

from tggate_sandbox.reference.main.catalog import Course, Person, School
from tggate_sandbox.reference.main.models import (
    CourseBrief,
    CourseDetail,
    GradeView,
    NotificationView,
    PersonView,
    Profile,
    TaskView,
)
from tggate_sandbox.reference.main.notifications import NotificationBox

__all__ = ["Handlers"]

log = logging.getLogger("tggate_sandbox.reference.main")


class Handlers:
    """The actions of the bundled command table (src/tggate/commands.toml) and the person's
    notifications (docs/openapi/main.yaml)."""

    def __init__(self, *, school: School, box: NotificationBox) -> None:
        self._school = school
        self._box = box

    def me(self, person: Person) -> Profile:
        return Profile(id=person.id, name=person.name, role=person.role)

    def courses(self, person: Person) -> list[CourseBrief]:
        return [
            CourseBrief(id=c.id, title=c.title, teacher=c.teacher)
            for c in self._school.courses_of(person)
        ]

    def course(self, person: Person, course_id: str) -> CourseDetail:
        found = self._own_course(person, course_id)
        return CourseDetail(
            id=found.id,
            title=found.title,
            description=found.description,
            teacher=found.teacher,
            students=len(self._school.students_of(found)),
        )

    def tasks(self, person: Person, course_id: str) -> list[TaskView]:
        return [
            TaskView(id=t.id, title=t.title, due=t.due)
            for t in self._own_course(person, course_id).tasks
        ]

    def students(self, person: Person, course_id: str) -> list[PersonView]:
        found = self._own_course(person, course_id)
        if person.role != "teacher":
            raise HTTPException(403, detail="teachers only")
        return [PersonView(id=p.id, name=p.name) for p in self._school.students_of(found)]

    def grades(self, person: Person) -> list[GradeView]:
        if person.role != "student":
            raise HTTPException(403, detail="students only")
        return [
            GradeView(course=g.course, task=g.task, task_title=g.task_title, grade=g.grade)
            for g in self._school.grades_of(person)
        ]

    def notifications(self, person: Person) -> list[NotificationView]:
        return [
            NotificationView(id=n.id, text=n.text, created_at=n.created_at)
            for n in self._box.of(person.id)
        ]

    def delete_notifications(self, person: Person, ids: Collection[str]) -> None:
        deleted = self._box.delete(person.id, ids)
        log.info("deleted %d of %d notifications of %s", deleted, len(ids), person.id)

    def _own_course(self, person: Person, course_id: str) -> Course:
        course = self._school.course_of(person, course_id)
        if course is None:
            raise HTTPException(404, detail="course not found")
        return course
