"""Webhook mode with 1, 2 and 3 intake replicas, and polling beside it (issue 10, deliver 1).

One topology for all of it: the fake Telegram (its limits off) posts every update to nginx's
webhook server, which spreads them over the intake replicas; they work the chats' queues in Redis
and call the 2 Bot Logic replicas behind the other nginx server. The same workload as `e2e`
(bench/e2e.py: 200 Authorized chats, a warm-up command each, a burst of 2,000 commands, then
100 commands/s for 5 s) runs with 3 replicas, then 2 (the third stopped), then 1, and last in
polling mode (`tggate webhook delete`, the Telegram Client started, the last replica stopped), so
the scaling factor and the single-client ceiling come from one run on one machine.

The replicas' own sending limits are raised as in `e2e`: this measures the pipeline, not
Telegram's 30 messages/s.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import (
    Result,
    TelegramTestApi,
    cipher_of,
    mint_access_tokens,
    seed_authorized,
    started_topology,
    topology_processes,
)
from bench.e2e import E2E_ENV, Workload, _run_workload
from tggate_sandbox.topology import Topology

__all__ = ["run_webhook"]

REPLICAS = 3
# Only the 100/s phase: one intake replica on this machine does not keep up with 500/s.
WORKLOAD = Workload(paced_rates=(100.0,), paced_seconds=5.0)
SHARED = ("nginx", "logic-0", "logic-1", "redis")
ENVIRONMENT = ("fake-telegram", "reference-main", "reference-auth")


def _measure(
    topology: Topology, api: TelegramTestApi, chat_ids: Sequence[int], bot: Sequence[str]
) -> dict[str, Any]:
    processes = topology_processes(topology, (*bot, *SHARED, *ENVIRONMENT))
    processes.add("bench-driver", os.getpid())
    figures = _run_workload(api, chat_ids, processes, WORKLOAD, base=api.bot_messages_total())
    mine = (*bot, *SHARED)
    figures["cpu_s_per_1k_total"] = round(
        sum(figures["cpu_s_per_1k"].get(name) or 0.0 for name in mine), 3
    )
    return figures


def run_webhook(result: Result) -> None:
    env = {**E2E_ENV, "TGGATE_INTAKE_CLAIM_TTL_S": "5"}
    with started_topology(
        "webhook", webhook=True, intake_replicas=REPLICAS, extra_env=env
    ) as topology:
        chat_ids = list(range(600_001, 600_001 + WORKLOAD.chats))
        assert topology.redis is not None
        seed_authorized(
            topology.redis.url,
            mint_access_tokens(topology.jwt_secret, dict.fromkeys(chat_ids, "alice")),
            cipher=cipher_of(topology),
        )
        api = TelegramTestApi.of(topology)
        runs: dict[str, dict[str, Any]] = {}
        try:
            for replicas in range(REPLICAS, 0, -1):
                names = [f"intake-{i}" for i in range(replicas)]
                print(f"   webhook, {replicas} intake replica(s)", flush=True)
                runs[f"webhook_{replicas}"] = _measure(topology, api, chat_ids, names)
                if replicas > 1:
                    topology.kill(f"intake-{replicas - 1}", signal.SIGTERM)
            print("   polling, one Telegram Client", flush=True)
            topology.delete_webhook()
            topology.start_client()
            topology.kill("intake-0", signal.SIGTERM)  # the client takes the lease
            topology.wait_polling()
            runs["polling"] = _measure(topology, api, chat_ids, ["client"])
        finally:
            api.close()
    _report(result, runs)


def _p50_at_100(figures: Mapping[str, Any]) -> float:
    latency: Mapping[str, float] = figures["paced"]["paced_100"]["latency_ms"]
    return latency.get("p50", 0.0)


def _report(result: Result, runs: Mapping[str, Mapping[str, Any]]) -> None:
    one = runs["webhook_1"]["commands_per_s"]
    for replicas in range(1, REPLICAS + 1):
        figures = runs[f"webhook_{replicas}"]
        label = f"webhook, {replicas} intake replica{'s' if replicas > 1 else ''}"
        result.add(f"{label}: commands/s (burst of 2000)", figures["commands_per_s"], "1/s")
        if replicas > 1 and one:
            result.add(
                f"{label}: scaling over 1 replica", round(figures["commands_per_s"] / one, 2), "x"
            )
        result.add(f"{label}: latency p50 at 100/s", _p50_at_100(figures), "ms")
        result.add(f"{label}: CPU per 1k commands", figures["cpu_s_per_1k_total"], "s")
        result.add(f"{label}: replies lost", figures["burst_lost"] + figures["paced_lost"])
    polling = runs["polling"]
    result.add("polling, one client: commands/s (burst of 2000)", polling["commands_per_s"], "1/s")
    result.add("polling, one client: latency p50 at 100/s", _p50_at_100(polling), "ms")
    result.add("polling, one client: CPU per 1k commands", polling["cpu_s_per_1k_total"], "s")
    result.add("polling, one client: replies lost", polling["burst_lost"] + polling["paced_lost"])
    result.details = {
        "workload": {
            "chats": WORKLOAD.chats,
            "commands_per_chat_in_burst": WORKLOAD.per_chat,
            "paced_rates_per_s": list(WORKLOAD.paced_rates),
            "paced_seconds": WORKLOAD.paced_seconds,
        },
        "runs": dict(runs),
        "other_work_pct": max(
            round(max(0.0, f["machine_busy_pct"] - f["measured_processes_pct"]), 1)
            for f in runs.values()
        ),
    }
