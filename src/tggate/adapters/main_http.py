"""The Main module over HTTP (SPEC §5.3): actions and notifications with a Bearer token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tggate.adapters.http_base import JsonHttp
from tggate.core.ports import ActionDone, ActionResult, ModuleUnavailable, Notification

__all__ = ["HttpMainModule"]

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
        return ActionDone(status=answer.status, data=answer.body)

    async def notifications(
        self, *, access_token: str
    ) -> Sequence[Notification] | ActionDone | ModuleUnavailable:
        answer = await self._http.request("GET", "/notification", headers=_bearer(access_token))
        if answer is None:
            return ModuleUnavailable(_NAME, "no answer")
        if answer.status != 200:
            return ActionDone(status=answer.status, data=answer.body)
        if not isinstance(answer.body, list):
            return ModuleUnavailable(_NAME, "/notification did not return a list")
        found: list[Notification] = []
        for item in answer.body:
            if isinstance(item, dict) and isinstance(item.get("text"), str) and "id" in item:
                found.append(
                    Notification(
                        id=str(item["id"]),
                        text=item["text"],
                        created_at=str(item.get("created_at", "")),
                    )
                )
        return found

    async def delete_notifications(
        self, *, access_token: str, ids: Sequence[str]
    ) -> ActionDone | ModuleUnavailable | None:
        answer = await self._http.request(
            "DELETE", "/notification", headers=_bearer(access_token), json={"ids": list(ids)}
        )
        if answer is None:
            return ModuleUnavailable(_NAME, "no answer")
        if answer.status in (200, 204):
            return None
        return ActionDone(status=answer.status, data=answer.body)
