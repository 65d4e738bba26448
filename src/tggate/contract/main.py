"""The Main module's API as tggate calls it (docs/contract.md#the-main-module).

Every call carries the chat's access token as `Authorization: Bearer <token>`, except the
notification feed of the bulk mode, which carries tggate's service credential. Actions are
whatever the command table declares (method, path, how the answer becomes a reply), so their
shape here is generic: `ACTION_ANSWERS` says what each status means. docs/openapi/main.yaml is
generated from this file and the bundled command table (`uv run python -m
tggate.contract.openapi`), and a test fails when the two differ.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from tggate.contract.operations import Answer, Operation

__all__ = [
    "ACTION_ANSWERS",
    "DELETE_NOTIFICATIONS",
    "FEED_LIMIT",
    "MAX_IDS_PER_DELETE",
    "NOTIFICATIONS",
    "NOTIFICATION_FEED",
    "OPERATIONS",
    "FeedItemView",
    "FeedPageView",
    "NotificationId",
    "NotificationIds",
    "NotificationView",
]

# One DELETE names at most this many ids; more are deleted in several calls.
MAX_IDS_PER_DELETE: Final = 10_000

NotificationId = Annotated[str, Field(min_length=1, max_length=200)]


def _text_or_none(value: Any) -> Any:
    return value if isinstance(value, str) else None


class NotificationView(BaseModel):
    """One notification waiting for the person."""

    # A number as an id is read as its text: some systems number their notifications.
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    id: NotificationId = Field(
        description="Unique among the person's notifications: tggate deletes by it, and "
        "delivers a notification once per id."
    )
    text: str = Field(description="What the person is sent (after 🔔).")
    created_at: Annotated[
        str | None,
        BeforeValidator(_text_or_none),
        WithJsonSchema({"type": ["string", "null"], "format": "date-time"}),
    ] = Field(default=None, description="When it was created (ISO 8601). Not read by tggate.")


class NotificationIds(BaseModel):
    """The ids of the notifications tggate has taken over (they are in its outbox)."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_serialization_defaults_required=True
    )

    ids: list[NotificationId] = Field(
        max_length=MAX_IDS_PER_DELETE,
        description="Delete exactly these; a notification that arrived after the read is not "
        "among them and must stay.",
    )


class FeedItemView(BaseModel):
    """One notification of the feed, with the person it is for."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    id: NotificationId = Field(
        description="Unique among all notifications of the feed: tggate delivers a "
        "notification once per id and chat."
    )
    subject: str = Field(
        min_length=1,
        max_length=1000,
        description="The person it is for: the `sub` claim of the access tokens the "
        "Authorization module issues them. tggate sends it to every chat logged in as that "
        "person; with none, it is dropped.",
    )
    text: str = Field(description="What the person is sent (after 🔔).")
    created_at: Annotated[
        str | None,
        BeforeValidator(_text_or_none),
        WithJsonSchema({"type": ["string", "null"], "format": "date-time"}),
    ] = Field(default=None, description="When it was created (ISO 8601). Not read by tggate.")


class FeedPageView(BaseModel):
    """A page of the feed: the notifications after the cursor asked for, oldest first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # tggate reads the items one by one (tggate.adapters.main_http): one that does not fit is
    # skipped, the others delivered.
    notifications: list[FeedItemView] = Field(
        description="At most `limit` items; empty when there is nothing new."
    )
    cursor: str = Field(
        min_length=1,
        max_length=1000,
        description="Opaque to tggate: what it sends as `after` next. After an empty page, "
        "the cursor it was asked with (or a later one).",
    )


# Notifications per page tggate asks for; a module may answer with fewer.
FEED_LIMIT: Final = 1000

NOTIFICATIONS = Operation(
    method="GET",
    path="/notification",
    operation_id="readNotifications",
    summary="The person's notifications (N2)",
    description="Asked for every Authorized chat on each tick of the notification timer. An "
    "item that does not fit (no id, no text) is skipped and stays at the module.",
    bearer=True,
    answers={
        200: Answer(
            "Every notification waiting for the person, oldest first.", list[NotificationView]
        ),
        401: Answer(
            "The access token expired: tggate refreshes the pair (Z7-Z9) and reads again; when "
            "the refresh is refused (Z8) the chat becomes Unknown and is sent the login offer."
        ),
        "default": Answer("Anything else, or no answer: the chat is skipped until the next tick."),
    },
)

DELETE_NOTIFICATIONS = Operation(
    method="DELETE",
    path="/notification",
    operation_id="deleteNotifications",
    summary="Delete notifications tggate has taken over (N2)",
    description="Called after the notifications are in tggate's durable outbox. If the delete "
    "fails they are read again next tick; the outbox knows their ids, so none is sent twice.",
    request=NotificationIds,
    bearer=True,
    answers={
        204: Answer("Deleted (200 is read the same way)."),
        401: Answer(
            "The access token expired between the read and the delete: the notifications stay "
            "and are read again next tick, where the read's 401 refreshes the pair."
        ),
        "default": Answer("Not deleted: they are read again next tick."),
    },
)

NOTIFICATION_FEED = Operation(
    method="GET",
    path="/notifications",
    operation_id="readNotificationFeed",
    summary="Every person's new notifications after a cursor (N2, bulk mode)",
    description="Only with TGGATE_NOTIFICATION_MODE=bulk, instead of the per-chat "
    "/notification: once per tick of the notification timer, one Bot Logic replica asks for "
    "the notifications after its cursor, page by page until a page is empty, and sends each "
    "to the chats of its person (the subject). The cursor is stored only once the page is in "
    "tggate's durable outbox, so a crash reads the page again; the outbox knows the ids, so "
    "none is sent twice. Nothing is deleted: the module keeps or drops read notifications as "
    "it likes, but must keep the cursor's order (a notification created later is listed "
    "after a later cursor). Called with tggate's service credential, never a person's token.",
    service=True,
    parameters=(
        {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "The cursor of the last page read; absent on the first call ever "
            "(then: from the oldest notification the module still has).",
            "schema": {"type": "string", "maxLength": 1000},
        },
        {
            "name": "limit",
            "in": "query",
            "required": True,
            "description": "The most notifications to list.",
            "schema": {"type": "integer", "minimum": 1, "maximum": FEED_LIMIT},
        },
    ),
    answers={
        200: Answer("The page.", FeedPageView),
        401: Answer(
            "The service credential is missing or wrong: nothing is read this tick, and "
            "tggate logs an error."
        ),
        "default": Answer("Anything else, or no answer: the same page is asked for next tick."),
    },
)

OPERATIONS: Final = (NOTIFICATIONS, DELETE_NOTIFICATIONS, NOTIFICATION_FEED)

# What each answer to an action means (Z4-Z9); the body of a 200 is whatever JSON the action's
# reply template reads (src/tggate/core/render.py).
ACTION_ANSWERS: Final[dict[int | Literal["default"], Answer]] = {
    200: Answer("Done (Z5): the reply is built from this JSON as the command table says."),
    401: Answer(
        "The access token expired or is invalid (Z7): tggate refreshes the pair (one refresh "
        "per chat at a time) and retries the action (Z9); when the refresh is refused (Z8) the "
        "chat becomes Unknown and is sent the login offer."
    ),
    403: Answer('No permission (Z6): "not enough rights for this action".'),
    404: Answer('Not found: "not found".'),
    "default": Answer(
        'Another 4xx: "the action could not be completed"; 5xx or no answer: "temporarily '
        'unavailable". Actions are never retried: they may not be idempotent.'
    ),
}
