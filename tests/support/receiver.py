"""A webhook receiver for tests: a small ASGI app that records every request the fake Telegram
posts and answers as the test says, served by uvicorn in the test's own event loop (so a test can
hold a request open with an `asyncio.Event` and release it later)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

__all__ = ["Answer", "Posted", "Receiver", "serve_here"]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0  # before answering (longer than the fake's timeout: a timeout)


@dataclass(frozen=True, slots=True)
class Posted:
    update: dict[str, Any]
    secret: str | None

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def chat_id(self) -> int:
        if "message" in self.update:
            return int(self.update["message"]["chat"]["id"])
        return int(self.update["callback_query"]["from"]["id"])

    @property
    def text(self) -> str:
        return str(self.update["message"]["text"])


@dataclass
class Receiver:
    """Records what arrives; `answer` decides each answer, `hold` keeps a request open."""

    answer: Callable[[Posted], Answer] = lambda posted: Answer()
    hold: Callable[[Posted], asyncio.Event | None] = lambda posted: None
    posted: list[Posted] = field(default_factory=list)
    answered: list[tuple[Posted, int]] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        secret = headers.get(b"x-telegram-bot-api-secret-token")
        posted = Posted(json.loads(body), secret.decode() if secret is not None else None)
        async with self.changed:
            self.posted.append(posted)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.changed.notify_all()
        answer = self.answer(posted)
        try:
            held = self.hold(posted)
            if held is not None:
                await held.wait()
            if answer.delay_s:
                await asyncio.sleep(answer.delay_s)
        finally:
            async with self.changed:
                self.in_flight -= 1
                self.answered.append((posted, answer.status))
                self.changed.notify_all()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with self.changed:
            async with asyncio.timeout(timeout_s):
                await self.changed.wait_for(condition)

    def of_chat(self, chat_id: int) -> list[Posted]:
        return [p for p in self.posted if p.chat_id == chat_id]


@asynccontextmanager
async def serve_here(app: Any) -> AsyncIterator[str]:
    """Serve `app` in the running event loop; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    await task
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
