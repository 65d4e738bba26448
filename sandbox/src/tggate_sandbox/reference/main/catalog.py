"""The tiny course system behind the reference Main module: seed data and who may see what.

Teachers (a fixed set of identities) teach every course; every other identity is a student,
enrolled in the courses open to students (py101 and db201). An identity becomes known the first
time it makes an authenticated request, so the students of a course are the seed students plus
everyone who has shown up.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

__all__ = ["SEED_COURSES", "SEED_STUDENTS", "Course", "Grade", "Person", "Role", "School", "Task"]

Role = Literal["teacher", "student"]


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    title: str
    due: str  # ISO 8601 date
    graded: bool = False


@dataclass(frozen=True, slots=True)
class Course:
    id: str
    title: str
    description: str
    teacher: str
    tasks: tuple[Task, ...]
    open_to_students: bool


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Grade:
    course: str
    task: str
    task_title: str
    grade: int


SEED_COURSES: tuple[Course, ...] = (
    Course(
        id="py101",
        title="Основы Python",
        description="Синтаксис, функции, коллекции и тесты: первый курс программирования.",
        teacher="Борис Петров",
        tasks=(
            Task("t1", "Привет, мир", "2025-09-15", graded=True),
            Task("t2", "Списки и словари", "2025-09-29", graded=True),
            Task("t3", "Своя утилита командной строки", "2025-10-20"),
        ),
        open_to_students=True,
    ),
    Course(
        id="db201",
        title="Базы данных",
        description="Реляционная модель, SQL, индексы и транзакции.",
        teacher="Ольга Соколова",
        tasks=(
            Task("t1", "Схема библиотеки", "2025-09-22", graded=True),
            Task("t2", "Запросы с JOIN", "2025-10-06"),
        ),
        open_to_students=True,
    ),
    Course(
        id="ml301",
        title="Машинное обучение",
        description="Линейные модели, деревья решений и оценка качества. Набор ещё не открыт.",
        teacher="Игорь Кузнецов",
        tasks=(Task("t1", "Линейная регрессия", "2025-11-10"),),
        open_to_students=False,
    ),
)

SEED_STUDENTS: dict[str, str] = {
    "alice": "Алиса Иванова",
    "dima": "Дмитрий Орлов",
    "katya": "Екатерина Смирнова",
}


class School:
    """The people, the courses and the permission rules. Thread-safe."""

    def __init__(self, *, teachers: Collection[str]) -> None:
        self._teachers = frozenset(teachers)
        self._courses = {course.id: course for course in SEED_COURSES}
        self._names: dict[str, str] = dict(SEED_STUDENTS)
        self._names.update((teacher, teacher) for teacher in self._teachers)
        self._lock = threading.Lock()

    def meet(self, identity: str, name: str | None) -> Person:
        """The person behind an authenticated request; remembers them for lists and broadcasts."""
        with self._lock:
            if name:
                self._names[identity] = name
            known = self._names.setdefault(identity, identity)
        return Person(id=identity, name=known, role=self.role_of(identity))

    def role_of(self, identity: str) -> Role:
        return "teacher" if identity in self._teachers else "student"

    def courses_of(self, person: Person) -> list[Course]:
        return [course for course in self._courses.values() if self._sees(person, course)]

    def course_of(self, person: Person, course_id: str) -> Course | None:
        """The course if it exists and is the person's; None either way otherwise (no leak)."""
        course = self._courses.get(course_id)
        return course if course is not None and self._sees(person, course) else None

    def students(self) -> list[Person]:
        with self._lock:
            names = dict(self._names)
        return [
            Person(id=identity, name=name, role="student")
            for identity, name in sorted(names.items())
            if identity not in self._teachers
        ]

    def students_of(self, course: Course) -> list[Person]:
        return self.students() if course.open_to_students else []

    def identities(self) -> list[str]:
        """Everyone known: the seed students, the teachers, and whoever has shown up."""
        with self._lock:
            return sorted(self._names)

    def grades_of(self, person: Person) -> list[Grade]:
        return [
            Grade(
                course=course.id,
                task=task.id,
                task_title=task.title,
                grade=_grade(person, course, task),
            )
            for course in self.courses_of(person)
            for task in course.tasks
            if task.graded
        ]

    def _sees(self, person: Person, course: Course) -> bool:
        return person.role == "teacher" or course.open_to_students


def _grade(person: Person, course: Course, task: Task) -> int:
    """A stable grade from 3 to 5, so every student has some and tests can rely on them."""
    digest = hashlib.sha256(f"{person.id}:{course.id}:{task.id}".encode()).digest()
    return 3 + digest[0] % 3
