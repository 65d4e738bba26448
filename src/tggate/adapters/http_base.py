"""What the HTTP adapters share: one injected connection pool, JSON calls, failures as values."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from tggate.adapters.http_pool import JSON_HEADERS, HttpAnswer, HttpFailure, HttpPool

__all__ = ["JsonHttp", "misfit"]

log = logging.getLogger("tggate.adapters.http")


class JsonHttp:
    """JSON over one module's `HttpPool`; a timeout or a failed connection is None.

    Tokens travel only in bodies and headers, never in URLs, and nothing here logs either.
    """

    def __init__(
        self,
        *,
        pool: HttpPool,
        name: str,
        observe_seconds: Callable[[float], None] | None = None,
    ) -> None:
        self._pool = pool
        self.name = name
        # Given each call's wall time, answered or not (Bot Logic's module latency metric).
        self._observe_seconds = observe_seconds

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> HttpAnswer | None:
        """Send `body` (a contract model, docs/openapi/) or `content` (JSON already encoded,
        e.g. by a configured API, adapters/auth_api.py) as JSON; the answer, or None."""
        data = body.model_dump_json().encode() if body is not None else content
        sent: Mapping[str, str] | None = headers
        if data is not None:
            sent = {**headers, **JSON_HEADERS} if headers else JSON_HEADERS
        target = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}" if params else path
        started = time.monotonic()
        try:
            return await self._pool.request(method, target, headers=sent, body=data)
        except HttpFailure as error:
            log.warning("%s: %s %s failed: %s", self.name, method, _route(path), error)
        finally:
            if self._observe_seconds is not None:
                self._observe_seconds(time.monotonic() - started)
        return None


def misfit(error: ValidationError) -> str:
    """Where an answer fails its contract model, without the values (they may be tokens)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['type']}"
        for problem in error.errors(include_url=False, include_input=False)[:3]
    )


def _route(path: str) -> str:
    """The path without its query: query values could be personal data."""
    return path.split("?", 1)[0]
