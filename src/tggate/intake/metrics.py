"""Prometheus metrics of one intake replica, in a registry of its own (none at import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["IntakeMetrics"]


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "tggate_webhook_requests_total",
            "Webhook requests, by what was answered: stored, repeat, ignored (no chat), full, "
            "unauthorized, forbidden, too_large, malformed, unavailable",
            ["result"],
            registry=self.registry,
        )
        self.updates = Counter(
            "tggate_intake_updates_total",
            "Updates handled by this replica, by result (done, failed)",
            ["result"],
            registry=self.registry,
        )
        self.claims = Counter(
            "tggate_intake_claims_total",
            "Chats this replica took, by how: idle (nobody held it), taken_over (the holder's "
            "claim had lapsed)",
            ["how"],
            registry=self.registry,
        )
        self.lost = Counter(
            "tggate_intake_claims_lost_total",
            "Claims this replica lost to another one before it finished (it renewed too late)",
            registry=self.registry,
        )
        self.held = Gauge(
            "tggate_intake_chats_held",
            "Chats this replica holds now",
            registry=self.registry,
        )
