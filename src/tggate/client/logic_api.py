"""`BotLogic` over HTTP (SPEC §5.1), through Nginx, on one injected aiohttp session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from pydantic import BaseModel, ValidationError

from .base import (
    Button,
    CommandButton,
    Cycle,
    Keyboard,
    Language,
    LogicRejected,
    LogicUnavailable,
    OutboxItem,
    Reply,
    UrlButton,
)

__all__ = ["HttpBotLogic"]

# 409: "update in progress" (another replica is on it); 408/425/429: come back later.
_TRANSIENT = frozenset({408, 409, 425, 429})


class _ButtonIn(BaseModel):
    text: str
    url: str | None = None
    command: str | None = None


class _ReplyIn(BaseModel):
    chat_id: int
    text: str
    buttons: list[list[_ButtonIn]] | None = None


class _CommandAnswer(BaseModel):
    replies: list[_ReplyIn]


class _MessageIn(BaseModel):
    id: str | int
    chat_id: int
    text: str
    buttons: list[list[_ButtonIn]] | None = None


class _CycleAnswer(BaseModel):
    messages: list[_MessageIn]


class _LeaseAnswer(BaseModel):
    granted: bool


def _keyboard(rows: list[list[_ButtonIn]] | None) -> Keyboard:
    keyboard: list[tuple[Button, ...]] = []
    for row in rows or ():
        buttons: list[Button] = []
        for b in row:
            if b.url:
                buttons.append(UrlButton(text=b.text, url=b.url))
            elif b.command:
                buttons.append(CommandButton(text=b.text, command=b.command))
        if buttons:
            keyboard.append(tuple(buttons))
    return tuple(keyboard)


class HttpBotLogic:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        internal_token: str,
        timeout_s: float,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {"X-Internal-Token": internal_token}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, *, base_url: str, internal_token: str, timeout_s: float, max_connections: int = 100
    ) -> AsyncIterator[HttpBotLogic]:
        """A client with its own session, closed on exit."""
        connector = aiohttp.TCPConnector(limit=max_connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield cls(
                session, base_url=base_url, internal_token=internal_token, timeout_s=timeout_s
            )

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            async with self._session.post(
                self._base_url + path, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                status = response.status
                if status >= 500 or status in _TRANSIENT:
                    raise LogicUnavailable(f"{path} answered {status}")
                if status >= 400:
                    raise LogicRejected(status, f"{path}: {(await response.text())[:200]}")
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise LogicRejected(status, f"{path}: the answer is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise LogicUnavailable(f"{path}: {type(error).__name__}") from None

    async def command(
        self,
        *,
        update_id: int,
        chat_id: int,
        command: str,
        args: dict[str, str],
        text: str,
        language: Language,
    ) -> Sequence[Reply]:
        body = {
            "update_id": update_id,
            "chat_id": chat_id,
            "command": command,
            "args": args,
            "text": text,
            "language": language,
        }
        raw = await self._post("/v1/commands", body)
        try:
            answer = _CommandAnswer.model_validate(raw)
        except ValidationError:
            raise LogicRejected(200, "/v1/commands: unexpected answer") from None
        return [Reply(r.chat_id, r.text, _keyboard(r.buttons)) for r in answer.replies]

    async def cycle(self, kind: Cycle, *, shard: int, shards: int) -> Sequence[OutboxItem]:
        path = f"/v1/cycles/{kind}"
        raw = await self._post(path, {"shard": shard, "shards": shards})
        try:
            answer = _CycleAnswer.model_validate(raw)
        except ValidationError:
            raise LogicRejected(200, f"{path}: unexpected answer") from None
        return [
            OutboxItem(str(m.id), m.chat_id, m.text, _keyboard(m.buttons)) for m in answer.messages
        ]

    async def ack(self, ids: Sequence[str]) -> None:
        await self._post("/v1/messages/ack", {"ids": list(ids)})

    async def lease(self, *, instance: str, ttl_s: float) -> bool:
        raw = await self._post("/v1/poller/lease", {"instance": instance, "ttl_s": ttl_s})
        try:
            return _LeaseAnswer.model_validate(raw).granted
        except ValidationError:
            raise LogicRejected(200, "/v1/poller/lease: unexpected answer") from None
