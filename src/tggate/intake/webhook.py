"""`tggate webhook set|info|delete`: the bot's webhook at Telegram (docs/webhook.md#switching).

setWebhook registers the URL with the secret token, `max_connections` and the update kinds tggate
handles; pending updates are kept (Telegram delivers them to the webhook) unless asked otherwise.
deleteWebhook goes back to getUpdates, pending updates kept the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import AiogramError

from tggate.client.telegram import ALLOWED_UPDATES

__all__ = ["WebhookAdmin", "WebhookError"]

_T = TypeVar("_T")


class WebhookError(Exception):
    """Telegram refused the request or could not be reached; the text names no token."""


class WebhookAdmin:
    """The webhook methods of the Bot API at `api_url`, for one bot."""

    def __init__(self, bot: Bot, *, request_timeout_s: int = 30) -> None:
        self._bot = bot
        self._token = bot.token
        self._request_timeout_s = request_timeout_s

    @classmethod
    def connect(cls, *, token: str, api_url: str) -> WebhookAdmin:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
        return cls(Bot(token, session=session))

    async def close(self) -> None:
        await self._bot.session.close()

    async def set(
        self, *, url: str, secret: str, max_connections: int, drop_pending_updates: bool
    ) -> None:
        await self._call(
            self._bot.set_webhook(
                url=url,
                secret_token=secret,
                max_connections=max_connections,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=drop_pending_updates,
                request_timeout=self._request_timeout_s,
            )
        )

    async def info(self) -> Mapping[str, Any]:
        """getWebhookInfo's fields that are set (the URL is "" with no webhook)."""
        info = await self._call(self._bot.get_webhook_info(request_timeout=self._request_timeout_s))
        return info.model_dump(exclude_none=True, mode="json")

    async def delete(self, *, drop_pending_updates: bool) -> None:
        await self._call(
            self._bot.delete_webhook(
                drop_pending_updates=drop_pending_updates,
                request_timeout=self._request_timeout_s,
            )
        )

    async def _call(self, request: Awaitable[_T]) -> _T:
        try:
            return await request
        except (AiogramError, aiohttp.ClientError, TimeoutError, OSError) as error:
            # Not chained: a logged traceback could quote the URL, which holds the bot token.
            text = f"{type(error).__name__}: {error}".replace(self._token, "<bot-token>")
            raise WebhookError(text[:500]) from None
