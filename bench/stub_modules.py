"""Modules that answer at once, for `bench.cycles`: the cycle, not the module, is measured.

- Authorization, `POST /login/check`: login tokens starting with "pending-" are pending (the
  steady state of a login cycle: nothing is written); any other token is unknown (the session is
  deleted, L2). The reference module is not used there because its login book sweeps every
  login on each call, so a check costs O(logins) and a cycle over 100k pending logins would
  measure that module, not tggate.
- Main, `GET /notification`: an empty list for any Bearer token (401 without one), counted in
  `/test/stats` as the reference module counts its calls. The reference module verifies each
  JWT and answers through its fast path, ~75 µs of CPU a call on this machine (~250 behind
  FastAPI's routing before issue 11): over 100k chats 7.5 s of one core, whatever the cycle
  does (bench/README.md).

`python -m bench.stub_modules PORT`.
"""

from __future__ import annotations

import sys

from aiohttp import web

__all__ = ["app"]

_PENDING = b'{"status":"pending"}'
_UNKNOWN = b'{"status":"unknown"}'
_NONE = b"[]"


async def _check(request: web.Request) -> web.Response:
    body = await request.json()
    token = body.get("login_token", "")
    answer = _PENDING if token.startswith("pending-") else _UNKNOWN
    return web.Response(body=answer, content_type="application/json")


_CALLS = {"GET /notification": 0}


async def _notifications(request: web.Request) -> web.Response:
    _CALLS["GET /notification"] += 1
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return web.Response(status=401, body=b'{"detail":"no token"}')
    return web.Response(body=_NONE, content_type="application/json")


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(_CALLS)


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/login/check", _check)
    application.router.add_get("/notification", _notifications)
    application.router.add_get("/test/stats", _stats)
    return application


if __name__ == "__main__":
    import uvloop

    web.run_app(
        app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, loop=uvloop.new_event_loop()
    )
