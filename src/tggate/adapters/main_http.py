"""The Main module over HTTP (docs/openapi/main.yaml): actions and notifications, Bearer token.

Notification bodies are built and read through the contract models (`tggate.contract.main`),
the same ones the document is generated from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from tggate.adapters.http_base import JsonHttp, misfit
from tggate.contract.main import (
    DELETE_NOTIFICATIONS,
    MAX_IDS_PER_DELETE,
    NOTIFICATIONS,
    NotificationIds,
    NotificationView,
)
from tggate.core.ports import ActionDone, ActionResult, ModuleUnavailable, Notification

__all__ = ["HttpMainModule"]

log = logging.getLogger("tggate.adapters.main")

_NAME = "main"


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


class HttpMainModule:
    """`MainModule` over HTTP. Nothing is retried: an action may not be idempotent."""

    def __init__(self, http: JsonHttp) -> None:
        self._http = http

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
        found: list[Notification] = []
        for item in body:
            # One by one: an item that does not fit stays at the module, the others are read.
            try:
                view = NotificationView.model_validate(item)
            except ValidationError as error:
                log.warning(
                    "%s: a notification does not fit docs/openapi/main.yaml, skipped: %s",
                    _NAME,
                    misfit(error),
                )
                continue
            found.append(Notification(id=view.id, text=view.text, created_at=view.created_at or ""))
        return found

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
