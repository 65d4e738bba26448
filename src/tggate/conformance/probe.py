"""HTTP for the check: every request and its answer kept as an `Exchange`, so a failing line can
show exactly what was sent and what came back. A timeout or a refused connection is an
exchange without an answer, never an exception."""

from __future__ import annotations

import aiohttp

from tggate.conformance.report import Exchange

__all__ = ["Probe", "bearer"]

_JSON = {"Content-Type": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Probe:
    def __init__(self, session: aiohttp.ClientSession, *, timeout_s: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        sent = dict(headers or {})
        if content is not None:
            sent.update(_JSON)
        try:
            async with self._session.request(
                method,
                url,
                data=content,
                headers=sent,
                timeout=self._timeout,  # redirects followed, as Bot Logic's adapters do
            ) as response:
                answer = await response.read()
                return Exchange(method, url, dict(headers or {}), content, response.status, answer)
        except TimeoutError:
            return Exchange(method, url, dict(headers or {}), content, error="timed out")
        except aiohttp.ClientError as error:
            return Exchange(method, url, dict(headers or {}), content, error=type(error).__name__)
