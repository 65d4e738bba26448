"""Request and answer bodies of the reference Main module (docs/openapi/main.yaml and its actions).

The notification bodies Bot Logic reads and sends are the contract's own models
(`tggate.contract.main`), so the reference module and tggate's adapter cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tggate.contract.main import FeedItemView, FeedPageView, NotificationIds, NotificationView
from tggate_sandbox.reference.main.catalog import Role

__all__ = [
    "Broadcast",
    "BroadcastDone",
    "CourseBrief",
    "CourseDetail",
    "FeedItemView",
    "FeedPageView",
    "GradeView",
    "NewNotification",
    "NotificationCreated",
    "NotificationIds",
    "NotificationView",
    "PersonView",
    "Profile",
    "TaskView",
]

# Telegram splits long messages itself, but nobody needs a notification longer than this.
NotificationText = Annotated[str, Field(min_length=1, max_length=10_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Profile(BaseModel):
    id: str
    name: str
    role: Role


class CourseBrief(BaseModel):
    id: str
    title: str
    teacher: str


class CourseDetail(BaseModel):
    id: str
    title: str
    description: str
    teacher: str
    students: int


class TaskView(BaseModel):
    id: str
    title: str
    due: str


class PersonView(BaseModel):
    id: str
    name: str


class GradeView(BaseModel):
    course: str
    task: str
    task_title: str
    grade: int


class NewNotification(_Body):
    to: Annotated[str, Field(min_length=1, max_length=200)]
    text: NotificationText


class Broadcast(_Body):
    text: NotificationText


class NotificationCreated(BaseModel):
    id: str


class BroadcastDone(BaseModel):
    ids: list[str]
