"""The per-person endpoints straight to their handlers, past FastAPI's routing and dependency
solving (issue 11, bench/README.md "cycles").

A notification cycle asks `GET /notification` once per chat, 100k times a tick, and every command
of a chat is an action call; behind FastAPI each cost the module ~250 µs of one core, the JWT
check included, which bounded the cycle against this module whatever tggate did (~75 µs here,
measured back to back with the routes' ~280 on a busy machine). Here a request
for one of those endpoints is matched by its method and path, its token verified, and the
handler's answer (handlers.py, the one the declared route calls too) written out with the
headers every sandbox answer carries; it is counted, delayed and its answer recorded by the
module's instrument under the name of its route template, as the instrument middleware does for
the other routes.

The declared routes stay: they document the endpoints (docs/openapi/main.yaml) and answer what
the fast path passes on: any other method or path, and a DELETE whose body is not a list of ids
(FastAPI's 422, with its own wording). So every answer is the declared route's; a test compares
the two apps request by request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tggate_sandbox.hardening import SECURITY_HEADERS, send_json
from tggate_sandbox.reference.instrument import Instrument
from tggate_sandbox.reference.main.catalog import Person
from tggate_sandbox.reference.main.handlers import Handlers
from tggate_sandbox.reference.main.models import NotificationIds
from tggate_sandbox.reference.main.security import Unauthorized

__all__ = ["FastPath"]

# A handler of the person and the path's course id ("" where the route has none).
_Answer = BaseModel | list[Any]
_Handler = Callable[[Person, str], _Answer]

_COURSES = "/api/courses/"


class FastPath:
    """Pure ASGI, in front of the app's own middleware and its routes (FastAPI's error layer
    stays outside it: an exception is a 500 as anywhere); `authenticate` is the person behind
    an Authorization header value, or Unauthorized."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        handlers: Handlers,
        authenticate: Callable[[str | None], Person],
        instrument: Instrument,
    ) -> None:
        self._app = app
        self._authenticate = authenticate
        self._instrument = instrument
        h = handlers
        # GET path -> (the route as the instrument names it, the handler)
        self._static: dict[str, tuple[str, _Handler]] = {
            "/api/me": ("GET /api/me", lambda p, _: h.me(p)),
            "/api/courses": ("GET /api/courses", lambda p, _: h.courses(p)),
            "/api/grades": ("GET /api/grades", lambda p, _: h.grades(p)),
            "/notification": ("GET /notification", lambda p, _: h.notifications(p)),
        }
        # What follows /api/courses/{course_id} ("" for nothing) -> the route and its handler.
        self._of_course: dict[str, tuple[str, _Handler]] = {
            "": ("GET /api/courses/{course_id}", h.course),
            "tasks": ("GET /api/courses/{course_id}/tasks", h.tasks),
            "students": ("GET /api/courses/{course_id}/students", h.students),
        }
        self._delete = h.delete_notifications

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self._app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if method == "DELETE" and path == "/notification":
            await self._delete_notifications(scope, receive, send)
            return
        route = self._match(method, path)
        if route is None:
            await self._app(scope, receive, send)
            return
        name, handler, course_id = route
        await self._instrument.arrived(name)
        try:
            person = self._authenticate(_authorization(scope))
            answer = handler(person, course_id)
        except Unauthorized as refused:
            await self._refuse(name, send, 401, str(refused), {"WWW-Authenticate": "Bearer"})
            return
        except HTTPException as refused:
            await self._refuse(name, send, refused.status_code, refused.detail, refused.headers)
            return
        await self._send(name, send, 200, to_json(answer))

    def _match(self, method: str, path: str) -> tuple[str, _Handler, str] | None:
        """The route, its handler and course id ("" where the route has none) of a request the
        fast path serves; None for any other, which the declared routes answer."""
        if method != "GET":
            return None
        static = self._static.get(path)
        if static is not None:
            return static[0], static[1], ""
        if not path.startswith(_COURSES):
            return None
        # As the route templates match: {course_id} is one non-empty segment, and a trailing
        # slash is the router's (a redirect).
        course_id, slash, rest = path[len(_COURSES) :].partition("/")
        if not course_id or (slash and not rest):
            return None
        found = self._of_course.get(rest)
        return None if found is None else (found[0], found[1], course_id)

    async def _delete_notifications(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = "DELETE /notification"
        # The body first, as the route reads it: only a list of ids is served here, so the
        # instrument counts (and delays) the request once, here or behind.
        body = await _body(receive)
        if body is None:  # the caller went away
            return
        ids = _ids(scope, body)
        if ids is None:
            # FastAPI's own 422 (or whatever the route says), on the body read here.
            await self._app(scope, _replay(body, receive), send)
            return
        await self._instrument.arrived(name)
        try:
            person = self._authenticate(_authorization(scope))
        except Unauthorized as refused:
            await self._refuse(name, send, 401, str(refused), {"WWW-Authenticate": "Bearer"})
            return
        self._delete(person, ids)
        self._instrument.answered(name, 204)
        await send({"type": "http.response.start", "status": 204, "headers": SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(
        self, name: str, send: Send, status: int, detail: str, headers: Mapping[str, str] | None
    ) -> None:
        # As FastAPI's handler of HTTPException writes it (a starlette JSONResponse).
        body = json.dumps(
            {"detail": detail}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        await self._send(name, send, status, body, extra)

    async def _send(
        self,
        name: str,
        send: Send,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self._instrument.answered(name, status)
        await send_json(send, status, body, extra or ())


def _authorization(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            return str(value.decode("latin-1"))
    return None


async def _body(receive: Receive) -> bytes | None:
    """The whole request body; None when the caller disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _ids(scope: Scope, body: bytes) -> list[str] | None:
    """The ids of a JSON body FastAPI would read as `NotificationIds`; None for anything else
    (no body, no or another content type, not valid), which the declared route answers."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if not body or content_type != b"application/json":
        return None
    try:
        return NotificationIds.model_validate_json(body).ids
    except ValidationError:
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app behind: the body read already, then whatever comes next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
