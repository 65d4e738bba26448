"""Run one ASGI app under uvicorn (uvloop, httptools), print its URL once it listens."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
import uvloop
from starlette.types import ASGIApp

from tggate.bootstrap import settle_gc

__all__ = ["serve", "uvicorn_options"]


def uvicorn_options(*, proxy_headers: bool) -> dict[str, Any]:
    """What every tggate and sandbox server runs under, whether `serve` runs it or uvicorn's
    own worker processes do (Bot Logic's `--workers`)."""
    return {
        "loop": "uvloop",
        "http": "httptools",
        # No tggate or sandbox app serves a WebSocket; "auto" imported a WebSocket
        # implementation in every server at start (issue 11, item 7).
        "ws": "none",
        "log_config": None,  # our JSON logging is configured already
        "access_log": False,
        "proxy_headers": proxy_headers,
        # No "server: uvicorn" in every answer: it tells a caller what to attack, and it was
        # two more headers for uvicorn to check per answer.
        "server_header": False,
    }


def serve(
    app: ASGIApp,
    *,
    name: str,
    host: str,
    port: int,
    log_level: str = "info",
    proxy_headers: bool = True,
) -> None:
    """Blocks until SIGINT/SIGTERM; uvicorn handles both and shuts the app down cleanly.

    `proxy_headers=False` leaves the client address as the connection's (the webhook intake
    reads X-Forwarded-For itself, believing only the proxies it trusts)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        **uvicorn_options(proxy_headers=proxy_headers),
    )
    server = uvicorn.Server(config)
    # Every server's start-up objects leave the collector's view, as Bot Logic's always did:
    # otherwise each full collection scans them all, a pause of 55-70 ms seen in the fake
    # Telegram and the sandbox modules in the middle of bench e2e's 500/s phase (issue 11).
    settle_gc()

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.02)
        if server.started:
            print(f"{name} listening on http://{host}:{port}", flush=True)
        await task

    uvloop.run(run())
    if not server.started:
        sys.exit(1)
