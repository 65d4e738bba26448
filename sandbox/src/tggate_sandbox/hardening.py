"""What every sandbox app does at its HTTP edge (issue 9: what a security probe found).

`sandbox_app` builds a FastAPI app the way all four sandbox servers need it:

- no `/docs`, `/redoc` nor `/openapi.json`: nothing describes the test API to a stranger (the
  schema is still there for tests, `app.openapi()`);
- a validation error is a 422 `{"detail": [{"loc", "msg", "type"}]}` that never echoes the input:
  FastAPI's own echoes it, so a submitted token came back in the answer, and a number like `1e400`
  (infinity once parsed) could not be written as JSON and turned into a 500;
- every answer carries `X-Frame-Options: DENY` and a CSP `frame-ancestors 'none'` (a same-site page
  framed the confirmation page and a click on its Yes logged a chat in), `nosniff`, and no
  referrer (the login link's single-use `ref` must not reach the next site).

`guard_test_api` is the one check in front of every test endpoint: the secret from
`TGGATE_TEST_API_SECRET` in the `X-Test-Api-Secret` header, compared in constant time; 401 without
the header, 403 with a wrong one, both JSON with a message. Without a secret there is no test API.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TypeVar, overload

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tggate_sandbox.credentials import ADMIN_HEADER, MIN_SECRET_BYTES, TEST_API_HEADER

__all__ = [
    "ADMIN_HEADER",
    "FRAME_HEADERS",
    "MIN_SECRET_BYTES",
    "SECURITY_HEADERS",
    "TEST_API_HEADER",
    "SecretHeader",
    "SecurityHeadersMiddleware",
    "check_secret",
    "guard_test_api",
    "safe_errors",
    "sandbox_app",
    "send_json",
]


FRAME_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# All of them as raw ASGI headers: what the middleware adds to an answer without a policy of its
# own, for an endpoint that answers before it (the reference Main module's fast path, the fake
# Telegram's Bot API and inject).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = tuple(
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in {**FRAME_HEADERS, **_ALWAYS}.items()
)
_JSON_TYPE = (b"content-type", b"application/json")
_LOC_PART_MAX = 64
App = TypeVar("App", bound=FastAPI)


def check_secret(name: str, value: str) -> str:
    """`value`, or ValueError naming `name` when it is shorter than MIN_SECRET_BYTES."""
    if len(value.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"{name} must be at least {MIN_SECRET_BYTES} bytes")
    return value


async def send_json(
    send: Send, status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON answer (`body` already written) from an endpoint in front of the middleware, with
    the headers the middleware would have added (`extra` first, as the endpoint's own)."""
    headers = [
        *extra,
        (b"content-length", str(len(body)).encode("latin-1")),
        _JSON_TYPE,
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@overload
def sandbox_app(*, title: str, version: str) -> FastAPI: ...


@overload
def sandbox_app(*, title: str, version: str, app_class: type[App]) -> App: ...


def sandbox_app(*, title: str, version: str, app_class: type[FastAPI] = FastAPI) -> FastAPI:
    """A FastAPI app with no published docs, safe validation errors and the security headers
    (`app_class`: a subclass of FastAPI, such as the fake Telegram's)."""
    app = app_class(title=title, version=version, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def safe_errors(errors: Sequence[object]) -> list[dict[str, object]]:
    """Pydantic's errors without `input`, `ctx` or `url`: where and what, never the value.

    The place is the model's own field names; the name of a field the model does not have is
    the sender's, so it is not repeated either.
    """
    safe: list[dict[str, object]] = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        loc = [
            part if isinstance(part, int) else str(part)[:_LOC_PART_MAX]
            for part in error.get("loc", ())
        ]
        if error.get("type") == "extra_forbidden" and loc:
            loc[-1] = "…"
        safe.append(
            {"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
        )
    return safe


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": safe_errors(error.errors())}, status_code=422)


class SecretHeader:
    """A FastAPI dependency: the request carries `secret` in `header`, or it is refused.

    401 without the header, 403 with a wrong one (compared in constant time); JSON messages that
    name the header, never the value.
    """

    def __init__(self, *, header: str, secret: str, purpose: str) -> None:
        self._header = header
        self._purpose = purpose
        self._secret = check_secret(f"the {purpose} secret", secret).encode("utf-8")

    async def __call__(self, request: Request) -> None:
        presented = request.headers.get(self._header)
        if not presented:
            raise HTTPException(401, detail=f"{self._purpose} needs the {self._header} header")
        if not secrets.compare_digest(presented.encode("utf-8"), self._secret):
            raise HTTPException(403, detail=f"wrong {self._header}")


def guard_test_api(secret: str) -> SecretHeader:
    """The check in front of every test endpoint of every sandbox server."""
    return SecretHeader(header=TEST_API_HEADER, secret=secret, purpose="the test API")


class SecurityHeadersMiddleware:
    """Adds the frame and content headers to every answer (pure ASGI, so errors get them too).

    A page with a policy of its own keeps it; `frame-ancestors 'none'` is added when it lacks one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Frame-Options"] = FRAME_HEADERS["X-Frame-Options"]
                policy = headers.get("content-security-policy")
                if policy is None:
                    headers["Content-Security-Policy"] = FRAME_HEADERS["Content-Security-Policy"]
                elif "frame-ancestors" not in policy:
                    headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, send_with_headers)
