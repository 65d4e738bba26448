"""`LogicApi` over HTTP (docs/contract.md#bot-logic), through Nginx, on one injected aiohttp
session.

Requests and answers are those of `tggate.contract.logic`, the ones Bot Logic's app uses; answers
are read straight from the body's bytes by their `TypeAdapter` (no model object per reply).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Final, TypeVar

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError

from tggate.contract.logic import (
    ACK_ANSWER,
    LEASE_ANSWER,
    MESSAGES_ANSWER,
    REPLIES_ANSWER,
    AckRequest,
    CommandRequest,
    CycleRequest,
    LeaseRequest,
    chat_reply_of,
    message_of,
)
from tggate.core.ports import OutboxKind, OutboxMessage, TelegramUser
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

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


def _request(model: type[_M], path: str, **values: object) -> _M:
    try:
        return model.model_validate(values)
    except ValidationError:
        # What Bot Logic would refuse with a 422 is not sent at all.
        raise LogicRejected(422, f"{path}: not a valid request") from None


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

    async def _post(self, path: str, body: BaseModel, answer: TypeAdapter[_T]) -> _T:
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
            return answer.validate_json(raw)
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
        telegram_user: TelegramUser | None = None,
    ) -> Sequence[ChatReply]:
        path = "/v1/commands"
        body = _request(
            CommandRequest,
            path,
            update_id=update_id,
            chat_id=chat_id,
            command=command,
            args=args,
            text=text,
            language=language,
            telegram_user=None if telegram_user is None else asdict(telegram_user),
        )
        answer = await self._post(path, body, REPLIES_ANSWER)
        return [chat_reply_of(reply) for reply in answer["replies"]]

    async def cycle(self, kind: OutboxKind, *, shard: int, shards: int) -> Sequence[OutboxMessage]:
        path = _CYCLE_PATHS[kind]
        body = _request(CycleRequest, path, shard=shard, shards=shards)
        answer = await self._post(path, body, MESSAGES_ANSWER)
        return [message_of(message) for message in answer["messages"]]

    async def ack(self, ids: Sequence[str]) -> None:
        path = "/v1/messages/ack"
        await self._post(path, _request(AckRequest, path, ids=list(ids)), ACK_ANSWER)

    async def lease(self, *, instance: str, ttl_s: float) -> bool:
        path = "/v1/poller/lease"
        body = _request(LeaseRequest, path, instance=instance, ttl_s=ttl_s)
        return (await self._post(path, body, LEASE_ANSWER))["granted"]
