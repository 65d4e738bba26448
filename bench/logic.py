"""Bot Logic alone (issue 5, item 3): `/v1/commands` requests per second, and per core.

One Bot Logic process on real Redis (no nginx, no client), the reference Main module beside it,
and a load generator (`bench.loadgen`) in a second process posting commands with unique
update_ids over 64 keep-alive connections. Two paths:
- unknown: `/me` from chats with no session (U1: claim the update_id, read the session, reply
  with the login offer, store the answer);
- authorized: `/me` from 1,000 Authorized chats (Z4/Z5: the same plus a call to the Main module).
"Per core" divides the requests by the CPU seconds the Bot Logic process itself used, so it does
not depend on how the two cores of this machine were shared with Redis, the Main module and the
load generator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import (
    Result,
    busy_percent,
    cipher_of,
    cpu_delta,
    cpu_jiffies,
    mint_access_tokens,
    seed_authorized,
    started_topology,
    topology_processes,
)
from tggate_sandbox.topology import Topology

__all__ = ["run_logic"]

SECONDS = 10.0
CONCURRENCY = 64
AUTHORIZED_CHATS = 1000


def _load(
    topology: Topology, *, chats: str, seconds: float, first_update_id: int
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_INTERNAL_TOKEN=topology.internal_token)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            topology.url("logic-0"),
            "--chats",
            chats,
            "--command",
            "me",
            "--concurrency",
            str(CONCURRENCY),
            "--seconds",
            str(seconds),
            "--first-update-id",
            str(first_update_id),
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _measure(topology: Topology, name: str, *, chats: str, first_update_id: int) -> dict[str, Any]:
    processes = topology_processes(topology, ("logic-0", "redis", "reference-main"))
    _load(topology, chats=chats, seconds=1.0, first_update_id=first_update_id)  # warm-up
    before, jiffies = processes.cpu(), cpu_jiffies()
    load = _load(topology, chats=chats, seconds=SECONDS, first_update_id=first_update_id + 10**8)
    cpu = cpu_delta(before, processes.cpu())
    busy = busy_percent(jiffies, cpu_jiffies())
    ours = (sum(cpu.values()) + load["cpu_s"]) / (load["elapsed_s"] * (os.cpu_count() or 1))
    requests = load["requests"]
    return {
        "path": name,
        "requests": requests,
        "errors": load["errors"],
        "elapsed_s": load["elapsed_s"],
        "requests_per_s": round(requests / load["elapsed_s"], 1),
        "requests_per_cpu_s": round(requests / cpu["logic-0"], 1) if cpu["logic-0"] else None,
        "cpu_seconds": {**cpu, "loadgen": load["cpu_s"]},
        "cpu_ms_per_request": {k: round(v * 1000 / requests, 3) for k, v in cpu.items()},
        "latency_ms": load["latency_ms"],
        "peak_rss_mib": processes.peak_rss_mib(),
        # Both cores: busy in all, and the share of the processes measured here; the rest is
        # other work on the machine, which lowers requests/s but not requests per CPU-second.
        "machine_busy_pct": busy,
        "measured_processes_pct": round(100 * ours, 1),
    }


def run_logic(result: Result) -> None:
    with started_topology("logic", nginx=False, client=False, logic_replicas=1) as topology:
        assert topology.redis is not None
        chat_ids = range(1, AUTHORIZED_CHATS + 1)
        tokens = mint_access_tokens(topology.jwt_secret, dict.fromkeys(chat_ids, "alice"))
        seed_authorized(topology.redis.url, tokens, cipher=cipher_of(topology))
        unknown = _measure(topology, "unknown", chats="10000000:10100000", first_update_id=1)
        authorized = _measure(
            topology, "authorized", chats=f"1:{AUTHORIZED_CHATS + 1}", first_update_id=10**9
        )
    result.details = {
        "concurrency": CONCURRENCY,
        "seconds": SECONDS,
        "unknown": unknown,
        "authorized": authorized,
        "other_work_pct": max(
            round(max(0.0, f["machine_busy_pct"] - f["measured_processes_pct"]), 1)
            for f in (unknown, authorized)
        ),
    }
    for figures in (unknown, authorized):
        path = figures["path"]
        result.add(f"{path}: requests/s", figures["requests_per_s"], "1/s")
        result.add(
            f"{path}: requests per CPU-second of Bot Logic", figures["requests_per_cpu_s"], "1/s"
        )
        result.add(f"{path}: latency p50", figures["latency_ms"].get("p50", 0.0), "ms")
        result.add(f"{path}: latency p99", figures["latency_ms"].get("p99", 0.0), "ms")
        errors = sum(figures["errors"].values())
        if errors:
            result.add(f"{path}: errors", errors)
