"""Timer cycles at scale (issue 5 item 4, issue 11 item 4): one login-check and one notification
cycle over 1k, 10k and 100k chats, called on Bot Logic replicas directly (`POST /v1/cycles/...`):
on one replica with one shard (the figure of issue 5, comparable with it), and on two replicas
at once, each with one of two shards (as the Telegram Client spreads a tick over a deployment).

Sessions are written straight into Redis. Paths measured:
- login, pending: every Anonymous chat's login is still pending (the steady state: the cycle
  reads each session, asks the Authorization module, writes nothing). The module is a stub that
  answers at once (`bench.stub_modules`; see there why not the reference one).
- login, unknown: every login token is unknown to the module, so each session is deleted (a Lua
  compare-and-set per chat, L2); the sessions are written anew before each run.
- notifications, none waiting: every Authorized chat asks the Main module's `/notification`
  with its access token and gets an empty list: the reference module (a real JWT it verifies;
  the figure of issue 5), and the stub answering at once (what tggate itself costs: the
  reference module needs ~75 µs of one core per call, the stub ~40).
- notifications, bulk (issue 11 item 5, docs/scenarios.md#n2-bulk): the same Authorized chats,
  `TGGATE_NOTIFICATION_MODE=bulk` on the reference Main module's feed: one cycle with 1,000 new
  notifications (for 1,000 people, one chat each) and one with none. The cycle reads the feed,
  not the chats.
Each notification row also gives the Main module calls the cycle made (its own /test/stats).
Wall time is from the first call's start to the last one's answer; CPU is per process over the
calls, Bot Logic's summed over the replicas.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ProcessSet,
    Result,
    cipher_of,
    cpu_delta,
    index_size,
    mint_access_tokens,
    seed_anonymous,
    seed_authorized,
    started_topology,
    topology_processes,
)
from tggate.adapters.embedded_redis import die_with_parent
from tggate.core.session import Status
from tggate_sandbox.topology import Topology, free_port

__all__ = ["SIZES", "run_cycles"]

SIZES = tuple(
    int(s)
    for s in __import__("os").environ.get("BENCH_CYCLE_SIZES", "1000,10000,100000").split(",")
)
_NOTIFIED_BASE = 5_000_000  # Authorized chats: ids apart from the Anonymous ones


REPLICAS = (1, 2)  # one replica with one shard; two replicas with a shard each
LOGIC = ("logic-0", "logic-1")


def _call_cycle(topology: Topology, kind: str, shard: int, shards: int) -> list[str]:
    """One shard's tick: the ids of the messages it hands out."""
    response = httpx.post(
        topology.url(LOGIC[shard]) + f"/v1/cycles/{kind}",
        json={"shard": shard, "shards": shards},
        headers={"X-Internal-Token": topology.internal_token},
        timeout=900,
    )
    response.raise_for_status()
    return [message["id"] for message in response.json()["messages"]]


def _main_calls(url: str, headers: dict[str, str]) -> int:
    """The notification calls the Main module (reference or stub) has answered so far."""
    stats = httpx.get(url + "/test/stats", headers=headers, timeout=10).json()
    return sum(
        stats.get(route, 0)
        for route in ("GET /notification", "DELETE /notification", "GET /notifications")
    )


def _cycle(topology: Topology, kind: str, processes: ProcessSet, replicas: int) -> dict[str, Any]:
    main_url = topology.extra_env.get("TGGATE_MAIN_URL") or topology.main_url
    calls_before = _main_calls(main_url, topology.test_api_headers)
    before = processes.cpu()
    started = time.monotonic()
    with ThreadPoolExecutor(replicas) as pool:
        messages = sum(
            map(len, pool.map(lambda s: _call_cycle(topology, kind, s, replicas), range(replicas)))
        )
    wall = time.monotonic() - started
    measured: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "messages": messages,
        "cpu_seconds": cpu_delta(before, processes.cpu()),
        "rss_mib": processes.rss_mib(),
    }
    if kind == "notifications":
        measured["main_calls"] = _main_calls(main_url, topology.test_api_headers) - calls_before
    return measured


def _row(
    kind: str, path: str, chats: int, replicas: int, measured: dict[str, Any]
) -> dict[str, Any]:
    logic_cpu = sum(measured["cpu_seconds"].get(name, 0.0) for name in LOGIC)
    return {
        "cycle": kind,
        "path": path,
        "chats": chats,
        "replicas": replicas,
        **measured,
        "chats_per_s": round(chats / measured["wall_s"], 1),
        "logic_cpu_us_per_chat": round(logic_cpu * 1e6 / chats, 1),
    }


def _start_stub() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.stub_modules", str(port)],
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


def _notifications(topology: Topology, measure: Any, path: str) -> None:
    """Authorized chats, real access tokens, nothing waiting; each size adds those it lacks."""
    assert topology.redis is not None
    cipher = cipher_of(topology)
    seeded = 0
    for size in SIZES:
        chats = range(_NOTIFIED_BASE + seeded, _NOTIFIED_BASE + size)
        identities = {c: f"user{c}" for c in chats}
        tokens = mint_access_tokens(topology.jwt_secret, identities)
        seed_authorized(topology.redis.url, tokens, cipher=cipher)
        seeded = size
        for replicas in REPLICAS:
            measure("notifications", path, size, replicas, topology)


BULK_NEW = 1_000  # new notifications in a bulk cycle


