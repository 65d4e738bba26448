"""Delivery at Telegram's limits (issue 5, item 5): 3,000 notifications to 1,000 chats.

The fake Telegram enforces ~30 messages/s overall and 1/s per chat (429 with retry_after beyond
that); the Telegram Client runs with its real limits (30/s, 1 s per chat). 1,000 Authorized
chats (sessions written into Redis, real access tokens) have 3 notifications each waiting at the
reference Main module; the client's notification timer (every 0.5 s, 2 shards over 2 replicas
behind nginx) collects them and sends them. Measured: messages/s from the first to the last
message stored by the fake, 429s it answered (and how many ignored a retry_after), and that
every chat got exactly its 3 texts.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.common import (
    Result,
    TelegramTestApi,
    cipher_of,
    cpu_delta,
    mint_access_tokens,
    seed_authorized,
    started_topology,
    topology_processes,
)

__all__ = ["run_delivery"]

CHATS = 1000
PER_CHAT = 3
FIRST_CHAT = 600_001
ENV = {
    "TGGATE_NOTIFICATION_CYCLE_INTERVAL_S": "0.5",
    "TGGATE_SEND_GLOBAL_PER_S": "30",
    "TGGATE_SEND_PER_CHAT_INTERVAL_S": "1",
}


def run_delivery(result: Result) -> None:
    total = CHATS * PER_CHAT
    options: dict[str, Any] = {"fake_telegram_rate_limits": True, "client": False}
    with started_topology("delivery", extra_env=ENV, **options) as topology:
        assert topology.redis is not None
        chat_ids = list(range(FIRST_CHAT, FIRST_CHAT + CHATS))
        identities = {c: f"reader{c}" for c in chat_ids}
        seed_authorized(
            topology.redis.url,
            mint_access_tokens(topology.jwt_secret, identities),
            cipher=cipher_of(topology),
        )
        api = TelegramTestApi.of(topology)
        # The chats must exist in the fake (a bot writes only to people who wrote first); their
        # first messages are dropped before the client starts, so no reply is owed to them.
        api.inject([{"chat_id": c, "text": "hi", "language_code": "en"} for c in chat_ids])
        api.drop_pending_updates()
        expected: dict[int, list[str]] = {c: [] for c in chat_ids}
        with httpx.Client(
            base_url=topology.main_url, headers=topology.admin_headers, timeout=30
        ) as main:
            for k in range(PER_CHAT):
                for c in chat_ids:
                    text = f"notification {k + 1} for chat {c}"
                    main.post("/notifications", json={"to": identities[c], "text": text})
                    expected[c].append(text)
        topology.start_client()
        processes = topology_processes(topology)
        before = processes.cpu()
        started = time.monotonic()
        seen = api.wait_for_bot_messages(total, timeout_s=400, poll_s=0.5)
        wall = time.monotonic() - started
        time.sleep(2.0)  # room for a doubled message to show up
        cpu = cpu_delta(before, processes.cpu())
        stats = api.stats()
        stamps: list[float] = []
        wrong = out_of_order = 0
        for c in chat_ids:
            replies = [m for m in api.messages(c) if m["from_bot"]]
            stamps += [m["monotonic"] for m in replies]
            # Each reply is the notification text in the bot's wording around it.
            got = [next((e for e in expected[c] if e in m["text"]), None) for m in replies]
            if sorted(map(str, got)) != sorted(expected[c]):
                wrong += 1
            elif got != expected[c]:
                out_of_order += 1
        api.close()
    span = max(stamps) - min(stamps) if stamps else 0.0
    rate = (len(stamps) - 1) / span if span > 0 else 0.0
    result.details = {
        "chats": CHATS,
        "notifications": total,
        "delivered": len(stamps),
        "seen_when_waiting_ended": seen,
        "chats_with_wrong_texts": wrong,
        "chats_out_of_creation_order": out_of_order,
        "first_to_last_s": round(span, 2),
        "wall_from_client_start_s": round(wall, 2),
        "messages_per_s": round(rate, 2),
        "ceiling_per_s": 30,
        "rate_limited_429": stats["rate_limited"],
        "retry_after_violations": stats["retry_after_violations"],
        "send_message_calls": stats["calls"].get("sendMessage", 0),
        "cpu_seconds": cpu,
        "peak_rss_mib": processes.peak_rss_mib(),
    }
    result.add("delivered", f"{len(stamps)}/{total}")
    result.add("chats with missing, extra or wrong texts", wrong)
    result.add("chats whose notifications came out of creation order", out_of_order)
    result.add("messages/s (first to last message)", rate, "1/s")
    result.add("share of the 30/s ceiling", rate / 30 * 100, "%")
    result.add("429s received", stats["rate_limited"])
    result.add("429s for ignoring retry_after", stats["retry_after_violations"])
    result.add("first to last message", span, "s")
