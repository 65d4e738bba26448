"""Timer cycles at scale (issue 5, item 4): one login-check and one notification cycle over 1k,
10k and 100k chats, called on one Bot Logic replica directly (`POST /v1/cycles/...`, one shard).

Sessions are written straight into Redis. Paths measured:
- login, pending: every Anonymous chat's login is still pending (the steady state: the cycle
  reads each session, asks the Authorization module, writes nothing). The module is a stub that
  answers at once (`bench.stub_auth`; see there why not the reference one).
- login, unknown: every login token is unknown to the module, so each session is deleted (a Lua
  compare-and-set per chat, L2); the sessions are written anew before each size.
- notifications, none waiting: every Authorized chat asks the reference Main module's
  `/notification` with its access token (a real JWT it verifies) and gets an empty list.
Wall time is the HTTP call; CPU is per process over the call.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.common import (
    ProcessSet,
    Result,
    cipher_of,
    cpu_delta,
    mint_access_tokens,
    seed_anonymous,
    seed_authorized,
    started_topology,
    topology_processes,
)
from tggate.adapters.embedded_redis import die_with_parent
from tggate_sandbox.topology import Topology, free_port

__all__ = ["SIZES", "run_cycles"]

SIZES = tuple(
    int(s)
    for s in __import__("os").environ.get("BENCH_CYCLE_SIZES", "1000,10000,100000").split(",")
)
_NOTIFIED_BASE = 5_000_000  # Authorized chats: ids apart from the Anonymous ones


def _cycle(topology: Topology, kind: str, processes: ProcessSet) -> dict[str, Any]:
    before = processes.cpu()
    started = time.monotonic()
    response = httpx.post(
        topology.url("logic-0") + f"/v1/cycles/{kind}",
        json={"shard": 0, "shards": 1},
        headers={"X-Internal-Token": topology.internal_token},
        timeout=900,
    )
    wall = time.monotonic() - started
    response.raise_for_status()
    return {
        "wall_s": round(wall, 3),
        "messages": len(response.json()["messages"]),
        "cpu_seconds": cpu_delta(before, processes.cpu()),
        "rss_mib": processes.rss_mib(),
    }


def _index_size(redis_url: str, status: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.scard(f"tggate:index:{status}"))
    finally:
        client.close()


def _row(kind: str, path: str, chats: int, measured: dict[str, Any]) -> dict[str, Any]:
    logic_cpu = measured["cpu_seconds"].get("logic-0", 0.0)
    return {
        "cycle": kind,
        "path": path,
        "chats": chats,
        **measured,
        "chats_per_s": round(chats / measured["wall_s"], 1),
        "logic_cpu_us_per_chat": round(logic_cpu * 1e6 / chats, 1),
    }


def _start_stub() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.stub_auth", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/test/stats", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the stub Authorization module did not start")


def run_cycles(result: Result) -> None:
    stub, stub_url = _start_stub()
    rows: list[dict[str, Any]] = []
    try:
        options: dict[str, Any] = {"nginx": False, "client": False, "logic_replicas": 1}
        env = {"TGGATE_AUTH_URL": stub_url}
        with started_topology("cycles", extra_env=env, **options) as topology:
            assert topology.redis is not None
            url = topology.redis.url
            cipher = cipher_of(topology)
            processes = topology_processes(topology, ("logic-0", "redis", "reference-main"))
            processes.add("stub-auth", stub.pid)

            # login, unknown tokens: each size on fresh sessions, all deleted by the cycle.
            for size in SIZES:
                seed_anonymous(url, {c: f"unknown-{c}" for c in range(1, size + 1)}, cipher=cipher)
                measured = _cycle(topology, "login", processes)
                measured["left_in_index"] = _index_size(url, "anonymous")
                rows.append(_row("login", "unknown (deletes)", size, measured))
                print(f"   login/unknown {size}: {measured['wall_s']}s", flush=True)

            # login, pending: the sessions stay, so each size adds the chats it lacks.
            seeded = 0
            for size in SIZES:
                seed_anonymous(
                    url, {c: f"pending-{c}" for c in range(seeded + 1, size + 1)}, cipher=cipher
                )
                seeded = size
                rows.append(_row("login", "pending", size, _cycle(topology, "login", processes)))
                print(f"   login/pending {size}: {rows[-1]['wall_s']}s", flush=True)

            # notifications: Authorized chats, real access tokens, nothing waiting.
            seeded = 0
            for size in SIZES:
                chats = range(_NOTIFIED_BASE + seeded, _NOTIFIED_BASE + size)
                identities = {c: f"user{c}" for c in chats}
                seed_authorized(
                    url, mint_access_tokens(topology.jwt_secret, identities), cipher=cipher
                )
                seeded = size
                measured = _cycle(topology, "notifications", processes)
                rows.append(_row("notifications", "none waiting", size, measured))
                print(f"   notifications {size}: {measured['wall_s']}s", flush=True)
            peak = processes.peak_rss_mib()
    finally:
        stub.terminate()
        stub.wait(10)
    result.details = {"rows": rows, "peak_rss_mib": peak}
    for row in rows:
        label = f"{row['cycle']} ({row['path']}) {row['chats'] // 1000}k"
        result.add(f"{label}: wall", row["wall_s"], "s")
        result.add(f"{label}: chats/s", row["chats_per_s"], "1/s")
        result.add(f"{label}: Bot Logic CPU per chat", row["logic_cpu_us_per_chat"], "µs")
    result.add("Bot Logic peak memory over all cycles", peak.get("logic-0", 0.0), "MiB")