def _drain(topology: Topology, replicas: int) -> None:
    """Deliver (acknowledge) whatever the outbox holds, outside the measured cycle."""
    for shard in range(replicas):
        ids = _call_cycle(topology, "notifications", shard, replicas)
        if ids:
            httpx.post(
                topology.url(LOGIC[0]) + "/v1/messages/ack",
                json={"ids": ids},
                headers={"X-Internal-Token": topology.internal_token},
                timeout=60,
            ).raise_for_status()


def _bulk(topology: Topology, measure: Any) -> None:
    """The bulk mode over the same chats: BULK_NEW new notifications, then none."""
    assert topology.redis is not None
    cipher = cipher_of(topology)
    seeded = 0
    with httpx.Client(base_url=topology.main_url, headers=topology.admin_headers) as main:
        for size in SIZES:
            chats = range(_NOTIFIED_BASE + seeded, _NOTIFIED_BASE + size)
            tokens = mint_access_tokens(topology.jwt_secret, {c: f"user{c}" for c in chats})
            seed_authorized(topology.redis.url, tokens, cipher=cipher, subject_index=True)
            seeded = size
            for replicas in REPLICAS:
                _drain(topology, replicas)
                # One notification each for BULK_NEW people spread over the chats.
                step = max(1, size // BULK_NEW)
                for chat in range(_NOTIFIED_BASE, _NOTIFIED_BASE + size, step)[:BULK_NEW]:
                    text = f"bench {replicas}"
                    main.post("/notifications", json={"to": f"user{chat}", "text": text})
                measure("notifications", f"bulk, {BULK_NEW:,} new", size, replicas, topology)
                _drain(topology, replicas)
                measure("notifications", "bulk, none new", size, replicas, topology)


def run_cycles(result: Result) -> None:
    stub, stub_url = _start_stub()
    rows: list[dict[str, Any]] = []
    try:
        options: dict[str, Any] = {"nginx": False, "client": False, "logic_replicas": 2}
        env = {"TGGATE_AUTH_URL": stub_url}
        with started_topology("cycles", extra_env=env, **options) as topology:
            assert topology.redis is not None
            url = topology.redis.url
            cipher = cipher_of(topology)
            processes = topology_processes(topology, (*LOGIC, "redis", "reference-main"))
            processes.add("stub-modules", stub.pid)

            def measure(
                kind: str, path: str, size: int, replicas: int, topology: Topology = topology
            ) -> dict[str, Any]:
                measured = _cycle(topology, kind, processes, replicas)
                if path.startswith("unknown"):
                    measured["left_in_index"] = index_size(url, Status.ANONYMOUS)
                rows.append(_row(kind, path, size, replicas, measured))
                label = f"{kind}/{path} {size} x{replicas}"
                print(f"   {label}: {measured['wall_s']}s", flush=True)
                return measured

            # login, unknown tokens: each run on fresh sessions, all deleted by the cycle.
            for size in SIZES:
                for replicas in REPLICAS:
                    logins = {c: f"unknown-{c}" for c in range(1, size + 1)}
                    seed_anonymous(url, logins, cipher=cipher)
                    measure("login", "unknown (deletes)", size, replicas)

            # login, pending: the sessions stay, so each size adds the chats it lacks.
            seeded = 0
            for size in SIZES:
                logins = {c: f"pending-{c}" for c in range(seeded + 1, size + 1)}
                seed_anonymous(url, logins, cipher=cipher)
                seeded = size
                for replicas in REPLICAS:
                    measure("login", "pending", size, replicas)

            _notifications(topology, measure, "none waiting")
            peak = processes.peak_rss_mib()
        # The same over a Main module that answers at once.
        env["TGGATE_MAIN_URL"] = stub_url
        with started_topology("cycles-stub", extra_env=env, **options) as topology:
            processes = topology_processes(topology, (*LOGIC, "redis"))
            processes.add("stub-modules", stub.pid)
            _notifications(topology, measure, "none waiting, Main module stub")
            peak = {n: max(v, processes.peak_rss_mib().get(n, 0.0)) for n, v in peak.items()}
        # The bulk mode on the reference Main module's feed.
        del env["TGGATE_MAIN_URL"]
        with started_topology(
            "cycles-bulk", extra_env=env, bulk_notifications=True, **options
        ) as topology:
            processes = topology_processes(topology, (*LOGIC, "redis", "reference-main"))
            _bulk(topology, measure)
            peak = {n: max(v, processes.peak_rss_mib().get(n, 0.0)) for n, v in peak.items()}
    finally:
        stub.terminate()
        stub.wait(10)
    result.details = {"rows": rows, "peak_rss_mib": peak}
    for row in rows:
        replicas = "1 replica" if row["replicas"] == 1 else f"{row['replicas']} replicas"
        label = f"{row['cycle']} ({row['path']}) {row['chats'] // 1000}k, {replicas}"
        result.add(f"{label}: wall", row["wall_s"], "s")
        result.add(f"{label}: chats/s", row["chats_per_s"], "1/s")
        result.add(f"{label}: Bot Logic CPU per chat", row["logic_cpu_us_per_chat"], "µs")
        if "main_calls" in row:
            result.add(f"{label}: Main module calls", row["main_calls"], "")
        if row["path"].startswith("bulk"):
            logic_cpu = sum(row["cpu_seconds"].get(name, 0.0) for name in LOGIC)
            result.add(f"{label}: Bot Logic CPU per cycle", round(logic_cpu * 1000, 1), "ms")
    result.add(
        "Bot Logic peak memory over all cycles (per replica)",
        max(peak.get(name, 0.0) for name in LOGIC),
        "MiB",
    )
