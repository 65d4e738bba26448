"""The webhook's HTTP side, a bare ASGI app (docs/webhook.md#the-webhook): Telegram's `POST`s
in, stored in Redis before the 200 goes out, so Telegram's own retry covers a crash before the
write; and `/healthz`, `/readyz`, `/metrics`.

Checked in this order, before anything is read or stored: the address (403, when an allow-list
is on), the secret token (401), the size (413). A repeat of an update_id Telegram delivered
before is answered 200 and dropped; a chat with too many updates waiting gets 429 and
`Retry-After`, and Redis being away 503: Telegram delivers those again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Message, Receive, Scope, Send

from tggate.client.base import OtherUpdate
from tggate.client.telegram import incoming_from_json

from .base import QueueUnavailable, Stored
from .networks import AddressRules
from .service import Intake

__all__ = ["SECRET_HEADER", "WEBHOOK_PATH", "IntakeApp"]

logger = logging.getLogger("tggate.intake.app")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET_HEADER = SECRET_HEADER.lower().encode()
# How long Telegram should wait before it delivers a refused update again.
_FULL_RETRY_AFTER_S = 5
_UNAVAILABLE_RETRY_AFTER_S = 1


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class IntakeApp:
    """The ASGI app of one replica. Its lifespan opens the `Intake` (and with `work`, runs its
    chat workers and timers until the server stops)."""

    def __init__(
        self,
        *,
        open_intake: Callable[[], AbstractAsyncContextManager[Intake]],
        secret: str,
        rules: AddressRules | None = None,
        max_body_bytes: int = 256 * 1024,
        work: bool = True,
    ) -> None:
        if not secret:
            raise ValueError("the webhook needs a secret token")
        self._open_intake = open_intake
        self._secret = _digest(secret.encode())
        self._rules = rules or AddressRules()
        self._max_body_bytes = max_body_bytes
        self._work = work
        self._intake: Intake | None = None
        self._worker: asyncio.Task[None] | None = None

    # ---- ASGI ----

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == WEBHOOK_PATH:
            if method != "POST":
                await _answer(send, 405, {"detail": "POST only"}, headers=[(b"allow", b"POST")])
                return
            await self._webhook(scope, receive, send)
        elif method not in ("GET", "HEAD"):
            await _answer(send, 405, {"detail": "GET only"}, headers=[(b"allow", b"GET")])
        elif path == "/healthz":
            # Not alive once its work stopped by itself: the updates it takes would only wait.
            failed = self._worker is not None and self._worker.done()
            await _answer(send, 503 if failed else 200, {"status": "failed" if failed else "ok"})
        elif path == "/readyz":
            ready = self._intake is not None and await self._intake.ready()
            await _answer(send, 200 if ready else 503, {"status": "ok" if ready else "no redis"})
        elif path == "/metrics" and self._intake is not None:
            body = generate_latest(self._intake.metrics.registry)
            await _send(send, 200, body, CONTENT_TYPE_LATEST.encode())
        else:
            await _answer(send, 404, {"detail": "not found"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with contextlib.AsyncExitStack() as stack:
            try:
                self._intake = await stack.enter_async_context(self._open_intake())
                if self._work:
                    self._worker = await stack.enter_async_context(_running(self._intake))
            except Exception as error:
                logger.error("the intake did not start: %s", type(error).__name__)
                await send({"type": "lifespan.startup.failed", "message": type(error).__name__})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        self._intake = self._worker = None
        await send({"type": "lifespan.shutdown.complete"})

    # ---- the webhook ----

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            result, status, detail = await self._take(scope, receive)
        except _Disconnected:
            return  # Telegram gave up on this request; it delivers the update again
        if self._intake is not None:
            self._intake.metrics.requests.labels(result).inc()
        headers: list[tuple[bytes, bytes]] = []
        if status in (429, 503):
            after = _FULL_RETRY_AFTER_S if status == 429 else _UNAVAILABLE_RETRY_AFTER_S
            headers.append((b"retry-after", str(after).encode()))
        if status == 200:
            await _send(send, 200, b"", b"application/json")
        else:
            await _answer(send, status, {"detail": detail}, headers=headers)

    async def _take(self, scope: Scope, receive: Receive) -> tuple[str, int, str]:
        """(result for the metrics, HTTP status, detail) of one webhook request."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        client = scope.get("client")
        forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
        if not self._rules.allows(client[0] if client else None, forwarded):
            return "forbidden", 403, "this address may not deliver updates"
        given = next((v for k, v in headers if k == _SECRET_HEADER), b"")
        # Digests of equal length compared in constant time: neither the secret's content
        # nor its length shows in how long a wrong guess takes.
        if not hmac.compare_digest(_digest(given), self._secret):
            return "unauthorized", 401, f"missing or wrong {SECRET_HEADER}"
        try:
            body = await self._body(headers, receive)
        except _TooLarge:
            return "too_large", 413, f"the body is over {self._max_body_bytes} bytes"
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            update = incoming_from_json(data)
        except (ValueError, RecursionError):
            return "malformed", 400, "not a Telegram update"
        if isinstance(update, OtherUpdate):
            return "ignored", 200, ""  # nothing tggate answers (allowed_updates asks for none)
        if self._intake is None:
            return "unavailable", 503, "starting or stopping"
        try:
            stored = await self._intake.accept(update)
        except QueueUnavailable as error:
            logger.warning("could not store update %s: %s", update.update_id, error)
            return "unavailable", 503, "could not store the update; deliver it again"
        if stored is Stored.FULL:
            return "full", 429, "too many updates of this chat are waiting; deliver it later"
        return ("repeat" if stored is Stored.REPEAT else "stored"), 200, ""

    async def _body(self, headers: list[tuple[bytes, bytes]], receive: Receive) -> bytes:
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


@contextlib.asynccontextmanager
async def _running(intake: Intake) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(intake.run(stop), name="tggate-intake")

    def ended(task: asyncio.Task[None]) -> None:
        if not stop.is_set():
            failure = None if task.cancelled() else task.exception()
            logger.error("the intake's work stopped: %s", type(failure).__name__)

    task.add_done_callback(ended)
    try:
        yield task
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


Headers = Sequence[tuple[bytes, bytes]]


async def _answer(send: Send, status: int, body: dict[str, Any], *, headers: Headers = ()) -> None:
    await _send(send, status, json.dumps(body).encode(), b"application/json", headers)


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Headers = ()
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
