"""`JsonHttp` for tests that talk to modules as Bot Logic does: one connection pool per module
URL, all closed at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

from tggate.adapters.http_base import JsonHttp
from tggate.adapters.http_pool import HttpPool

__all__ = ["ModuleHttp"]


@dataclass
class ModuleHttp:
    pools: list[HttpPool] = field(default_factory=list)

    def json_http(self, url: str, name: str, *, timeout_s: float = 5) -> JsonHttp:
        self.pools.append(HttpPool(url, max_connections=8, timeout_s=timeout_s))
        return JsonHttp(pool=self.pools[-1], name=name)

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()
