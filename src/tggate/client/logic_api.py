"""`LogicApi` over HTTP (SPEC §5.1), through Nginx, on one injected aiohttp session.

Requests and answers are the models of `tggate.contract.logic`, the ones Bot Logic's app uses;
answers are parsed straight from the body's bytes (pydantic's own JSON parser, no dict between).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from tggate.contract.logic import (
    AckAnswer,
    AckRequest,
    CommandRequest,
    CycleRequest,
    LeaseAnswer,
    LeaseRequest,
    MessagesAnswer,
    RepliesAnswer,
    message_of,
    reply_of,
)
from tggate.core.ports import OutboxKind, OutboxMessage
from tggate.core.replies import ChatReply
from tggate.core.texts import Language

from .base import LogicRejected, LogicUnavailable

__all__ = ["HttpLogicApi"]

# 409: "update in progress" (another replica is on it); 408/425/429: come back later.
_TRANSIENT = frozenset({408, 409, 425, 429})

# The cycle endpoints, by the kind of the messages they hand out.
_CYCLE_PATHS: Final = {
    OutboxKind.LOGIN: "/v1/cycles/login",
    OutboxKind.NOTIFICATION: "/v1/cycles/notifications",
}

_A = TypeVar("_A", bound=BaseModel)


class HttpLogicApi:
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
        self._headers = {"X-Internal-Token": internal_token, "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, *, base_url: str, internal_token: str, timeout_s: float, max_connections: int = 100
    ) -> AsyncIterator[HttpLogicApi]:
        """A client with its own session, closed on exit."""
        connector = aiohttp.TCPConnector(limit=max_connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield cls(
                session, base_url=base_url, internal_token=internal_token, timeout_s=timeout_s
            )

    async def _post(self, path: str, body: BaseModel, answer: type[_A]) -> _A:
        try:
            async with self._session.post(
                self._base_url + path,
                data=body.model_dump_json(),
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                status = response.status
                if status >= 500 or status in _TRANSIENT:
                    raise LogicUnavailable(f"{path} answered {status}")
                if status >= 400:
                    raise LogicRejected(status, f"{path}: {(await response.text())[:200]}")
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise LogicUnavailable(f"{path}: {type(error).__name__}") from None
        try:
            return answer.model_validate_json(raw)
        except ValidationError:
            raise LogicRejected(status, f"{path}: unexpected answer") from None

    async def command(
        self,
        *,
        update_id: int,
        chat_id: int,
        command: str,
        args: dict[str, str],
        text: str,
        language: Language,
    ) -> Sequence[ChatReply]:
        # model_construct: these values come from the client's own parser; Bot Logic validates.
        body = CommandRequest.model_construct(
            update_id=update_id,
            chat_id=chat_id,
            command=command,
            args=args,
            text=text,
            language=language,
        )
        answer = await self._post("/v1/commands", body, RepliesAnswer)
        return [reply_of(reply) for reply in answer.replies]

    async def cycle(self, kind: OutboxKind, *, shard: int, shards: int) -> Sequence[OutboxMessage]:
        body = CycleRequest.model_construct(shard=shard, shards=shards)
        answer = await self._post(_CYCLE_PATHS[kind], body, MessagesAnswer)
        return [message_of(message) for message in answer.messages]

    async def ack(self, ids: Sequence[str]) -> None:
        await self._post("/v1/messages/ack", AckRequest.model_construct(ids=list(ids)), AckAnswer)

    async def lease(self, *, instance: str, ttl_s: float) -> bool:
        body = LeaseRequest.model_construct(instance=instance, ttl_s=ttl_s)
        return (await self._post("/v1/poller/lease", body, LeaseAnswer)).granted
