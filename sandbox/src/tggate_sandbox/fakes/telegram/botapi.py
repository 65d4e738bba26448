"""The Bot API side of the fake: `/bot{token}/{method}`, answered in front of FastAPI.

A bot's every call (getUpdates, sendMessage …) used to go through FastAPI's whole stack: its
telemetry check, middleware, routing, dependency solving, a `Request` and a `JSONResponse`.
Under bench e2e that stack was most of the fake's CPU per command (issue 11: latency at 500
commands/s), and the fake shares the machine's cores with the bot it measures. So
`BotApiFastPath`, pure ASGI in front of the whole FastAPI app (app.py, `FakeTelegramApp`),
answers GET and POST calls itself, whatever their body (JSON as tggate's client sends, a form as
aiogram does: the fake stays as cheap for the aiogram baseline); other methods (405) and every
other path go on to FastAPI, whose `/bot{token}/{method}` route answers through the same
`BotApi.answer`. Either way a call gets the same checks in the same order, the same status and
body, and the same headers (`hardening.send_json`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tggate_sandbox.fakes.telegram.disconnect import unless_disconnected
from tggate_sandbox.fakes.telegram.errors import ApiError, bad_request, not_found, unauthorized
from tggate_sandbox.fakes.telegram.schema import ApiSchema
from tggate_sandbox.fakes.telegram.validation import UploadedFile, Validator
from tggate_sandbox.hardening import send_json

__all__ = ["BotApi", "BotApiFastPath", "Handler", "read_params"]

Handler = Callable[[Mapping[str, Any]], Awaitable[object]]
Params = dict[str, object]

# Starlette's own pattern for the route "/bot{bot_token}/{method}" (the path it matches is
# the decoded one, as here; a root_path, which no server of the sandbox has, goes on to it).
_CALL_PATH = re.compile(r"/bot(?P<bot_token>[^/]+)/(?P<method>[^/]+)")
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_JSON = "application/json"


class BotApi:
    """One Bot API call: the token, the method, the parameters checked against `api.json`, the
    method's behaviour (`handlers`); answered as (HTTP status, JSON body)."""

    def __init__(
        self,
        *,
        token: str,
        schema: ApiSchema,
        validator: Validator,
        handlers: Mapping[str, Handler],
        count_call: Callable[[str], None],
    ) -> None:
        self._token = token
        self._schema = schema
        self._validator = validator
        self._handlers = handlers
        self._count_call = count_call

    async def answer(
        self,
        bot_token: str,
        method: str,
        params: Callable[[], Awaitable[Params]],
        receive: Receive,
    ) -> tuple[int, dict[str, object]]:
        """`params` reads the call's parameters; `receive` (the body read) tells a hang-up."""
        if bot_token != self._token:
            return _failure(unauthorized())
        spec = self._schema.method(method)
        if spec is None:
            return _failure(not_found())
        self._count_call(spec.name)
        try:
            checked = self._validator.validate_call(spec, await params())
            handler = self._handlers.get(spec.name)
            if handler is None:
                raise bad_request("method not supported by the fake")
            if spec.name == "getUpdates":
                # A long poll whose client went away (timeout, cancellation) must not linger.
                result = await unless_disconnected(receive, handler(checked))
            else:
                result = await handler(checked)
        except ApiError as error:
            return _failure(error)
        return 200, {"ok": True, "result": result}


class BotApiFastPath:
    """Answers Bot API calls in front of FastAPI (see the module docstring); the rest goes on."""

    def __init__(self, app: ASGIApp, *, api: BotApi) -> None:
        self._app = app
        self._api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = _CALL_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if call is None or scope["method"] not in ("GET", "POST") or scope.get("root_path"):
            await self._app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            status, content = await self._api.answer(
                call["bot_token"], call["method"], lambda: read_params(request), receive
            )
        except MultiPartException as error:
            # A form Starlette cannot parse: what FastAPI answers (Starlette makes it a 400
            # HTTPException inside an app, FastAPI's http_exception_handler writes it).
            status, content = 400, {"detail": error.message}
        except ClientDisconnect:
            return  # gone before its body came in full: nobody to answer
        await send_json(send, status, json_bytes(content))


async def read_params(request: Request) -> Params:
    """Parameters from the query string and the body, in every encoding the real server takes."""
    params: Params = dict(request.query_params)
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == _JSON:
        params.update(json_params(await request.body()))
    elif content_type in _FORMS:
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    content = await value.read()
                    params[key] = UploadedFile(value.filename or key, len(content))
                else:
                    params[key] = value
    return params


def json_params(body: bytes) -> Params:
    """A JSON body's parameters ({} for an empty body), or a 400 as the real server answers."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the parser goes (issue 9: it was a 500).
        raise bad_request("can't parse JSON object") from None
    if not isinstance(data, dict):
        raise bad_request("JSON object expected")
    return data


def json_bytes(content: object) -> bytes:
    """`content` as Starlette's JSONResponse writes it (compact, UTF-8), by orjson when it can.

    orjson refuses what it cannot write exactly (an integer beyond 64 bits, a lone surrogate);
    then the standard library writes it, or fails, as JSONResponse would."""
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")


def _failure(error: ApiError) -> tuple[int, dict[str, object]]:
    return error.error_code, error.body()
