"""What the HTTP adapters share: one injected aiohttp session, JSON calls, failures as values."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["HttpAnswer", "JsonHttp"]

log = logging.getLogger("tggate.adapters.http")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: Any  # parsed JSON, or None when the body was empty or not JSON


class JsonHttp:
    """JSON over one shared `aiohttp.ClientSession`; a timeout or a refused connection is None.

    Tokens travel only in bodies and headers, never in URLs, and nothing here logs either.
    """

    def __init__(
        self, *, session: aiohttp.ClientSession, base_url: str, timeout_s: float, name: str
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.name = name

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> HttpAnswer | None:
        try:
            async with self._session.request(
                method,
                self._base + path,
                json=json,
                headers=headers,
                params=params,
                timeout=self._timeout,
            ) as response:
                raw = await response.read()
                body: Any = None
                if raw:
                    try:
                        body = await response.json(content_type=None)
                    except ValueError:
                        body = None
                return HttpAnswer(status=response.status, body=body)
        except TimeoutError:
            log.warning("%s: %s %s timed out", self.name, method, _route(path))
        except aiohttp.ClientError as error:
            log.warning(
                "%s: %s %s failed: %s", self.name, method, _route(path), type(error).__name__
            )
        return None


def _route(path: str) -> str:
    """The path without its query: query values could be personal data."""
    return path.split("?", 1)[0]
