"""The Main module over HTTP (docs/openapi/main.yaml): actions and notifications, Bearer token.

Notification bodies are built and read through the contract models (`tggate.contract.main`),
the same ones the document is generated from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tggate.adapters.http_base import JsonHttp, misfit
from tggate.contract.main import (
    DELETE_NOTIFICATIONS,
    FEED_LIMIT,
    MAX_IDS_PER_DELETE,
    NOTIFICATION_FEED,
    NOTIFICATIONS,
    FeedItemView,
    NotificationIds,
    NotificationView,
)
from tggate.core.ports import (
    ActionDone,
    ActionResult,
    FeedNotification,
    FeedPage,
    ModuleUnavailable,
    Notification,
)

__all__ = ["HttpMainModule"]

log = logging.getLogger("tggate.adapters.main")

_NAME = "main"

_View = TypeVar("_View", bound=BaseModel)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


class HttpMainModule:
    """`MainModule` and `NotificationFeed` over HTTP. Nothing is retried: an action may not be
    idempotent, and a feed page not read is asked for again next tick."""

    def __init__(self, http: JsonHttp, *, service_token: str | None = None) -> None:
        self._http = http
        # The feed's credential (bulk mode); only ever in the Authorization header.
        self._service_token = service_token

    async def call(
        self, *, method: str, path: str, access_token: str, query: Mapping[str, str] | None = None
    ) -> ActionResult:
        answer = await self._http.request(
            method, path, headers=_bearer(access_token), params=dict(query) if query else None
        )
        if answer is None:
            return ModuleUnavailable(_NAME, "no answer")
        return ActionDone(status=answer.status, data=answer.json())

    async def notifications(
        self, *, access_token: str
    ) -> Sequence[Notification] | ActionDone | ModuleUnavailable:
        answer = await self._http.request(
            NOTIFICATIONS.method, NOTIFICATIONS.path, headers=_bearer(access_token)
        )
        if answer is None:
            return ModuleUnavailable(_NAME, "no answer")
        body = answer.json()
        if answer.status != 200:
            return ActionDone(status=answer.status, data=body)
        if not isinstance(body, list):
            return ModuleUnavailable(_NAME, f"{NOTIFICATIONS.path} did not return a list")
        # An item that does not fit stays at the module, the others are read.
        return [
            Notification(id=view.id, text=view.text, created_at=view.created_at or "")
            for view in _fitting(body, NotificationView, what="a notification")
        ]

    async def delete_notifications(
        self, *, access_token: str, ids: Sequence[str]
    ) -> ActionDone | ModuleUnavailable | None:
        for start in range(0, len(ids), MAX_IDS_PER_DELETE):
            body = NotificationIds(ids=list(ids[start : start + MAX_IDS_PER_DELETE]))
            answer = await self._http.request(
                DELETE_NOTIFICATIONS.method,
                DELETE_NOTIFICATIONS.path,
                headers=_bearer(access_token),
                body=body,
            )
            if answer is None:
                return ModuleUnavailable(_NAME, "no answer")
            if answer.status not in (200, 204):
                return ActionDone(status=answer.status, data=answer.json())
        return None

    async def notification_feed(
        self, *, after: str | None, limit: int
    ) -> FeedPage | ActionDone | ModuleUnavailable:
        if self._service_token is None:
            raise RuntimeError("the notification feed needs the service credential")
        params = {"limit": str(min(limit, FEED_LIMIT))}
        if after is not None:
            params["after"] = after
        answer = await self._http.request(
            NOTIFICATION_FEED.method,
            NOTIFICATION_FEED.path,
            headers=_bearer(self._service_token),
            params=params,
        )
        if answer is None:
            return ModuleUnavailable(_NAME, "no answer")
        body = answer.json()
        if answer.status != 200:
            return ActionDone(status=answer.status, data=body)
        items = body.get("notifications") if isinstance(body, dict) else None
        cursor = body.get("cursor") if isinstance(body, dict) else None
        if not isinstance(items, list) or not isinstance(cursor, str) or not cursor:
            return ModuleUnavailable(
                _NAME, f"{NOTIFICATION_FEED.path} did not answer a page (notifications, cursor)"
            )
        # An item that does not fit is skipped (the cursor passes it), the others are delivered.
        found = [
            FeedNotification(id=view.id, subject=view.subject, text=view.text)
            for view in _fitting(items, FeedItemView, what="a feed notification")
        ]
        return FeedPage(notifications=found, cursor=cursor)


def _fitting(items: list[Any], model: type[_View], *, what: str) -> list[_View]:
    """The items that fit `model`, read one by one; each misfit is logged and left out."""
    views: list[_View] = []
    for item in items:
        try:
            views.append(model.model_validate(item))
        except ValidationError as error:
            log.warning(
                "%s: %s does not fit docs/openapi/main.yaml, skipped: %s",
                _NAME,
                what,
                misfit(error),
            )
    return views
