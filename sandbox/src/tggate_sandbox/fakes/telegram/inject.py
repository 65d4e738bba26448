"""A person's messages, injected through the test API: the bodies, and a fast path for them.

`POST /_test/inject_many` is how a benchmark plays its people (bench/e2e.py: one call per
command when paced), so under load its cost in FastAPI's stack (telemetry check, middleware,
routing, dependency solving) was a third of the fake's CPU, on the cores the bot being measured
runs on. `InjectFastPath` answers that call in front of FastAPI (app.py, `FakeTelegramApp`) when
everything is in order (the right secret, a JSON body that `InjectManyBody` accepts) exactly as
the route would; anything else goes on to FastAPI with the body handed over unread, so every
refusal (401, 403, 422) is FastAPI's.
"""

from __future__ import annotations

import json
import secrets

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tggate_sandbox.fakes.telegram.botapi import json_bytes
from tggate_sandbox.fakes.telegram.state import FakeTelegram, InjectedMessage
from tggate_sandbox.hardening import TEST_API_HEADER, send_json

__all__ = ["INJECT_MANY_PATH", "InjectBody", "InjectFastPath", "InjectManyBody"]

INJECT_MANY_PATH = "/_test/inject_many"
_SECRET_HEADER = TEST_API_HEADER.lower().encode("latin-1")


class InjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A person's private chat (their user id), or a group (negative, as Telegram numbers them).
    chat_id: int
    text: str = Field(min_length=1, max_length=4096)
    first_name: str = Field(default="Tester", min_length=1)
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    user_id: int | None = Field(default=None, gt=0, description="who writes in a group")

    @field_validator("chat_id")
    @classmethod
    def _a_chat(cls, chat_id: int) -> int:
        if chat_id == 0:
            raise ValueError("no chat has the id 0")
        return chat_id

    def to_message(self) -> InjectedMessage:
        return InjectedMessage(**self.model_dump())


class InjectManyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[InjectBody]


class InjectFastPath:
    """`POST /_test/inject_many` in front of FastAPI (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, secret: str, telegram: FakeTelegram) -> None:
        self._app = app
        self._secret = secret.encode("utf-8")
        self._telegram = telegram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != INJECT_MANY_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
            or not self._in_order(scope)
        ):
            await self._app(scope, receive, send)
            return
        try:
            body = await Request(scope, receive).body()
        except ClientDisconnect:
            return  # nobody to answer
        try:
            parsed = InjectManyBody.model_validate(json.loads(body))
        except (ValueError, RecursionError):  # ValidationError is a ValueError
            await self._app(scope, _handing_over(body, receive), send)
            return
        result = await self._telegram.inject([m.to_message() for m in parsed.messages])
        await send_json(send, 200, json_bytes(result))

    def _in_order(self, scope: Scope) -> bool:
        """The test API's secret (compared in constant time, as hardening.SecretHeader does) and
        a JSON body; the first of each header counts, as for Starlette's `Headers.get`."""
        secret = content_type = None
        for name, value in scope["headers"]:
            if name == _SECRET_HEADER and secret is None:
                secret = value
            elif name == b"content-type" and content_type is None:
                content_type = value
        return (
            secret is not None
            # Starlette reads header values as latin-1; SecretHeader encodes them as UTF-8.
            and secrets.compare_digest(secret.decode("latin-1").encode("utf-8"), self._secret)
            and content_type == b"application/json"
        )


def _handing_over(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read given back first."""
    pending = [body]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replay
