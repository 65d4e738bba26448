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
load generator. The reference point (`bench.bare_fastapi`) gets the same load, on the same Redis;
its requests per CPU-second are the yardstick of both paths. The three take turns: five rounds
of 2 s each (`_measure`), so a drift of the host's speed reaches all three alike.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ProcessSet,
    Result,
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
from tggate_sandbox.topology import Topology, free_port

__all__ = ["run_logic"]

SECONDS = 10.0  # of load on each path, in ROUNDS rounds
ROUNDS = 5
CONCURRENCY = 64
AUTHORIZED_CHATS = 1000


def _load(
    topology: Topology, *, chats: str, seconds: float, first_update_id: int, url: str
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_INTERNAL_TOKEN=topology.internal_token)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            url,
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
            "--every-latency",
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


@dataclass
class _Path:
    """One path under load, over all its rounds."""

    name: str
    url: str
    chats: str
    server: str
    processes: ProcessSet
    requests: int = 0
    elapsed_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    loadgen_cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    machine: list[int] = field(default_factory=lambda: [0, 0])  # busy and total jiffies

    def run(self, topology: Topology, seconds: float, first_update_id: int) -> None:
        before, jiffies = self.processes.cpu(), cpu_jiffies()
        load = _load(
            topology,
            chats=self.chats,
            seconds=seconds,
            first_update_id=first_update_id,
            url=self.url,
        )
        after = cpu_jiffies()
        for name, spent in cpu_delta(before, self.processes.cpu()).items():
            self.cpu[name] = self.cpu.get(name, 0.0) + spent
        self.machine = [
            self.machine[0] + after[0] - jiffies[0],
            self.machine[1] + after[1] - jiffies[1],
        ]
        self.requests += load["requests"]
        self.elapsed_s += load["elapsed_s"]
        self.loadgen_cpu_s += load["cpu_s"]
        self.latencies_ms += load.get("latencies_ms", [])
        for kind, count in load["errors"].items():
            self.errors[kind] = self.errors.get(kind, 0) + count

    def figures(self) -> dict[str, Any]:
        cpu = {name: round(spent, 3) for name, spent in self.cpu.items()}
        ours = (sum(cpu.values()) + self.loadgen_cpu_s) / (self.elapsed_s * (os.cpu_count() or 1))
        requests = self.requests
        return {
            "path": self.name,
            "requests": requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "requests_per_s": round(requests / self.elapsed_s, 1),
            "requests_per_cpu_s": round(requests / cpu[self.server], 1)
            if cpu[self.server]
            else None,
            "cpu_seconds": {**cpu, "loadgen": round(self.loadgen_cpu_s, 3)},
            "cpu_ms_per_request": {k: round(v * 1000 / requests, 3) for k, v in cpu.items()},
            "latency_ms": {
                k: round(v, 2) for k, v in percentiles(self.latencies_ms).items() if k[0] == "p"
            },
            "peak_rss_mib": self.processes.peak_rss_mib(),
            # Both cores: busy in all, and the share of the processes measured here; the rest
            # is other work on the machine, which lowers requests/s but not requests per
            # CPU-second. The load generators' CPU includes their start-up.
            "machine_busy_pct": round(100 * self.machine[0] / self.machine[1], 1)
            if self.machine[1]
            else 0.0,
            "measured_processes_pct": round(100 * ours, 1),
        }


def _measure(topology: Topology, paths: list[_Path]) -> None:
    """Each path warmed up, then ROUNDS rounds in which every path has SECONDS / ROUNDS of load
    in turn, the order rotated each round: the host's speed drifts over a minute by more than
    the difference measured (bench/README.md), and alternating spreads the drift over all."""
    update_ids = itertools.count(1, 10**7)
    for path in paths:
        _load(
            topology, chats=path.chats, seconds=1.0, first_update_id=next(update_ids), url=path.url
        )
    order = list(paths)
    for _ in range(ROUNDS):
        for path in order:
            path.run(topology, SECONDS / ROUNDS, next(update_ids))
        order = order[1:] + order[:1]


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
        bare_process, bare_url = _start_bare(topology.redis.url)
        try:
            logic = topology_processes(topology, ("logic-0", "redis", "reference-main"))
            reference = topology_processes(topology, ("redis",))
            reference.add("bare-fastapi", bare_process.pid)
            url = topology.url("logic-0")
            measured = [
                _Path("unknown", url, "10000000:10100000", "logic-0", logic),
                _Path("authorized", url, f"1:{AUTHORIZED_CHATS + 1}", "logic-0", logic),
                _Path(
                    "bare FastAPI, two Redis round trips",
                    bare_url,
                    "20000000:20100000",
                    "bare-fastapi",
                    reference,
                ),
            ]
            _measure(topology, measured)
        finally:
            bare_process.terminate()
            bare_process.wait(10)
    unknown, authorized, bare = (path.figures() for path in measured)
    paths = (unknown, authorized, bare)
    result.details = {
        "concurrency": CONCURRENCY,
        "seconds": SECONDS,
        "rounds": ROUNDS,
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
