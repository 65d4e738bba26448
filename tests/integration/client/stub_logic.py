"""A stand-in Bot Logic (docs/contract.md#bot-logic) for the Telegram Client's tests: a small
FastAPI app that records what it receives and answers by the contract (the models of
tggate.contract.logic, which it reads requests and writes answers with). Not the real Bot Logic: no
Redis, no state machine; the test decides each answer. It runs under uvicorn in another thread, so
the shared record is guarded by a lock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from tggate.contract.logic import (
    ACK_ANSWER,
    LEASE_ANSWER,
    MESSAGES_ANSWER,
    REPLIES_ANSWER,
    AckRequest,
    CommandRequest,
    CycleRequest,
    LeaseRequest,
)
from tggate.core.ports import OutboxKind

INTERNAL_TOKEN = "client-tests-internal-token"

Json = dict[str, Any]


@dataclass
class LeaseTable:
    """The poller lease, shareable by several stubs (one per client instance)."""

    holder: str | None = None
    until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def grant(self, instance: str, ttl_s: float) -> bool:
        with self.lock:
            now = time.monotonic()
            if self.holder in (None, instance) or now >= self.until:
                self.holder, self.until = instance, now + ttl_s
                return True
            return False


def _set(event: threading.Event) -> threading.Event:
    event.set()
    return event


def echo(body: Json) -> list[Json]:
    return [{"chat_id": body["chat_id"], "text": f"echo {body['text']}", "buttons": []}]


@dataclass
class StubLogic:
    leases: LeaseTable = field(default_factory=LeaseTable)
    reply: Callable[[Json], list[Json]] = echo
    delay_s: Callable[[Json], float] = lambda body: 0.0
    # Commands are answered only while it is set: a test holds one in flight as long as it needs.
    answering: threading.Event = field(default_factory=lambda: _set(threading.Event()))
    # update_id → statuses to answer, one per request, before the real answer.
    failures: dict[int, list[int]] = field(default_factory=dict)
    # While set, commands are answered 200 "not done, offer it again" (the `retry` marker, as
    # Bot Logic answers while its Redis is down): the test clears it to let the answers through.
    not_done: threading.Event = field(default_factory=threading.Event)
    # By cycle path ("login", "notifications"): messages without their kind, which the path gives.
    outbox: dict[str, list[Json]] = field(
        default_factory=lambda: {"login": [], "notifications": []}
    )
    commands: list[Json] = field(default_factory=list)
    cycles: list[tuple[str, int, int]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    lease_requests: list[Json] = field(default_factory=list)
    unauthorized: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls_for(self, update_id: int) -> list[Json]:
        with self.lock:
            return [c for c in self.commands if c["update_id"] == update_id]

    def snapshot(self) -> list[Json]:
        with self.lock:
            return list(self.commands)


def create_stub_app(stub: StubLogic) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def internal_token(request: Request, call_next: Any) -> Any:
        if request.headers.get("X-Internal-Token") != INTERNAL_TOKEN:
            with stub.lock:
                stub.unauthorized += 1
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        return await call_next(request)

    @app.post("/v1/commands")
    async def commands(request: Request) -> JSONResponse:
        body = CommandRequest.model_validate_json(await request.body()).model_dump()
        with stub.lock:
            stub.commands.append(body)
            pending = stub.failures.get(body["update_id"])
            status = pending.pop(0) if pending else None
        if status is not None:
            return JSONResponse({"detail": "scripted failure"}, status_code=status)
        if stub.not_done.is_set():
            unavailable = {"chat_id": body["chat_id"], "text": "temporarily unavailable"}
            return _answer(REPLIES_ANSWER, {"replies": [unavailable], "retry": True})
        delay = stub.delay_s(body)
        if delay:
            await asyncio.sleep(delay)
        if not stub.answering.is_set():
            await asyncio.to_thread(stub.answering.wait)
        return _answer(REPLIES_ANSWER, {"replies": stub.reply(body)})

    @app.post("/v1/cycles/{path}")
    async def cycles(path: str, request: Request) -> JSONResponse:
        body = CycleRequest.model_validate_json(await request.body())
        shard, shards = body.shard, body.shards
        kind = OutboxKind.LOGIN if path == "login" else OutboxKind.NOTIFICATION
        with stub.lock:
            stub.cycles.append((path, shard, shards))
            messages = [
                {**m, "kind": kind} for m in stub.outbox[path] if m["chat_id"] % shards == shard
            ]
        return _answer(MESSAGES_ANSWER, {"messages": messages})

    @app.post("/v1/messages/ack")
    async def ack(request: Request) -> JSONResponse:
        ids = AckRequest.model_validate_json(await request.body()).ids
        with stub.lock:
            stub.acked.extend(ids)
            for path, messages in stub.outbox.items():
                stub.outbox[path] = [m for m in messages if m["id"] not in ids]
        return _answer(ACK_ANSWER, {"acknowledged": len(ids)})

    @app.post("/v1/poller/lease")
    async def lease(request: Request) -> JSONResponse:
        body = LeaseRequest.model_validate_json(await request.body())
        with stub.lock:
            stub.lease_requests.append(body.model_dump())
        return _answer(LEASE_ANSWER, {"granted": stub.leases.grant(body.instance, body.ttl_s)})

    return app


def _answer(adapter: TypeAdapter[Any], answer: Json) -> JSONResponse:
    """The answer, checked against the contract first: the stub cannot drift from it."""
    return JSONResponse(adapter.dump_python(adapter.validate_python(answer), mode="json"))
