"""End to end, and the same work done by a plain aiogram bot (issue 5, items 1 and 2).

Authorized chats send action commands through the fake Telegram (its limits off). tggate:
fake Telegram → Telegram Client → nginx → 2 Bot Logic replicas → Redis + reference Main module.
Baseline: fake Telegram → one aiogram process (Dispatcher, start_polling, RedisStorage) → Redis +
the same Main module. Same fake Telegram, same Redis server, same Main module, same workload, in
one run, one after the other.

Each workload has three phases:
- warm-up: every chat sends one command (not measured);
- burst: every chat's commands injected at once (throughput, and latency under saturation);
- paced: commands injected evenly at a fixed rate well below capacity (latency of a bot that
  keeps up), the same rate for both bots.

Latency is the fake Telegram's own clock: when it stored the person's message (the injection)
to when it stored the bot's reply; a chat's k-th reply is paired with its k-th command. CPU is
utime+stime from /proc per process over the burst and paced phases together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    ProcessSet,
    Profiler,
    Result,
    TelegramTestApi,
    busy_percent,
    cipher_of,
    cpu_delta,
    cpu_jiffies,
    mint_access_tokens,
    percentiles,
    seed_authorized,
    started_topology,
    topology_processes,
)
from tggate.adapters.embedded_redis import die_with_parent
from tggate_sandbox.topology import Topology

__all__ = ["Workload", "close_shared", "profile", "run_baseline", "run_e2e"]

# Five actions a student may run, all answered 200 by the reference Main module.
COMMANDS = ("/me", "/courses", "/course py101", "/tasks py101", "/grades")

# The client's own sending limits raised (the fake's are off): this measures the pipeline.
E2E_ENV = {
    "TGGATE_SEND_PER_CHAT_INTERVAL_S": "0",
    "TGGATE_SEND_GLOBAL_PER_S": "100000",
}
TGGATE_COMPONENTS = ("client", "nginx", "logic-0", "logic-1", "redis")
ENVIRONMENT = ("fake-telegram", "reference-main", "reference-auth")


@dataclass(frozen=True, slots=True)
class Workload:
    chats: int = 200
    per_chat: int = 10
    # Steady phases, one after the other: well below capacity, and a busy but steady day.
    paced_rates: tuple[float, ...] = (100.0, 500.0)  # commands/s
    paced_seconds: float = 10.0
    settle_s: float = 15.0  # no new reply for this long: the rest is lost

    @property
    def burst(self) -> int:
        return self.chats * self.per_chat


@dataclass(slots=True)
class _Shared:
    """The e2e topology, kept for the baseline when both run in one `python -m bench`."""

    topology: Topology | None = None
    e2e: dict[str, Any] | None = None
    stack: Any = None
    # Processes to profile with py-spy over the measured phases ("client", "aiogram" …).
    profiled: tuple[str, ...] = ()


_shared = _Shared()


def _message(chat_id: int, text: str) -> dict[str, object]:
    return {"chat_id": chat_id, "text": text, "language_code": "en"}


def _settle(api: TelegramTestApi, expected: int, *, stall_s: float, timeout_s: float) -> int:
    """Wait until the bot sent `expected` messages in all, or nothing new came for `stall_s`."""
    deadline = time.monotonic() + timeout_s
    seen, last_change = api.bot_messages_total(), time.monotonic()
    while seen < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        now_seen = api.bot_messages_total()
        if now_seen != seen:
            seen, last_change = now_seen, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            break
    return seen


def _latencies(
    api: TelegramTestApi, chat_ids: Sequence[int], phases: Sequence[tuple[str, float]]
) -> dict[str, Any]:
    """Per phase: injection-to-reply latencies (ms), replies lost, first and last stamps.

    `phases` lists (name, start on the monotonic clock) in order; a message belongs to the
    phase it was stored in (every phase waits for the previous one's replies). Within a phase a
    chat's commands and replies are paired in order: tggate keeps a chat's order; aiogram may
    not, and then the pairing is first-in first-out, which keeps the mean as it is."""
    found: dict[str, dict[str, Any]] = {
        name: {"latencies_ms": [], "lost": 0, "first_in": None, "last_out": None, "offers": 0}
        for name, _ in phases
    }
    bounds = [
        (name, start, end)
        for (name, start), (_, end) in zip(phases, [*phases[1:], ("", float("inf"))], strict=True)
    ]
    for chat_id in chat_ids:
        messages = api.messages(chat_id)
        for name, start, end in bounds:
            phase = found[name]
            sent = [
                m["monotonic"]
                for m in messages
                if not m["from_bot"] and start <= m["monotonic"] < end
            ]
            got = [
                m["monotonic"] for m in messages if m["from_bot"] and start <= m["monotonic"] < end
            ]
            phase["lost"] += max(0, len(sent) - len(got))
            # A login offer means the bot did not see the session: a broken benchmark setup.
            phase["offers"] += sum(
                1
                for m in messages
                if m["from_bot"] and start <= m["monotonic"] < end and "not logged in" in m["text"]
            )
            if sent:
                first = min(sent)
                phase["first_in"] = (
                    first if phase["first_in"] is None else min(phase["first_in"], first)
                )
            for s, r in zip(sent, got, strict=False):
                phase["latencies_ms"].append((r - s) * 1000)
                phase["last_out"] = r if phase["last_out"] is None else max(phase["last_out"], r)
    return found


def _inject_paced(
    api: TelegramTestApi, chat_ids: Sequence[int], rate: float, count: int, *, first: int
) -> int:
    """`count` commands at `rate` per second, each when it is due (those that fell due while the
    previous injection was on its way go together), round-robin over the chats."""
    sent = 0
    t0 = time.monotonic()
    while sent < count:
        delay = t0 + sent / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        due = min(count, int((time.monotonic() - t0) * rate) + 1)
        batch = []
        while sent < due:
            n = first + sent
            batch.append(_message(chat_ids[n % len(chat_ids)], COMMANDS[n % len(COMMANDS)]))
            sent += 1
        api.inject(batch)
    return sent


def _run_workload(
    api: TelegramTestApi,
    chat_ids: Sequence[int],
    processes: ProcessSet,
    workload: Workload,
    *,
    base: int,
    profilers: Sequence[Profiler] = (),
) -> dict[str, Any]:
    """The phases against whichever bot polls the fake now; `base` = bot messages so far."""
    # Warm-up: one command per chat (creates the chats in the fake, warms every connection pool).
    warmup_at = time.monotonic()
    api.inject([_message(c, COMMANDS[0]) for c in chat_ids])
    expected = base + len(chat_ids)
    warmed = _settle(api, expected, stall_s=workload.settle_s, timeout_s=120)

    with contextlib.ExitStack() as recording:
        for profiler in profilers:
            recording.enter_context(profiler.recording())
        calls_before = api.stats()["calls"]
        # Burst: all of it at once, chats interleaved, each chat's commands in order.
        burst = [
            _message(c, COMMANDS[(i + k) % len(COMMANDS)])
            for k in range(workload.per_chat)
            for i, c in enumerate(chat_ids)
        ]
        cpu_before, jiffies = processes.cpu(), cpu_jiffies()
        started = burst_at = time.monotonic()
        api.inject(burst)
        expected = warmed + len(burst)
        burst_seen = _settle(api, expected, stall_s=workload.settle_s, timeout_s=300)
        burst_wall = time.monotonic() - started
        cpu_burst = processes.cpu()

        # Paced: each rate in turn, commands spread evenly over the time.
        paced_at: dict[float, float] = {}
        paced_sent: dict[float, int] = {}
        seen = burst_seen
        for rate in workload.paced_rates:
            paced_at[rate] = time.monotonic()
            count = int(rate * workload.paced_seconds)
            paced_sent[rate] = _inject_paced(api, chat_ids, rate, count, first=seen)
            seen = _settle(api, seen + count, stall_s=workload.settle_s, timeout_s=120)
        cpu_after = processes.cpu()
        busy = busy_percent(jiffies, cpu_jiffies())
        span_all = time.monotonic() - started
        calls_after = api.stats()["calls"]

    phases = [("warmup", warmup_at), ("burst", burst_at)]
    phases += [(_paced_name(rate), at) for rate, at in paced_at.items()]
    found = _latencies(api, chat_ids, phases)
    burst_phase = found["burst"]
    burst_span = (
        (burst_phase["last_out"] - burst_phase["first_in"])
        if burst_phase["last_out"] is not None
        else burst_wall
    )
    handled_burst = len(burst_phase["latencies_ms"])
    handled = sum(len(phase["latencies_ms"]) for name, phase in found.items() if name != "warmup")
    cpu = cpu_delta(cpu_before, cpu_after)
    paced = {
        _paced_name(rate): {
            "rate_per_s": rate,
            "commands": paced_sent[rate],
            "lost": found[_paced_name(rate)]["lost"],
            "latency_ms": _rounded(percentiles(found[_paced_name(rate)]["latencies_ms"])),
        }
        for rate in workload.paced_rates
    }
    return {
        "chats": len(chat_ids),
        "burst_commands": len(burst),
        "burst_replies": burst_seen - warmed,
        "burst_lost": len(burst) - (burst_seen - warmed),
        "burst_seconds": round(burst_span, 3),
        "commands_per_s": round(handled_burst / burst_span, 1) if burst_span > 0 else 0.0,
        "burst_latency_ms": _rounded(percentiles(burst_phase["latencies_ms"])),
        "login_offers_instead_of_answers": sum(p["offers"] for p in found.values()),
        "paced": paced,
        "paced_lost": sum(phase["lost"] for phase in paced.values()),
        "cpu_seconds": cpu,
        "cpu_seconds_burst": cpu_delta(cpu_before, cpu_burst),
        "replies_measured": handled,
        "cpu_s_per_1k": {
            name: round(seconds * 1000 / handled, 3) if handled else None
            for name, seconds in cpu.items()
        },
        "peak_rss_mib": processes.peak_rss_mib(),
        # Bot API calls the fake answered over the measured phases (getUpdates, sendMessage …).
        "telegram_calls": {
            method: calls_after.get(method, 0) - calls_before.get(method, 0)
            for method in calls_after
        },
        # Both cores over burst and paced phases: busy in all, and the share of the processes
        # measured (bot, Redis, fake Telegram, modules); the rest is this driver and other work.
        "machine_busy_pct": busy,
        "measured_processes_pct": round(
            100 * sum(cpu.values()) / (span_all * (os.cpu_count() or 1)), 1
        ),
        "profiles": {profiler.name: profiler.top() for profiler in profilers},
    }


def _paced_name(rate: float) -> str:
    return f"paced_{rate:g}"


def _other_work(figures: Mapping[str, Any]) -> float:
    """The share of both cores used by neither the measured processes nor (roughly) this driver."""
    return round(
        max(0.0, float(figures["machine_busy_pct"]) - float(figures["measured_processes_pct"])), 1
    )


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in values.items()}


def _total(per_process: Mapping[str, float | None], names: Sequence[str]) -> float:
    return round(sum(per_process.get(n) or 0.0 for n in names), 3)


# ---- tggate ----


def _open_topology() -> Topology:
    if _shared.topology is None:
        stack = started_topology("e2e", extra_env=E2E_ENV)
        _shared.topology = stack.__enter__()
        _shared.stack = stack
    return _shared.topology


def close_shared() -> None:
    if _shared.stack is not None:
        _shared.stack.__exit__(None, None, None)
    _shared.topology = None
    _shared.stack = None
    _shared.e2e = None


def profile(names: Sequence[str]) -> None:
    """Profile these processes with py-spy in the next runs (bench/README.md, "Profiles")."""
    _shared.profiled = tuple(names)


def _profilers(processes: ProcessSet, label: str) -> list[Profiler]:
    found = []
    for name in _shared.profiled:
        pids = processes.pids.get(name)
        if pids:
            output = RESULTS_DIR / "profiles" / f"{label}-{name}.txt"
            found.append(Profiler(name=name, pid=pids[0], output=output))
    return found


def _tggate_workload(topology: Topology, workload: Workload) -> dict[str, Any]:
    chat_ids = list(range(200_001, 200_001 + workload.chats))
    seed_authorized(
        topology.redis.url if topology.redis else "",
        mint_access_tokens(topology.jwt_secret, dict.fromkeys(chat_ids, "alice")),
        cipher=cipher_of(topology),
    )
    api = TelegramTestApi.of(topology)
    try:
        processes = topology_processes(topology, (*TGGATE_COMPONENTS, *ENVIRONMENT))
        processes.add("bench-driver", os.getpid())  # injects and polls: not other work
        figures = _run_workload(
            api,
            chat_ids,
            processes,
            workload,
            base=api.bot_messages_total(),
            profilers=_profilers(processes, "e2e"),
        )
    finally:
        api.close()
    figures["cpu_s_per_1k_total"] = _total(figures["cpu_s_per_1k"], TGGATE_COMPONENTS)
    figures["peak_rss_mib_total"] = _total(figures["peak_rss_mib"], TGGATE_COMPONENTS)
    return figures


def run_e2e(result: Result, workload: Workload | None = None) -> None:
    workload = workload or Workload()
    topology = _open_topology()
    figures = _tggate_workload(topology, workload)
    # Run twice when the machine was busy: the baseline compares with the quieter run.
    if _shared.e2e is None or _other_work(figures) <= _other_work(_shared.e2e):
        _shared.e2e = figures
    result.details = {
        "workload": _workload_json(workload),
        "tggate": figures,
        "other_work_pct": _other_work(figures),
    }
    _headline(result, figures, "")


def _headline(result: Result, figures: Mapping[str, Any], prefix: str) -> None:
    result.add(
        f"{prefix}commands/s (burst of {figures['burst_commands']})",
        figures["commands_per_s"],
        "1/s",
    )
    for point in ("p50", "p95", "p99"):
        value = figures["burst_latency_ms"].get(point)
        if value is not None:
            result.add(f"{prefix}burst latency {point}", value, "ms")
    for phase in figures["paced"].values():
        for point in ("p50", "p95", "p99"):
            value = phase["latency_ms"].get(point)
            if value is not None:
                result.add(f"{prefix}latency {point} at {phase['rate_per_s']:g}/s", value, "ms")
    result.add(f"{prefix}CPU per 1k commands (bot processes)", figures["cpu_s_per_1k_total"], "s")
    for name in ("client", "aiogram"):
        per_1k = figures["cpu_s_per_1k"].get(name)
        if per_1k is not None:
            result.add(f"{prefix}{_PROCESS_NAMES[name]} CPU per command", per_1k, "ms")
    result.add(f"{prefix}replies lost", figures["burst_lost"] + figures["paced_lost"])


_PROCESS_NAMES = {"client": "Telegram Client", "aiogram": "aiogram bot"}


def _workload_json(workload: Workload) -> dict[str, object]:
    return {
        "chats": workload.chats,
        "commands_per_chat_in_burst": workload.per_chat,
        "commands": list(COMMANDS),
        "paced_rates_per_s": list(workload.paced_rates),
        "paced_seconds_each": workload.paced_seconds,
    }


# ---- the aiogram baseline ----


def _start_aiogram(
    topology: Topology, *, tasks_limit: int | None, log_path: Path
) -> subprocess.Popen[bytes]:
    assert topology.redis is not None
    env = dict(os.environ)
    env.update(
        {
            "BENCH_TELEGRAM_URL": topology.telegram_url,
            "BENCH_BOT_TOKEN": topology.bot_token,
            "BENCH_REDIS_URL": topology.redis.url,
            "BENCH_MAIN_URL": topology.main_url,
            "BENCH_AUTH_URL": topology.auth_url,
            "BENCH_TASKS_LIMIT": str(tasks_limit or ""),
            "PYTHONUNBUFFERED": "1",
        }
    )
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_aiogram"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[1],
            preexec_fn=die_with_parent(),
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _aiogram_workload(
    topology: Topology, workload: Workload, *, tasks_limit: int | None, first_chat: int
) -> dict[str, Any]:
    from bench.baseline_aiogram import seed_sessions

    assert topology.redis is not None
    chat_ids = list(range(first_chat, first_chat + workload.chats))
    tokens = mint_access_tokens(topology.jwt_secret, dict.fromkeys(chat_ids, "alice"))
    bot_id = int(topology.bot_token.split(":", 1)[0])
    asyncio.run(seed_sessions(topology.redis.url, bot_id, tokens))
    log_path = topology.workdir / f"aiogram-{tasks_limit or 'default'}.log"
    process = _start_aiogram(topology, tasks_limit=tasks_limit, log_path=log_path)
    api = TelegramTestApi.of(topology)
    try:
        processes = ProcessSet()
        processes.add("aiogram", process.pid)
        processes.add("bench-driver", os.getpid())
        processes.add("redis", topology.redis.pid)
        for name in ENVIRONMENT:
            popen = topology.processes[name].popen
            processes.add(name, popen.pid if popen else None)
        figures = _run_workload(
            api,
            chat_ids,
            processes,
            workload,
            base=api.bot_messages_total(),
            profilers=_profilers(processes, f"baseline-{tasks_limit or 'default'}"),
        )
    finally:
        api.close()
        _stop(process)
    log_text = log_path.read_text(errors="replace")
    figures["handler_errors"] = log_text.count("Cause exception while process update")
    # Lines naming the error (each failed update's traceback names it more than once).
    figures["max_connections_error_lines"] = log_text.count("MaxConnectionsError")
    figures["cpu_s_per_1k_total"] = _total(figures["cpu_s_per_1k"], ("aiogram", "redis"))
    figures["peak_rss_mib_total"] = _total(figures["peak_rss_mib"], ("aiogram", "redis"))
    return figures


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 2)


def _ratios(tggate: Mapping[str, Any], aiogram: Mapping[str, Any]) -> dict[str, float | None]:
    found = {
        "throughput": _ratio(tggate["commands_per_s"], aiogram["commands_per_s"]),
        "burst_p50": _ratio(
            tggate["burst_latency_ms"].get("p50"), aiogram["burst_latency_ms"].get("p50")
        ),
        "burst_p99": _ratio(
            tggate["burst_latency_ms"].get("p99"), aiogram["burst_latency_ms"].get("p99")
        ),
    }
    for name, phase in tggate["paced"].items():
        theirs = aiogram["paced"].get(name, {}).get("latency_ms", {})
        for point in ("p50", "p99"):
            found[f"{name}_{point}"] = _ratio(phase["latency_ms"].get(point), theirs.get(point))
    found["cpu_per_1k"] = _ratio(tggate["cpu_s_per_1k_total"], aiogram["cpu_s_per_1k_total"])
    found["peak_rss"] = _ratio(tggate["peak_rss_mib_total"], aiogram["peak_rss_mib_total"])
    return found


def run_baseline(result: Result, workload: Workload | None = None) -> None:
    workload = workload or Workload()
    topology = _open_topology()
    tggate = _shared.e2e
    if tggate is None:  # run alone: tggate's figures come from this run too
        tggate = _tggate_workload(topology, workload)
        _shared.e2e = tggate
    # One poller per bot token: tggate's client stops (confirming its offset) first.
    topology.kill("client", signal.SIGTERM)
    default = _aiogram_workload(topology, workload, tasks_limit=None, first_chat=300_001)
    limited = _aiogram_workload(topology, workload, tasks_limit=64, first_chat=400_001)
    ratios = {
        "vs_aiogram_default": _ratios(tggate, default),
        "vs_aiogram_limit_64": _ratios(tggate, limited),
    }
    result.details = {
        "workload": _workload_json(workload),
        "tggate": tggate,
        "aiogram_default": default,
        "aiogram_tasks_limit_64": limited,
        "ratios_tggate_over_aiogram": ratios,
        "other_work_pct": max(_other_work(default), _other_work(limited)),
    }
    _headline(result, default, "aiogram default: ")
    result.add("aiogram default: updates failed in a handler (logged)", default["handler_errors"])
    _headline(result, limited, "aiogram limit 64: ")
    for variant, values in ratios.items():
        for key, value in values.items():
            if value is not None:
                result.add(
                    f"tggate/aiogram {variant.removeprefix('vs_aiogram_')}: {key}", value, "x"
                )
