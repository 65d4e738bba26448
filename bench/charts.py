"""Charts of the results people would rather see than read, drawn from bench/results/*.json.

`python -m bench` draws them after its runs (`python -m bench.charts` alone redraws them from the
last results). Each chart is drawn when its results exist and skipped otherwise:
- `cycles.png`: Bot Logic's CPU per chat and the wall time of a cycle over 1k, 10k and 100k
  chats (cycles.json; flat CPU per chat is linear cost);
- `e2e.png`: commands per second in a burst and latency at steady rates, tggate against the
  plain aiogram bot of the same run (baseline.json, or e2e.json alone);
- `webhook.png`: commands per second with 1, 2, 3 … webhook replicas (webhook.json: every figure
  in 1/s whose name says "N replica(s)").
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR

__all__ = ["CHARTS_DIR", "draw_all"]

CHARTS_DIR = Path(__file__).resolve().parent
_REPLICAS = re.compile(r"(\d+)\s+(?:intake\s+)?replicas?\b")
_TGGATE, _AIOGRAM, _AIOGRAM_DEFAULT = "#2a6fbb", "#d9822b", "#b9b9b9"


def _load(name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads((RESULTS_DIR / f"{name}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return found


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _footer(figure: Any, data: dict[str, Any]) -> None:
    machine = data.get("machine", {})
    load = data.get("details", {}).get("machine_load", {})
    text = (
        f"{machine.get('cores', '?')} cores, {machine.get('cpu', '')}; "
        f"finished {data.get('finished_at', '?')}"
    )
    if load:
        text += (
            f"; machine busy {load.get('busy_pct_before')}% before the run, "
            f"{load.get('busy_pct_during')}% during it (both cores)"
        )
    other = data.get("details", {}).get("other_work_pct")
    if other is not None:
        text += f", {other}% of it other sessions' work"
    figure.text(0.01, 0.01, text, fontsize=7, color="#666666")


def draw_cycles(plt: Any) -> Path | None:
    data = _load("cycles")
    rows = (data or {}).get("details", {}).get("rows", [])
    if not data or not rows:
        return None
    paths: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        label = f"{row.get('cycle', '?')}: {row.get('path', '?')}"
        paths.setdefault(label, []).append(row)
    figure, (cost, wall) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, found in paths.items():
        found.sort(key=lambda row: row["chats"])
        chats = [row["chats"] for row in found]
        cost.plot(chats, [row.get("logic_cpu_us_per_chat") for row in found], "o-", label=label)
        wall.plot(chats, [row.get("wall_s") for row in found], "o-", label=label)
    for axes in (cost, wall):
        axes.set_xscale("log")
        axes.set_xlabel("chats in the cycle")
        axes.grid(True, which="both", alpha=0.3)
        axes.set_xticks([1_000, 10_000, 100_000], ["1k", "10k", "100k"])
    cost.set_ylabel("Bot Logic CPU per chat (µs)")
    cost.set_ylim(bottom=0)
    cost.set_title("Cost per chat: flat means linear")
    wall.set_yscale("log")
    wall.set_ylabel("wall time of one cycle (s)")
    wall.set_title("One cycle over all chats")
    cost.legend(fontsize=8)
    _footer(figure, data)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(plt, figure, "cycles.png")


def draw_e2e(plt: Any) -> Path | None:
    baseline = _load("baseline")
    data = baseline or _load("e2e")
    if not data:
        return None
    details = data.get("details", {})
    bots: list[tuple[str, dict[str, Any], str]] = [("tggate", details.get("tggate", {}), _TGGATE)]
    if baseline:
        bots.append(("aiogram, limit 64", details.get("aiogram_tasks_limit_64", {}), _AIOGRAM))
        bots.append(("aiogram, default", details.get("aiogram_default", {}), _AIOGRAM_DEFAULT))
    bots = [(name, figures, color) for name, figures, color in bots if figures]
    if not bots:
        return None
    figure, (rate, latency) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = [name for name, _, _ in bots]
    values = [figures.get("commands_per_s", 0) for _, figures, _ in bots]
    bars = rate.bar(names, values, color=[color for _, _, color in bots])
    rate.bar_label(bars, fmt="%.0f")
    lost = [figures.get("burst_lost", 0) + figures.get("paced_lost", 0) for _, figures, _ in bots]
    rate.set_xticks(
        range(len(names)), [f"{n}\n{k} replies lost" for n, k in zip(names, lost, strict=True)]
    )
    burst = bots[0][1].get("burst_commands", "?")
    rate.set_title(f"Burst of {burst} commands: commands/s")
    rate.set_ylabel("commands per second")

    phases = list(bots[0][1].get("paced", {}))
    width = 0.8 / len(bots)
    for index, (name, figures, color) in enumerate(bots):
        for point, shade in (("p50", 1.0), ("p99", 0.55)):
            heights = [
                figures.get("paced", {}).get(phase, {}).get("latency_ms", {}).get(point, 0)
                for phase in phases
            ]
            offsets = [
                p * 2 + (0 if point == "p50" else 1) + index * width for p in range(len(phases))
            ]
            latency.bar(
                offsets,
                heights,
                width,
                color=color,
                alpha=shade,
                label=f"{name} {point}",
            )
    latency.set_xticks(
        [p * 2 + 0.4 for p in range(len(phases))] + [p * 2 + 1.4 for p in range(len(phases))],
        [f"p50 at {_rate(phase)}" for phase in phases]
        + [f"p99 at {_rate(phase)}" for phase in phases],
        fontsize=8,
    )
    latency.set_yscale("log")
    latency.set_ylabel("injection → reply stored (ms, log)")
    latency.set_title("Latency at a steady rate")
    latency.axhline(10, color="#999999", linestyle="--", linewidth=0.8)
    latency.legend(fontsize=7)
    _footer(figure, data)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(plt, figure, "e2e.png")


def _rate(phase: str) -> str:
    return phase.removeprefix("paced_") + "/s"


def draw_webhook(plt: Any) -> Path | None:
    data = _load("webhook")
    if not data:
        return None
    points: list[tuple[int, float, str]] = []
    for figure_json in data.get("figures", []):
        match = _REPLICAS.search(str(figure_json.get("name", "")))
        value = figure_json.get("value")
        if match and figure_json.get("unit") == "1/s" and isinstance(value, int | float):
            label = _REPLICAS.sub("", str(figure_json["name"])).strip(" :,-") or "throughput"
            label = re.sub(r",\s*:", ":", label)  # "webhook, 2 intake replicas: …" → "webhook: …"
            points.append((int(match.group(1)), float(value), label))
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    for label in sorted({label for _, _, label in points}):
        found = sorted((n, v) for n, v, other in points if other == label)
        axes.plot([n for n, _ in found], [v for _, v in found], "o-", label=label)
    polling = next(
        (
            f.get("value")
            for f in data.get("figures", [])
            if str(f.get("name", "")).startswith("polling") and f.get("unit") == "1/s"
        ),
        None,
    )
    if isinstance(polling, int | float):
        axes.axhline(float(polling), linestyle="--", color="grey", label="polling, one client")
    axes.set_xlabel("webhook replicas")
    axes.set_xticks(sorted({n for n, _, _ in points}))
    axes.set_ylabel("per second")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.set_title("Webhook intake: replicas")
    axes.legend(fontsize=8)
    _footer(figure, data)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(plt, figure, "webhook.png")


def _save(plt: Any, figure: Any, name: str) -> Path:
    path = CHARTS_DIR / name
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


CHARTS: tuple[Callable[[Any], Path | None], ...] = (draw_cycles, draw_e2e, draw_webhook)


def draw_all() -> list[Path]:
    """Every chart whose results exist; the files written."""
    plt = _pyplot()
    return [path for draw in CHARTS if (path := draw(plt)) is not None]


if __name__ == "__main__":
    for path in draw_all():
        print(path)
    sys.exit(0)
