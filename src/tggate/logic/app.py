"""Bot Logic's HTTP API (SPEC §5.1), a FastAPI app around one `BotLogic`."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from tggate.core.commands import MAX_TEXT, Usage, validate_args
from tggate.core.machine import Command, Reply
from tggate.core.ports import OutboxMessage
from tggate.core.texts import Text, language_of, say
from tggate.logic.metrics import LogicMetrics
from tggate.logic.service import BotLogic, UpdateInProgress, replies_json

__all__ = ["create_app"]

log = logging.getLogger("tggate.logic.api")

# Large enough for a 4096-character text in any script (JSON-escaped), small enough to refuse
# anything that is clearly not one Telegram command.
MAX_BODY_BYTES = 64 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandIn(_Strict):
    update_id: int = Field(ge=0, le=2**53)
    chat_id: int = Field(ge=-(2**53), le=2**53)
    command: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    args: dict[str, str] = Field(default_factory=dict, max_length=16)
    text: str = Field(default="", max_length=MAX_TEXT)
    language: str = Field(default="ru", max_length=16)

    @field_validator("args")
    @classmethod
    def _short_args(cls, args: dict[str, str]) -> dict[str, str]:
        for name, value in args.items():
            if len(name) > 32 or len(value) > 1024:
                raise ValueError(f"argument '{name[:32]}' is too long")
        return args


class CycleIn(_Strict):
    shard: int = Field(default=0, ge=0)
    shards: int = Field(default=1, ge=1, le=1024)

    @model_validator(mode="after")
    def _shard_in_range(self) -> CycleIn:
        if self.shard >= self.shards:
            raise ValueError("shard must be less than shards")
        return self


class AckIn(_Strict):
    ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=10_000)


class LeaseIn(_Strict):
    instance: str = Field(min_length=1, max_length=200)
    ttl_s: float = Field(default=15.0, ge=1, le=300)


# `async` on purpose: FastAPI runs a plain `def` dependency in a worker thread, and that hop on
# every request cost Bot Logic more CPU than the lookup itself (bench/README.md).
async def _get_logic(request: Request) -> BotLogic:
    logic: BotLogic = request.app.state.logic
    return logic


# Module level: FastAPI resolves these (string) annotations in the module's namespace.
Logic = Annotated[BotLogic, Depends(_get_logic)]


def _messages_json(messages: list[OutboxMessage]) -> dict[str, Any]:
    return {
        "messages": [
            {
                "id": m.id,
                "chat_id": m.chat_id,
                "text": m.text,
                "buttons": [[dict(b) for b in row] for row in m.buttons],
            }
            for m in messages
        ]
    }


class _Guard:
    """The outermost layer: refuses bodies over `limit` bytes with 413 before anything parses
    them, and turns any fault of ours (Redis down…) into a 503 with a message, never a trace."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            await _answer(scope, receive, send, 413, "request body too large")
            return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self._limit:
                raise _BodyTooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _answer(scope, receive, send, 413, "request body too large")
        except Exception as error:
            # The class name only: messages of client libraries may quote what they sent.
            log.error("request failed: %s", type(error).__name__)
            if not started:
                await _answer(scope, receive, send, 503, "temporarily unavailable")


class _BodyTooLarge(Exception):
    pass


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def create_app(
    *,
    open_logic: Callable[[], AbstractAsyncContextManager[BotLogic]],
    internal_token: str,
    metrics: LogicMetrics,
) -> FastAPI:
    """The app; `open_logic` builds the service inside the server's event loop at start-up
    (clients and sessions belong to a loop) and closes it at shutdown."""
    expected = internal_token.encode()

    async def require_internal_token(
        x_internal_token: Annotated[str | None, Header()] = None,
    ) -> None:
        given = (x_internal_token or "").encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "missing or wrong X-Internal-Token")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_logic() as logic:
            app.state.logic = logic
            yield

    app = FastAPI(title="tggate Bot Logic", lifespan=lifespan, docs_url=None, redoc_url=None)
    internal = [Depends(require_internal_token)]

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()[:10]
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.post("/v1/commands", dependencies=internal)
    async def commands(body: CommandIn, logic: Logic) -> Response:
        if not logic.table.knows(body.command):
            raise HTTPException(400, f"unknown command '{body.command}'")
        language = language_of(body.language)
        checked = validate_args(body.command, body.args, logic.table)
        if isinstance(checked, Usage):
            usage = logic.table.actions[checked.command].usage(language)
            reply = Reply(text=say(Text.USAGE, language, usage=usage))
            return JSONResponse({"replies": replies_json(body.chat_id, [reply])})
        command = Command(
            chat_id=body.chat_id, name=checked.command, args=checked.args, language=language
        )
        try:
            answer = await logic.handle_update(body.update_id, command)
        except UpdateInProgress:
            raise HTTPException(409, "this update_id is being processed; retry") from None
        return Response(answer, media_type="application/json")

    @app.post("/v1/cycles/login", dependencies=internal)
    async def login_cycle(logic: Logic, body: CycleIn | None = None) -> dict[str, Any]:
        body = body or CycleIn()
        return _messages_json(await logic.login_cycle(shard=body.shard, shards=body.shards))

    @app.post("/v1/cycles/notifications", dependencies=internal)
    async def notification_cycle(logic: Logic, body: CycleIn | None = None) -> dict[str, Any]:
        body = body or CycleIn()
        messages = await logic.notification_cycle(shard=body.shard, shards=body.shards)
        return _messages_json(messages)

    @app.post("/v1/messages/ack", dependencies=internal)
    async def ack(body: AckIn, logic: Logic) -> dict[str, int]:
        return {"acknowledged": await logic.acknowledge(body.ids)}

    @app.post("/v1/poller/lease", dependencies=internal)
    async def lease(body: LeaseIn, logic: Logic) -> dict[str, bool]:
        return {"granted": await logic.lease(instance=body.instance, ttl_s=body.ttl_s)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(logic: Logic) -> JSONResponse:
        if await logic.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "redis unreachable"}, status_code=503)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Guard, limit=MAX_BODY_BYTES)
    return app
