"""Delivery at Telegram's limits (issue 5, item 5; issue 11, item 6), in two runs.

- *free*: 3,000 notifications to 1,000 chats. The fake Telegram enforces ~30 messages/s overall
  and 1/s per chat (429 with retry_after beyond that); the Telegram Client runs with its real
  limits (30/s, 1 s per chat).
- *paid*: 12,000 notifications to 6,000 chats with paid broadcasts on: the fake Telegram lets
  30 free messages a second through and up to 1,000 a second in all when the rest are marked
  allow_paid_broadcast; the client runs with TGGATE_SEND_PAID_BROADCAST_PER_S=1000.

Each chat is Authorized (sessions written into Redis, real access tokens) and has its
notifications waiting at the reference Main module; the client's notification timer (every
0.5 s, 2 shards over 2 replicas behind nginx) collects them and sends them. Measured: messages/s
from the first to the last message stored by the fake, 429s it answered (and how many ignored a
retry_after), paid broadcasts, and that every chat got exactly its texts, in creation order.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    chats: int
    per_chat: int
    first_chat: int
    ceiling_per_s: float
    paid_per_s: float = 0.0  # the client's TGGATE_SEND_PAID_BROADCAST_PER_S; 0: off

    @property
    def total(self) -> int:
        return self.chats * self.per_chat

    def env(self) -> dict[str, str]:
        return {
            "TGGATE_NOTIFICATION_CYCLE_INTERVAL_S": "0.5",
            "TGGATE_SEND_GLOBAL_PER_S": "30",
            "TGGATE_SEND_PER_CHAT_INTERVAL_S": "1",
            "TGGATE_SEND_PAID_BROADCAST_PER_S": str(self.paid_per_s),
        }


FREE = Run("free", chats=1000, per_chat=3, first_chat=600_001, ceiling_per_s=30)
PAID = Run("paid", chats=6000, per_chat=2, first_chat=700_001, ceiling_per_s=1000, paid_per_s=1000)
FREE_PER_S = 30


async def _post_notifications(main_url: str, headers: dict[str, str], notes: list[Any]) -> None:
    """Every (identity, text) to the Main module's admin API, 32 at a time, in order per chat."""
    async with httpx.AsyncClient(base_url=main_url, headers=headers, timeout=60) as main:
        slots = asyncio.Semaphore(32)

        async def post(identity: str, texts: list[str]) -> None:
            async with slots:
                for text in texts:
                    body = {"to": identity, "text": text}
                    (await main.post("/notifications", json=body)).raise_for_status()

        await asyncio.gather(*(post(identity, texts) for identity, texts in notes))


def _delivery(run: Run) -> dict[str, Any]:
    options: dict[str, Any] = {"fake_telegram_rate_limits": True, "client": False}
    with started_topology(f"delivery-{run.name}", extra_env=run.env(), **options) as topology:
        assert topology.redis is not None
        chat_ids = list(range(run.first_chat, run.first_chat + run.chats))
        identities = {c: f"reader{c}" for c in chat_ids}
        seed_authorized(
            topology.redis.url,
            mint_access_tokens(topology.jwt_secret, identities),
            cipher=cipher_of(topology),
        )
        api = TelegramTestApi.of(topology)
        # The chats must exist in the fake (a bot writes only to people who wrote first); their
        # first messages are dropped before the client starts, so no reply is owed to them.
        for start in range(0, len(chat_ids), 2000):
            api.inject(
                [
                    {"chat_id": c, "text": "hi", "language_code": "en"}
                    for c in chat_ids[start : start + 2000]
                ]
            )
        api.drop_pending_updates()
        expected = {
            c: [f"notification {k + 1} for chat {c}" for k in range(run.per_chat)] for c in chat_ids
        }
        asyncio.run(
            _post_notifications(
                topology.main_url,
                topology.admin_headers,
                [(identities[c], texts) for c, texts in expected.items()],
            )
        )
        topology.start_client()
        processes = topology_processes(topology)
        before = processes.cpu()
        started = time.monotonic()
        seen = api.wait_for_bot_messages(run.total, timeout_s=400, poll_s=0.5)
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
    paid = int(stats.get("paid_broadcasts", 0))
    return {
        "chats": run.chats,
        "notifications": run.total,
        "delivered": len(stamps),
        "seen_when_waiting_ended": seen,
        "chats_with_wrong_texts": wrong,
        "chats_out_of_creation_order": out_of_order,
        "first_to_last_s": round(span, 2),
        "wall_from_client_start_s": round(wall, 2),
        "messages_per_s": round(rate, 2),
        "ceiling_per_s": run.ceiling_per_s,
        "client_paid_broadcast_per_s": run.paid_per_s,
        "rate_limited_429": stats["rate_limited"],
        "retry_after_violations": stats["retry_after_violations"],
        "paid_broadcasts": paid,
        # The free rate could have carried this many of them over the same span: the rest had
        # to be paid for.
        "paid_broadcasts_needed": max(0, len(stamps) - int(FREE_PER_S * span) - FREE_PER_S),
        "send_message_calls": stats["calls"].get("sendMessage", 0),
        "cpu_seconds": cpu,
        "peak_rss_mib": processes.peak_rss_mib(),
    }


def run_delivery(result: Result) -> None:
    found = {run.name: _delivery(run) for run in (FREE, PAID)}
    result.details = found
    for name, figures in found.items():
        prefix = f"{name}: " if name != "free" else ""
        result.add(f"{prefix}delivered", f"{figures['delivered']}/{figures['notifications']}")
        result.add(
            f"{prefix}chats with missing, extra or wrong texts", figures["chats_with_wrong_texts"]
        )
        result.add(
            f"{prefix}chats whose notifications came out of creation order",
            figures["chats_out_of_creation_order"],
        )
        result.add(f"{prefix}messages/s (first to last message)", figures["messages_per_s"], "1/s")
        result.add(
            f"{prefix}share of the {figures['ceiling_per_s']:g}/s ceiling",
            figures["messages_per_s"] / figures["ceiling_per_s"] * 100,
            "%",
        )
        result.add(f"{prefix}429s received", figures["rate_limited_429"])
        result.add(f"{prefix}429s for ignoring retry_after", figures["retry_after_violations"])
        result.add(f"{prefix}first to last message", figures["first_to_last_s"], "s")
        if figures["client_paid_broadcast_per_s"]:
            result.add(f"{prefix}paid broadcasts (0.1 Stars each)", figures["paid_broadcasts"])
            result.add(
                f"{prefix}paid broadcasts the free rate left no room for",
                figures["paid_broadcasts_needed"],
            )
