"""The fake Telegram Bot API as an ASGI app: `/bot{token}/{method}` plus a `/_test` control API.

The `/_test` API (inject a person's message, read any chat, stats, limits, reset) exists only
with a `test_api_secret`, and every call of it carries that secret in `X-Test-Api-Secret`
(`tggate_sandbox.hardening`); the web chat is the person's own side and needs none (`webchat.py`).

The Bot API side answers like the real server (status codes, `{"ok": ...}` bodies, error texts), so
aiogram 3 cannot tell the difference; every call is validated against `api.json` first. Most
calls are answered by a pure ASGI fast path in front of FastAPI (`botapi.py`: FastAPI's stack was
most of the fake's CPU under load), the others by a FastAPI route, both through `BotApi`.
Methods with behaviour: getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo (with the
webhook delivered as Telegram does it, `webhook.py`), sendMessage,
editMessageText, editMessageReplyMarkup, deleteMessage, sendChatAction, answerCallbackQuery,
setMyCommands, getMyCommands, deleteMyCommands, logOut, close. Any other method of `api.json` is
validated and then refused with 400 "Bad Request: method not supported by the fake", so a bot never
believes that something happened when it did not.
`GET /` is a web chat page for talking to the bot in a browser (see `webchat.py`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from tggate_sandbox.fakes.telegram.botapi import BotApi, BotApiFastPath, Handler, read_params
from tggate_sandbox.fakes.telegram.disconnect import unless_disconnected
from tggate_sandbox.fakes.telegram.inject import InjectBody, InjectFastPath, InjectManyBody
from tggate_sandbox.fakes.telegram.schema import ApiSchema
from tggate_sandbox.fakes.telegram.state import (
    FakeTelegram,
    FakeTelegramConfig,
    TestApiError,
    WebhookOptions,
)
from tggate_sandbox.fakes.telegram.validation import Validator
from tggate_sandbox.fakes.telegram.webchat import webchat_router
from tggate_sandbox.hardening import guard_test_api, sandbox_app

__all__ = ["create_app"]

_MAX_WAIT_S = 300.0


class PressBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_id: int
    message_id: int
    data: str


class BlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_id: int
    blocked: bool = True


class ConfigBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rate_limits: bool | None = None
    per_chat_per_s: float | None = Field(default=None, gt=0)
    global_per_s: float | None = Field(default=None, gt=0)
    group_per_minute: int | None = Field(default=None, gt=0)
    paid_per_s: float | None = Field(default=None, gt=0)


def create_app(
    *,
    token: str,
    bot_username: str = "tggate_bot",
    rate_limits: bool = False,
    per_chat_per_s: float = 1.0,
    global_per_s: float = 30.0,
    test_api_secret: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    webhook: WebhookOptions | None = None,
    first_update_id: int = 1,
) -> FastAPI:
    """Build a fake Bot API for one bot `token`; `clock` drives the rate limits and the webhook's
    retries. Without `test_api_secret` there is no `/_test` API. `first_update_id`: as Telegram's,
    update ids go on where a previous run stopped (Bot Logic remembers answers by update id for a
    day)."""
    schema = ApiSchema.load()
    telegram = FakeTelegram(
        token=token,
        bot_username=bot_username,
        update_kinds=[name for name in schema.types["Update"].fields if name != "update_id"],
        config=FakeTelegramConfig(
            rate_limits=rate_limits, per_chat_per_s=per_chat_per_s, global_per_s=global_per_s
        ),
        clock=clock,
        webhook=webhook,
        first_update_id=first_update_id,
    )
    handlers: dict[str, Handler] = {
        "getMe": telegram.get_me,
        "getUpdates": telegram.get_updates,
        "setWebhook": telegram.set_webhook,
        "deleteWebhook": telegram.delete_webhook,
        "getWebhookInfo": telegram.get_webhook_info,
        "logOut": telegram.log_out,
        "close": telegram.log_out,
        "sendMessage": telegram.send_message,
        "editMessageText": telegram.edit_message_text,
        "editMessageReplyMarkup": telegram.edit_message_reply_markup,
        "deleteMessage": telegram.delete_message,
        "sendChatAction": telegram.send_chat_action,
        "answerCallbackQuery": telegram.answer_callback_query,
        "setMyCommands": telegram.set_my_commands,
        "getMyCommands": telegram.get_my_commands,
        "deleteMyCommands": telegram.delete_my_commands,
    }

    app = sandbox_app(
        title="tggate fake Telegram Bot API", version=schema.version, app_class=FakeTelegramApp
    )
    app.state.telegram = telegram

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await telegram.close()  # no webhook request outlives the server

    app.router.lifespan_context = lifespan

    @app.exception_handler(TestApiError)
    async def test_api_error(request: Request, error: TestApiError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    api = BotApi(
        token=token,
        schema=schema,
        validator=Validator(schema),
        handlers=handlers,
        count_call=telegram.count_call,
    )

    # Out of the schema: one route for two methods, and the Bot API has its own (api.json).
    # BotApiFastPath answers GET and POST before they get here (botapi.py); the route stays for
    # what it answered besides: 405 to any other method, calls under a root_path.
    @app.api_route("/bot{bot_token}/{method}", methods=["GET", "POST"], include_in_schema=False)
    async def bot_api(bot_token: str, method: str, request: Request) -> JSONResponse:
        status, content = await api.answer(
            bot_token, method, lambda: read_params(request), request.receive
        )
        return JSONResponse(content, status_code=status)

    app.include_router(webchat_router(telegram))
    if test_api_secret is not None:
        app.include_router(
            _test_router(telegram), dependencies=[Depends(guard_test_api(test_api_secret))]
        )
        app.front = InjectFastPath(app.front, secret=test_api_secret, telegram=telegram)
    app.front = BotApiFastPath(app.front, api=api)
    return app


class FakeTelegramApp(FastAPI):
    """FastAPI, behind `front`: pure ASGI fast paths that answer the hot calls (botapi.py,
    inject.py) before any of FastAPI's own work per request (its telemetry check, middleware,
    routing), and hand everything else to FastAPI. They add hardening's headers themselves."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.front: ASGIApp = super().__call__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.front(scope, receive, send)


