"""Prometheus metrics of Bot Logic, in a registry of its own (one per app, none at import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tggate.core.ports import ActionDone, ModuleUnavailable

__all__ = ["LogicMetrics"]


class LogicMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.commands = Counter(
            "tggate_commands_total",
            "Commands handled, by command and result",
            ["command", "result"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "tggate_commands_in_progress",
            "Commands this process is handling now (claimed, not yet answered)",
            registry=self.registry,
        )
        self.replayed = Counter(
            "tggate_commands_replayed_total",
            "Repeated update_ids answered from the stored first answer",
            registry=self.registry,
        )
        self.module_calls = Counter(
            "tggate_module_calls_total",
            "Calls to the Authorization and Main modules, by request and result",
            ["request", "result"],
            registry=self.registry,
        )
        self.module_seconds = Histogram(
            "tggate_module_call_seconds",
            "Wall time of one HTTP call to a module (auth or main), failures and timeouts included",
            ["module"],
            registry=self.registry,
        )
        self.cycle_seconds = Histogram(
            "tggate_cycle_seconds",
            "Wall time of one timer cycle (one shard)",
            ["cycle"],
            registry=self.registry,
        )
        self.cycle_messages = Counter(
            "tggate_cycle_messages_total",
            "Messages produced by timer cycles",
            ["cycle"],
            registry=self.registry,
        )
        self.feed_dropped = Counter(
            "tggate_feed_dropped_total",
            "Notifications of the Main module's feed (bulk mode) for a person with no "
            "Authorized chat: not delivered",
            registry=self.registry,
        )
        # Set at each tick from what the tick hands out: the backlog as this replica last saw
        # the shard (replicas serve the shards in turn, so it is a few ticks old at most).
        self.outbox_backlog = Gauge(
            "tggate_outbox_backlog_messages",
            "Undelivered messages in the outbox (not yet acknowledged by the client), by cycle "
            "and shard, as of this replica's last tick of that shard",
            ["cycle", "shard"],
            registry=self.registry,
        )
        # The labelled counters of the per-command counts, each looked up once: `labels()`
        # checks and locks on every call (a count took 1.3 µs, 0.5 µs so; issue 11). The
        # keys are few: commands of the table, results, statuses.
        self._children: dict[tuple[str, str, str], Counter] = {}

    def command_done(self, command: str, result: str) -> None:
        """Count one command by its result (`_result_label` in logic/commands.py)."""
        self._count(self.commands, "command", command, result)

    def module_call(self, request: str, answer: object) -> None:
        """Count one call to a module by what it answered (a status, a result's name, "ok")."""
        if isinstance(answer, ModuleUnavailable):
            result = "unavailable"
        elif isinstance(answer, ActionDone):
            result = str(answer.status)
        else:
            result = type(answer).__name__.lower() if answer is not None else "ok"
        self._count(self.module_calls, "module", request, result)

    def _count(self, counter: Counter, kind: str, first: str, second: str) -> None:
        key = (kind, first, second)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(first, second)
        child.inc()
