"""Prometheus metrics of the Telegram Client, in a registry of its own (none at import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["ClientMetrics"]


class ClientMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.throttled = Counter(
            "tggate_telegram_throttled_total",
            "429 answers from Telegram to sendMessage; each pauses only its chat for retry_after",
            registry=self.registry,
        )