def _test_router(telegram: FakeTelegram) -> APIRouter:
    """Plays every person at once and controls the fake: tests only, behind the secret."""
    router = APIRouter(prefix="/_test", tags=["test"])

    @router.post("/inject")
    async def inject(body: InjectBody) -> JSONResponse:
        [result] = await telegram.inject([body.to_message()])
        return JSONResponse(result)

    @router.post("/inject_many")
    async def inject_many(body: InjectManyBody) -> JSONResponse:
        return JSONResponse(await telegram.inject([m.to_message() for m in body.messages]))

    @router.post("/press")
    async def press(body: PressBody) -> JSONResponse:
        return JSONResponse(await telegram.press(body.chat_id, body.message_id, body.data))

    @router.post("/block")
    async def block(body: BlockBody) -> JSONResponse:
        await telegram.block(body.chat_id, blocked=body.blocked)
        return JSONResponse({"chat_id": body.chat_id, "blocked": body.blocked})

    @router.get("/chats")
    async def chats() -> JSONResponse:
        return JSONResponse(telegram.chats())

    @router.get("/chats/{chat_id}/messages")
    async def chat_messages(chat_id: int) -> JSONResponse:
        return JSONResponse(telegram.messages(chat_id))

    @router.get("/callbacks")
    async def callbacks() -> JSONResponse:
        return JSONResponse(telegram.callback_queries())

    @router.get("/stats")
    async def stats() -> JSONResponse:
        return JSONResponse(telegram.stats())

    @router.get("/webhook")
    async def webhook() -> JSONResponse:
        """The webhook delivery's record: requests, peak in flight, attempts per update."""
        return JSONResponse(telegram.webhook_stats())

    @router.post("/config")
    async def configure(body: ConfigBody) -> JSONResponse:
        await telegram.configure(
            rate_limits=body.rate_limits,
            per_chat_per_s=body.per_chat_per_s,
            global_per_s=body.global_per_s,
            group_per_minute=body.group_per_minute,
            paid_per_s=body.paid_per_s,
        )
        return JSONResponse(telegram.config_json())

    @router.post("/reset")
    async def reset() -> JSONResponse:
        await telegram.reset()
        return JSONResponse({"ok": True})

    @router.get("/wait")
    async def wait(
        request: Request,
        chat_id: int,
        count: int = Query(default=1, ge=0),
        timeout_s: float = Query(default=10.0, ge=0, le=_MAX_WAIT_S, alias="timeout"),
        after: int = Query(default=0, ge=0),
    ) -> JSONResponse:
        answer = await unless_disconnected(
            request.receive,
            telegram.wait_for_bot_messages(chat_id, count=count, timeout_s=timeout_s, after=after),
        )
        messages, complete = answer if answer is not None else ([], False)
        if complete:
            return JSONResponse(messages)
        # Issue 9: a 4xx says what went wrong; what did come is still there for the test.
        detail = f"{len(messages)} of the {count} bot messages wanted came within {timeout_s} s"
        return JSONResponse({"detail": detail, "messages": messages}, status_code=408)

    return router
