"""`LogicApi` over HTTP (docs/contract.md#bot-logic), through Nginx, on keep-alive connections
(http.py).

Requests and answers are those of `tggate.contract.logic`, the ones Bot Logic's app uses; answers
are read straight from the body's bytes by their `TypeAdapter` (no model object per reply), a
command's by `read_replies`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Final, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from tggate.adapters.http_pool import JSON_HEADERS, HttpFailure, HttpPool
from tggate.contract.logic import (
    ACK_ANSWER,
    LEASE_ANSWER,
    MESSAGES_ANSWER,
    AckRequest,
    CycleRequest,
    LeaseRequest,
    message_of,
    read_replies,
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
    def __init__(self, pool: HttpPool, *, timeout_s: float) -> None:
        """`pool`: connections to Bot Logic that carry the internal token (see `open`)."""
        self._pool = pool
        self._timeout_s = timeout_s

    @classmethod
    @asynccontextmanager
    async def open(
        cls, *, base_url: str, internal_token: str, timeout_s: float, max_connections: int = 100
    ) -> AsyncIterator[HttpLogicApi]:
        """A client with its own connections, closed on exit."""
        pool = HttpPool(
            base_url,
            headers={"X-Internal-Token": internal_token, **JSON_HEADERS},
            max_connections=max_connections,
        )
        try:
            yield cls(pool, timeout_s=timeout_s)
        finally:
            await pool.aclose()

    async def _send(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The answer's status and body to a POST, or the failure its status says."""
        try:
            sent = await self._pool.post(path, body, timeout_s=self._timeout_s)
        except HttpFailure as error:
            raise LogicUnavailable(f"{path}: {error}") from None
        status, raw = sent.status, sent.body
        if status >= 500 or status in _TRANSIENT:
            raise LogicUnavailable(f"{path} answered {status}")
        if status >= 400:
            detail = raw[:200].decode("utf-8", errors="replace")
            raise LogicRejected(status, f"{path}: {detail}")
        return status, raw

    async def _post(self, path: str, body: BaseModel, answer: TypeAdapter[_T]) -> _T:
        status, raw = await self._send(path, body.model_dump_json().encode())
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
        # The one request per command: written and read by hand (orjson, `read_replies`), not
        # through the models, which were ~5% of the client's CPU (bench/README.md, "Profiles").
        # A request Bot Logic finds invalid is refused there (422), as one refused here was.
        path = "/v1/commands"
        body = orjson.dumps(
            {
                "update_id": update_id,
                "chat_id": chat_id,
                "command": command,
                "args": args,
                "text": text,
                "language": language,
                "telegram_user": None if telegram_user is None else asdict(telegram_user),
            }
        )
        status, raw = await self._send(path, body)
        try:
            replies, retry = read_replies(raw)
        except ValueError:
            raise LogicRejected(status, f"{path}: unexpected answer") from None
        if retry:
            # Not done, nothing recorded (Bot Logic's Redis is down): the update is kept and
            # offered again like any outage, and its replies, which only say so, are not the
            # answer (docs/contract.md#bot-logic).
            raise LogicUnavailable(f"{path}: not done, Bot Logic asks for it again")
        return replies

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
