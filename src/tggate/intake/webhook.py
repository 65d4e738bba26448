"""`tggate webhook set|info|delete`: the bot's webhook at Telegram (docs/webhook.md#switching).

setWebhook registers the URL with the secret token, `max_connections` and the update kinds tggate
handles; pending updates are kept (Telegram delivers them to the webhook) unless asked otherwise.
deleteWebhook goes back to getUpdates, pending updates kept the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from tggate.client.base import TelegramFailure
from tggate.client.telegram import ALLOWED_UPDATES, HttpTelegramApi

__all__ = ["WebhookAdmin", "WebhookError"]


class WebhookError(Exception):
    """Telegram refused the request or could not be reached; the text names no token."""


class WebhookAdmin:
    """The webhook methods of the Bot API, for one bot, on the client's own HTTP connections."""

    def __init__(self, telegram: HttpTelegramApi) -> None:
        self._telegram = telegram

    @classmethod
    @asynccontextmanager
    async def open(cls, *, token: str, api_url: str) -> AsyncIterator[WebhookAdmin]:
        async with HttpTelegramApi.open(token=token, api_url=api_url, max_connections=2) as api:
            yield cls(api)

    async def set(
        self, *, url: str, secret: str, max_connections: int, drop_pending_updates: bool
    ) -> None:
        await self._call(
            "setWebhook",
            {
                "url": url,
                "secret_token": secret,
                "max_connections": max_connections,
                "allowed_updates": ALLOWED_UPDATES,
                "drop_pending_updates": drop_pending_updates,
            },
        )

    async def info(self) -> Mapping[str, Any]:
        """getWebhookInfo's fields that are set (the URL is "" with no webhook)."""
        info = await self._call("getWebhookInfo", {})
        if not isinstance(info, dict):
            raise WebhookError("getWebhookInfo answered something other than an object")
        return {key: value for key, value in info.items() if value is not None}

    async def delete(self, *, drop_pending_updates: bool) -> None:
        await self._call("deleteWebhook", {"drop_pending_updates": drop_pending_updates})

    async def _call(self, method: str, params: Mapping[str, object]) -> Any:
        try:
            return await self._telegram.call(method, params)
        except TelegramFailure as error:
            # The failure's text already has the token scrubbed (HttpTelegramApi).
            raise WebhookError(f"{method}: {error}"[:500]) from None
