"""The reference point of `bench.logic` (issue 11 item 3): a bare FastAPI + uvicorn handler that
does two Redis round trips, as little as any command of a Redis-backed bot could do.

It reads the chat's key, writes an idempotency key for the update and answers one fixed reply:
no internal-token check, no state machine, no scripts, no encryption. It runs under uvicorn as
Bot Logic does (uvloop, httptools, one process, a blocking pool of 64 Redis connections), as
uvicorn runs any app: without Bot Logic's own tuning (`tggate.bootstrap.settle_gc`).

`python -m bench.bare_fastapi PORT REDIS_URL`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from redis.asyncio import BlockingConnectionPool, Redis

__all__ = ["create_app"]


class Command(BaseModel):
    update_id: int
    chat_id: int
    command: str
    args: dict[str, str] = {}
    text: str = ""
    language: str = "ru"


def create_app(redis_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=10)
        app.state.redis = Redis.from_pool(pool)
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/commands")
    async def commands(body: Command) -> dict[str, Any]:
        redis: Redis = app.state.redis
        await redis.get(f"bare:{body.chat_id}:session")
        await redis.set(f"bare:{body.chat_id}:update:{body.update_id}", b"1", ex=86400)
        return {"replies": [{"chat_id": body.chat_id, "text": "Hello.", "buttons": []}]}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        create_app(sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
