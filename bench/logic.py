"""Bot Logic alone (issue 5 item 3, issue 11 item 3): `/v1/commands` requests per second, and
per core, against a bare FastAPI handler doing two Redis round trips in the same run.

One Bot Logic process on real Redis (no nginx, no client), the reference Main module beside it,
and a load generator (`bench.loadgen`) in a second process posting commands with unique
update_ids over 64 keep-alive connections. Two paths:
- unknown: `/me` from chats with no session (U1: claim the update_id, read the session, reply
  with the login offer, store the answer);
- authorized: `/me` from 1,000 Authorized chats (Z4/Z5: the same plus a call to the Main module).
"Per core" divides the requests by the CPU seconds the Bot Logic process itself used, so it does
not depend on how the two cores of this machine were shared with Redis, the Main module and the
load generator. The reference point (`bench.bare_fastapi`) gets the same load, on the same Redis,
right after; its requests per CPU-second are the yardstick of both paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ProcessSet,
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
from tggate.adapters.embedded_redis import die_with_parent
from tggate_sandbox.topology import Topology, free_port

__all__ = ["run_logic"]

SECONDS = 10.0
CONCURRENCY = 64
AUTHORIZED_CHATS = 1000


def _load(
    topology: Topology, *, chats: str, seconds: float, first_update_id: int, url: str | None = None
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_INTERNAL_TOKEN=topology.internal_token)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            url or topology.url("logic-0"),
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


def _measure(
    topology: Topology,
    name: str,
    *,
    chats: str,
    first_update_id: int,
    processes: ProcessSet | None = None,
    url: str | None = None,
    server: str = "logic-0",
) -> dict[str, Any]:
    processes = processes or topology_processes(topology, ("logic-0", "redis", "reference-main"))
    _load(topology, chats=chats, seconds=1.0, first_update_id=first_update_id, url=url)  # warm-up
    before, jiffies = processes.cpu(), cpu_jiffies()
    load = _load(
        topology, chats=chats, seconds=SECONDS, first_update_id=first_update_id + 10**8, url=url
    )
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
        "requests_per_cpu_s": round(requests / cpu[server], 1) if cpu[server] else None,
        "cpu_seconds": {**cpu, "loadgen": load["cpu_s"]},
        "cpu_ms_per_request": {k: round(v * 1000 / requests, 3) for k, v in cpu.items()},
        "latency_ms": load["latency_ms"],
        "peak_rss_mib": processes.peak_rss_mib(),
        # Both cores: busy in all, and the share of the processes measured here; the rest is
        # other work on the machine, which lowers requests/s but not requests per CPU-second.
        "machine_busy_pct": busy,
        "measured_processes_pct": round(100 * ours, 1),
    }


def _start_bare(redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_fastapi", str(port), redis_url],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/healthz", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the bare FastAPI reference did not start")


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
        bare_process, bare_url = _start_bare(topology.redis.url)
        try:
            processes = topology_processes(topology, ("redis",))
            processes.add("bare-fastapi", bare_process.pid)
            bare = _measure(
                topology,
                "bare FastAPI, two Redis round trips",
                chats="10000000:10100000",
                first_update_id=2 * 10**9,
                processes=processes,
                url=bare_url,
                server="bare-fastapi",
            )
        finally:
            bare_process.terminate()
            bare_process.wait(10)
    paths = (unknown, authorized, bare)
    result.details = {
        "concurrency": CONCURRENCY,
        "seconds": SECONDS,
        "unknown": unknown,
        "authorized": authorized,
        "bare_fastapi": bare,
        "other_work_pct": max(
            round(max(0.0, f["machine_busy_pct"] - f["measured_processes_pct"]), 1) for f in paths
        ),
    }
    for figures in paths:
        path = figures["path"]
        result.add(f"{path}: requests/s", figures["requests_per_s"], "1/s")
        result.add(
            f"{path}: requests per CPU-second of its process", figures["requests_per_cpu_s"], "1/s"
        )
        result.add(f"{path}: latency p50", figures["latency_ms"].get("p50", 0.0), "ms")
        result.add(f"{path}: latency p99", figures["latency_ms"].get("p99", 0.0), "ms")
        errors = sum(figures["errors"].values())
        if errors:
            result.add(f"{path}: errors", errors)
    for figures in (unknown, authorized):
        if figures["requests_per_cpu_s"] and bare["requests_per_cpu_s"]:
            ratio = figures["requests_per_cpu_s"] / bare["requests_per_cpu_s"]
            result.add(f"{figures['path']} / bare FastAPI: requests per CPU-second", ratio, "x")
