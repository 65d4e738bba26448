"""What `tggate webhook set|info|delete` does and says (docs/webhook.md#switching).

`delete` does not stop at deleteWebhook: updates the intake stored may still wait in Redis, and a
polling client started before they are handled could answer a chat's newer messages before its
older ones. So it waits until the queues are empty, and says when it is safe to start
`tggate client`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tggate.client.telegram import ALLOWED_UPDATES

from .base import Backlog, QueueUnavailable
from .webhook import WebhookAdmin, WebhookError

__all__ = ["WebhookRequest", "manage_webhook"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookRequest:
    action: str  # "set", "info" or "delete"
    url: str | None = None
    secret: str | None = None
    max_connections: int = 40
    drop_pending_updates: bool = False
    wait_s: float = 60.0


async def manage_webhook(
    admin: WebhookAdmin,
    request: WebhookRequest,
    *,
    backlog: Callable[[], Awaitable[Backlog]] | None,
    say: Callable[[str], None],
    warn: Callable[[str], None],
    every_s: float = 0.5,
) -> int:
    """Do `request`, telling what happened (`say`) and what went wrong (`warn`); the exit status
    (0 done, 1 refused or not finished)."""
    try:
        if request.action == "set":
            if not request.url or not request.secret:
                warn("tggate: set needs TGGATE_WEBHOOK_URL (or --url) and TGGATE_WEBHOOK_SECRET")
                return 1
            await admin.set(
                url=request.url,
                secret=request.secret,
                max_connections=request.max_connections,
                drop_pending_updates=request.drop_pending_updates,
            )
            kept = "dropped" if request.drop_pending_updates else "kept"
            say(
                f"webhook set: {request.url} (max_connections {request.max_connections}, "
                f"updates {', '.join(ALLOWED_UPDATES)}; pending updates {kept})"
            )
            say("a polling client gets 409 from now on: stop it (the intake replicas take over)")
        elif request.action == "delete":
            await admin.delete(drop_pending_updates=request.drop_pending_updates)
            kept = "dropped" if request.drop_pending_updates else "kept for getUpdates"
            say(f"webhook deleted (pending updates {kept})")
            if backlog is not None and not await _drained(
                backlog, request.wait_s, say, warn, every_s
            ):
                return 1
            say("safe to start `tggate client` (then stop the intake replicas)")
            return 0
        await _info(admin, backlog, say)
    except WebhookError as error:
        warn(f"tggate: Telegram refused: {error}")
        return 1
    return 0


async def _info(
    admin: WebhookAdmin,
    backlog: Callable[[], Awaitable[Backlog]] | None,
    say: Callable[[str], None],
) -> None:
    info = await admin.info()
    if not info.get("url"):
        say("no webhook: Telegram keeps updates for getUpdates (polling mode)")
    for name, value in info.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        say(f"{name}: {shown}")
    if backlog is not None:
        try:
            waiting = await backlog()
        except QueueUnavailable as error:
            say(f"intake backlog: unknown ({error})")
            return
        say(f"intake backlog: {waiting.updates} updates of {waiting.chats} chats")


async def _drained(
    backlog: Callable[[], Awaitable[Backlog]],
    wait_s: float,
    say: Callable[[str], None],
    warn: Callable[[str], None],
    every_s: float,
) -> bool:
    """Until the intake's queues are empty (True) or `wait_s` passed (False)."""
    deadline = time.monotonic() + wait_s
    shown: Backlog | None = None
    while True:
        try:
            waiting = await backlog()
        except QueueUnavailable as error:
            warn(f"tggate: cannot see the intake's queues: {error}")
            return False
        if waiting.updates == 0:
            return True
        if waiting != shown:
            say(f"waiting for the intake: {waiting.updates} updates of {waiting.chats} chats")
            shown = waiting
        if time.monotonic() >= deadline:
            warn(
                "tggate: the intake still has updates: keep its replicas running, and start "
                "`tggate client` once `tggate webhook info` shows an empty backlog"
            )
            return False
        await asyncio.sleep(every_s)
