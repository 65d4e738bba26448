"""Bot Logic's HTTP API (docs/contract.md#bot-logic), a FastAPI app around one `BotLogic`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from tggate.contract.logic import (
    MESSAGES_ANSWER,
    AckAnswer,
    AckRequest,
    CommandRequest,
    CycleRequest,
    LeaseAnswer,
    LeaseRequest,
    MessagesAnswer,
    ProbeAnswer,
    Problem,
    RepliesAnswer,
    ValidationProblem,
    messages_answer,
)
from tggate.core.commands import Usage, usage_line, validate_args
from tggate.core.machine import Command
from tggate.core.ports import OutboxMessage, TelegramUser
from tggate.core.replies import Reply
from tggate.core.texts import Text, language_of, say
from tggate.logic.commands import UpdateInProgress, answer_json
from tggate.logic.metrics import LogicMetrics
from tggate.logic.service import BotLogic

__all__ = ["create_app"]

log = logging.getLogger("tggate.logic.api")

# Large enough for a 4096-character text in any script (JSON-escaped), small enough to refuse
# anything that is clearly not one Telegram command.
MAX_BODY_BYTES = 64 * 1024

_JSON = "application/json"
_WRONG_TOKEN = "missing or wrong X-Internal-Token"

# Every path under it needs the internal token (docs/contract.md#bot-logic); the probes and
# /metrics do not.
_INTERNAL_PREFIX = "/v1/"
_INTERNAL_HEADER = b"x-internal-token"  # ASGI gives header names in lower case

# While Redis is unreachable at start, how often it is tried again (and said so).
STORE_RETRY_S = 5.0


# `async` on purpose: FastAPI runs a plain `def` dependency in a worker thread, and that hop on
# every request cost Bot Logic more CPU than the lookup itself (bench/README.md).
async def _get_logic(request: Request) -> BotLogic:
    logic: BotLogic = request.app.state.logic
    return logic


# Module level: FastAPI resolves these (string) annotations in the module's namespace.
Logic = Annotated[BotLogic, Depends(_get_logic)]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


# What every internal endpoint may answer besides its 200 (the OpenAPI of Bot Logic).
_INTERNAL_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("Missing or wrong X-Internal-Token."),
    413: _problem("The body is over 64 KiB."),
    422: {"model": ValidationProblem, "description": "The body does not match the schema."},
    503: _problem("Redis or another dependency of Bot Logic is unavailable; retry."),
}


def _messages_answer(messages: list[OutboxMessage]) -> Response:
    # Written here rather than by FastAPI, which would validate a large answer once more.
    return Response(MESSAGES_ANSWER.dump_json(messages_answer(messages)), media_type=_JSON)


class _Guard:
    """The outermost layer of every path but POST /v1/commands (`_LogicApp` checks that one
    the same way): refuses an internal call without the internal token with 401 and a
    body over `limit` bytes with 413, both before anything reads or parses the body (issue 9,
    finding 6), and turns any fault of ours (Redis down…) into a 503 with a message, never a
    trace."""

    def __init__(self, app: ASGIApp, *, limit: int, internal_token: bytes) -> None:
        self._app = app
        self._limit = limit
        self._internal_token = internal_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope["path"].startswith(_INTERNAL_PREFIX) and not hmac.compare_digest(
            headers.get(_INTERNAL_HEADER, b""), self._internal_token
        ):
            await _answer(scope, receive, send, 401, "missing or wrong X-Internal-Token")
            return
        declared = headers.get(b"content-length")
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


_COMMAND_REQUEST: Final = TypeAdapter(CommandRequest)
_CommandAnswer = Callable[[bytes], Awaitable[tuple[int, bytes]]]


class _LogicApp(FastAPI):
    """The FastAPI app, with POST /v1/commands answered before FastAPI's own layers (routing,
    dependency solving, its middleware and `_Guard`'s wrappers): a command then costs Bot Logic
    less CPU than a bare FastAPI handler doing two Redis round trips (issue 11,
    bench/README.md). The path makes `_Guard`'s checks itself, in the same order (the token,
    then the size, before the body is parsed; a fault of ours is a 503), and the declared
    route's (the same function makes them); the route documents the endpoint in the OpenAPI
    document."""

    commands_answer: _CommandAnswer | None = None
    internal_token: bytes = b""
    body_limit: int = MAX_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self.commands_answer
        if (
            answer is None
            or scope["type"] != "http"
            or scope["path"] != "/v1/commands"
            or scope["method"] != "POST"
        ):
            await super().__call__(scope, receive, send)
            return
        token = b""
        declared = None
        for name, value in scope["headers"]:
            if name == _INTERNAL_HEADER:
                token = value
            elif name == b"content-length":
                declared = value
        if not hmac.compare_digest(token, self.internal_token):
            await _send_json(send, 401, _detail(_WRONG_TOKEN))
            return
        limit = self.body_limit
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, _detail("request body too large"))
            return
        chunks = []
        seen = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _send_json(send, 413, _detail("request body too large"))
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            status, body = await answer(b"".join(chunks))
        except Exception as error:
            # As `_Guard`: the class name only, and a 503 with a message, never a trace.
            log.error("request failed: %s", type(error).__name__)
            await _send_json(send, 503, _detail("temporarily unavailable"))
            return
        await _send_json(send, status, body)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def create_app(
    *,
    open_logic: Callable[[], AbstractAsyncContextManager[BotLogic]],
    internal_token: str,
    metrics: LogicMetrics,
    store_retry_s: float = STORE_RETRY_S,
) -> FastAPI:
    """The app; `open_logic` builds the service inside the server's event loop at start-up
    (clients and sessions belong to a loop) and closes it at shutdown."""
    expected = internal_token.encode()

    def token_ok(given: bytes | None) -> bool:
        return hmac.compare_digest(given or b"", expected)

    async def require_internal_token(
        x_internal_token: Annotated[str | None, Header()] = None,
    ) -> None:
        # `_Guard` checks the token before the body is read; this declares the header in the
        # OpenAPI document (docs/openapi/logic.yaml) and checks it once more, should the app
        # ever be served without its guard.
        if not token_ok((x_internal_token or "").encode()):
            raise HTTPException(401, _WRONG_TOKEN)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_logic() as logic:
            app.state.logic = logic
            watch = asyncio.create_task(_watch_store(logic, retry_s=store_retry_s))
            try:
                await asyncio.wait({watch}, timeout=_FIRST_CHECK_S)  # said before "listening"
                yield
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch

    # No /openapi.json, /docs or /redoc: docs/openapi/logic.yaml is the document, written from
    # this app object by tggate.contract.openapi without serving it (issue 9, finding 6).
    app = _LogicApp(
        title="tggate Bot Logic",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    internal = [Depends(require_internal_token)]

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _problems(error.errors())}, status_code=422)

    @app.post(
        "/v1/commands",
        dependencies=internal,
        response_model=RepliesAnswer,
        responses={
            **_INTERNAL_ERRORS,
            400: _problem("A command the command table does not know."),
            409: _problem("This update_id is being processed by another request; retry."),
        },
    )
    async def commands(body: CommandRequest, logic: Logic) -> Response:
        """One recognised command (C6); idempotent by update_id."""
        status, answer = await command_answer(logic, body)
        return Response(answer, status_code=status, media_type=_JSON)

    async def command_answer(logic: BotLogic, body: CommandRequest) -> tuple[int, bytes]:
        if not logic.table.knows(body.command):
            return 400, _detail(f"unknown command '{body.command}'")
        language = language_of(body.language)
        checked = validate_args(body.command, body.args, logic.table)
        if isinstance(checked, Usage):
            # Built-in or action alike: the usage reply, never a 5xx (issue 9, finding 6).
            usage = usage_line(checked.command, logic.table, language)
            reply = Reply(text=say(Text.USAGE, language, usage=usage))
            return 200, answer_json(body.chat_id, [reply]).encode()
        user = body.telegram_user
        command = Command(
            chat_id=body.chat_id,
            name=checked.command,
            args=checked.args,
            language=language,
            telegram_user=None if user is None else TelegramUser(**user.model_dump()),
        )
        try:
            answer = await logic.handle_update(body.update_id, command)
        except UpdateInProgress:
            return 409, _detail("this update_id is being processed; retry")
        return 200, answer.encode()

    async def fast_command_answer(raw: bytes) -> tuple[int, bytes]:
        try:
            body = _COMMAND_REQUEST.validate_json(raw)
        except ValidationError as error:
            problems = _problems([{**e, "loc": ("body", *e["loc"])} for e in error.errors()])
            return 422, json.dumps({"detail": problems}).encode()
        logic: BotLogic = app.state.logic
        return await command_answer(logic, body)

    @app.post(
        "/v1/cycles/login",
        dependencies=internal,
        response_model=MessagesAnswer,
        responses=_INTERNAL_ERRORS,
    )
    async def login_cycle(logic: Logic, body: CycleRequest | None = None) -> Response:
        """One tick of the login-check timer (L1–L3)."""
        body = body or CycleRequest()
        return _messages_answer(await logic.login_cycle(shard=body.shard, shards=body.shards))

    @app.post(
        "/v1/cycles/notifications",
        dependencies=internal,
        response_model=MessagesAnswer,
        responses=_INTERNAL_ERRORS,
    )
    async def notification_cycle(logic: Logic, body: CycleRequest | None = None) -> Response:
        """One tick of the notification timer (N1–N3)."""
        body = body or CycleRequest()
        messages = await logic.notification_cycle(shard=body.shard, shards=body.shards)
        return _messages_answer(messages)

    @app.post(
        "/v1/messages/ack",
        dependencies=internal,
        response_model=AckAnswer,
        responses=_INTERNAL_ERRORS,
    )
    async def ack(body: AckRequest, logic: Logic) -> AckAnswer:
        """The client delivered these messages: they leave the outbox."""
        return {"acknowledged": await logic.acknowledge(body.ids)}

    @app.post(
        "/v1/poller/lease",
        dependencies=internal,
        response_model=LeaseAnswer,
        responses=_INTERNAL_ERRORS,
    )
    async def lease(body: LeaseRequest, logic: Logic) -> LeaseAnswer:
        """Grant or renew the poller lease: only its holder polls Telegram and runs the timers."""
        return {"granted": await logic.lease(instance=body.instance, ttl_s=body.ttl_s)}

    @app.get("/healthz", response_model=ProbeAnswer)
    async def healthz() -> ProbeAnswer:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ProbeAnswer,
        responses={503: {"model": ProbeAnswer, "description": "Redis is unreachable."}},
    )
    async def readyz(logic: Logic) -> JSONResponse:
        """Redis is reachable."""
        if await logic.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "redis unreachable"}, status_code=503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"description": "The Prometheus text format."}},
    )
    async def metrics_endpoint() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Guard, limit=MAX_BODY_BYTES, internal_token=expected)
    app.commands_answer = fast_command_answer
    app.internal_token = expected
    return app


def _detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()


def _problems(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """The first ten problems of a request, without the values (they may be tokens)."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors[:10]]


# How long start-up waits for the first Redis check, so its verdict comes before "listening".
_FIRST_CHECK_S = 3.0


async def _watch_store(logic: BotLogic, *, retry_s: float) -> None:
    """At start: Redis answers, or a loud error, then tries again every `retry_s` until it does
    (issue 9, finding 10: "listening" and nothing else hid an unreachable Redis). Meanwhile
    commands are answered "temporarily unavailable", other requests 503, and /readyz says "redis
    unreachable"."""
    if await logic.ready():
        log.info("Redis answers")
        return
    log.error(
        "Redis is unreachable (TGGATE_REDIS_URL): commands are answered 'temporarily "
        "unavailable', other requests 503, and /readyz says so until it answers; trying again "
        "every %g s",
        retry_s,
    )
    failures = 1
    while not await logic.ready():
        failures += 1
        if failures % 12 == 0:  # a reminder every minute or so, not a line per try
            log.error("Redis is still unreachable after %d tries", failures)
        await asyncio.sleep(retry_s)
    log.warning("Redis answers now, after %d tries: Bot Logic is ready", failures)
