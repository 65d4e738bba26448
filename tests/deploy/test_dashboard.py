"""deploy/grafana/tggate-dashboard.json draws only metrics tggate exports, with their labels.

The metric names and labels come from the code itself: every `*Metrics` class of a
`tggate.….metrics` module is instantiated and its registry listed (with the _total, _bucket,
_count, _sum suffixes Prometheus adds), so a renamed metric or label fails here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

import tggate

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tggate-dashboard.json"
# Labels a scrape adds (Prometheus's own, Kubernetes service discovery), and a histogram's.
SCRAPE_LABELS = {"job", "instance", "namespace", "pod", "container", "le"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
PROMQL_WORDS |= {"group_left", "group_right"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
IDENTIFIER = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")


def exported() -> dict[str, set[str]]:
    """Every sample name tggate's metrics classes export, with its label names."""
    found: dict[str, set[str]] = {}
    for module_info in pkgutil.walk_packages(tggate.__path__, "tggate."):
        if not module_info.name.endswith(".metrics"):
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and cls.__name__.endswith("Metrics"):
                found |= _samples(cls())
    return found


def _samples(metrics: Any) -> dict[str, set[str]]:
    registry: CollectorRegistry = metrics.registry
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            # A labelled metric shows its samples once it has a child.
            metric.labels(*("x" for _ in metric._labelnames))
    return {
        sample.name: set(sample.labels)
        for family in registry.collect()
        for sample in family.samples
    }


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every query of every panel (rows included) and variable."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"${variable['name']}", query["query"] if isinstance(query, dict) else query


def metric_names(expression: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # label values
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana's variables ($__rate_interval …)
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = GROUPING.sub("", text)  # label lists
    text = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", text)
    return {name for name in IDENTIFIER.findall(text) if name not in PROMQL_WORDS}


def label_names(expression: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    used = {m for _, matchers in SELECTOR.findall(text) for m in MATCHER.findall(matchers)}
    for group in GROUPING.findall(text):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    used |= set(re.findall(r"label_values\(\s*[a-zA-Z_:][\w:]*\s*,\s*(\w+)\s*\)", text))
    return used


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def metrics() -> dict[str, set[str]]:
    return exported()


def test_the_parser_finds_names_and_labels() -> None:
    expression = (
        "histogram_quantile(0.95, sum by (le, module) (rate(tggate_module_call_seconds_bucket{"
        'namespace=~"$namespace"}[$__rate_interval]))) / on (module) group_left sum(up)'
    )
    assert metric_names(expression) == {"tggate_module_call_seconds_bucket", "up"}
    assert label_names(expression) == {"le", "module", "namespace"}


def test_the_code_exports_the_metrics_the_dashboard_is_about(
    metrics: dict[str, set[str]],
) -> None:
    assert {
        "tggate_commands_total",
        "tggate_module_calls_total",
        "tggate_module_call_seconds_bucket",
        "tggate_cycle_seconds_bucket",
        "tggate_outbox_backlog_messages",
        "tggate_telegram_throttled_total",
    } <= set(metrics)


def test_every_query_names_only_metrics_tggate_exports(
    dashboard: dict[str, Any], metrics: dict[str, set[str]]
) -> None:
    unknown = {
        f"{where}: {name}"
        for where, expression in expressions(dashboard)
        for name in metric_names(expression)
        if name not in metrics
    }
    assert not unknown, sorted(unknown)


def test_every_label_a_query_uses_is_one_its_metrics_have(
    dashboard: dict[str, Any], metrics: dict[str, set[str]]
) -> None:
    for where, expression in expressions(dashboard):
        known = set().union(*(metrics.get(name, set()) for name in metric_names(expression)))
        unknown = label_names(expression) - known - SCRAPE_LABELS
        assert not unknown, f"{where}: {expression}: {sorted(unknown)}"


def test_the_panels_cover_what_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    queries = " ".join(expression for _, expression in expressions(dashboard))
    for wanted in (
        r"sum by \(result\) \(rate\(tggate_commands_total",  # commands by result
        r"tggate_module_calls_total",  # module calls
        r"histogram_quantile\([^,]+, sum by \(le, module\) \(rate\(tggate_module_call_seconds",
        r"histogram_quantile\([^,]+, sum by \(le, cycle\) \(rate\(tggate_cycle_seconds_bucket",
        r"tggate_outbox_backlog_messages",
        r"tggate_telegram_throttled_total",
    ):
        assert re.search(wanted, queries), wanted


def test_every_panel_reads_the_chosen_prometheus(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
