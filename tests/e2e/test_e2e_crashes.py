"""Crashes under load (docs/contract.md#reliability: no update lost, none handled twice).

Every chat sends ten commands whose replies all differ, in an order of its own, so a lost reply,
a repeated one or one out of order shows in that chat's messages.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import start_topology
from tests.e2e.driver import Person, Telegram, log_in_many, texts_after, wait_for_texts

from tggate_sandbox.topology import Topology

COMMANDS = [
    "/me",
    "/courses",
    "/course py101",
    "/course db201",
    "/course ml301",
    "/tasks py101",
    "/tasks db201",
    "/grades",
    "/students py101",
    "/help",
]
CHATS = 50  # x 10 commands = 500 messages in flight
UNAVAILABLE = "The service is temporarily unavailable. The answer will come once it is back."


def log_in_with_controls(
    telegram: Telegram, topology: Topology, first_chat_id: int
) -> tuple[dict[int, Person], dict[str, str]]:
    """Log in CHATS chats as alice; and each command's reply for alice, asked from control
    chats of their own (one command each, so Telegram's per-chat pause does not add up)."""
    controls = list(range(first_chat_id, first_chat_id + len(COMMANDS)))
    chats = list(range(first_chat_id + len(COMMANDS), first_chat_id + len(COMMANDS) + CHATS))
    people = log_in_many(telegram, topology, controls + chats)
    telegram.inject_many(
        [
            {"chat_id": c, "text": command, "language_code": "en"}
            for c, command in zip(controls, COMMANDS, strict=True)
        ]
    )
    replies = {
        command: people[c].read(1)[0]["text"] for c, command in zip(controls, COMMANDS, strict=True)
    }
    assert len(set(replies.values())) == len(COMMANDS), "the replies must tell commands apart"
    return {c: people[c] for c in chats}, replies


def inject_shuffled(
    telegram: Telegram, people: dict[int, Person], rng: random.Random
) -> dict[int, list[str]]:
    """Every chat's ten commands in an order of its own, chats interleaved; returns the orders."""
    orders = {c: rng.sample(COMMANDS, len(COMMANDS)) for c in people}
    slots = [c for c in people for _ in COMMANDS]
    rng.shuffle(slots)
    position = dict.fromkeys(people, 0)
    messages = []
    for c in slots:
        messages.append({"chat_id": c, "text": orders[c][position[c]], "language_code": "en"})
        position[c] += 1
    telegram.inject_many(messages)
    return orders


def sent_so_far(telegram: Telegram) -> int:
    sent: int = telegram.stats()["calls"].get("sendMessage", 0)
    return sent


def wait_until_sent(telegram: Telegram, count: int, *, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (sent := sent_so_far(telegram)) < count:
        assert time.monotonic() < deadline, f"stuck at {sent} sent messages, waiting for {count}"
        time.sleep(0.005)
    return sent


def new_seed() -> int:
    """A fresh seed each run; E2E_SEED=<the printed seed> replays a run's choices."""
    return int(os.environ.get("E2E_SEED") or random.randrange(2**32))


def first_copies(texts: list[str]) -> list[str]:
    return [text for i, text in enumerate(texts) if text not in texts[:i]]


# ---- the Telegram Client killed while messages are in flight ----


@pytest.fixture
def client_crash_topology(tmp_path: Path) -> Iterator[Topology]:
    # Telegram's own limits, as deployed (30 messages/s overall, 1/s per chat), and a short
    # poller lease, so the restarted client (a new instance) takes over two seconds after a kill.
    env = {
        "TGGATE_SEND_PER_CHAT_INTERVAL_S": "1",
        "TGGATE_SEND_GLOBAL_PER_S": "30",
        "TGGATE_LEASE_TTL_S": "2",
    }
    topology = start_topology(tmp_path, extra_env=env)
    try:
        yield topology
    finally:
        topology.stop()


def test_client_killed_three_times_with_500_messages_in_flight(
    client_crash_topology: Topology,
) -> None:
    """Nothing lost, each chat in order, and a reply repeats only where no client can avoid it:
    a kill between Telegram accepting a reply and the client writing that down repeats that
    reply right after the restart. Replies leave 1/30 s apart, so that is one reply per kill."""
    topology = client_crash_topology
    seed = new_seed()
    print(f"seed={seed}")
    rng = random.Random(seed)
    telegram = Telegram.of(topology)
    with contextlib.closing(telegram):
        run_client_crashes(topology, telegram, rng)


def run_client_crashes(topology: Topology, telegram: Telegram, rng: random.Random) -> None:
    started = time.monotonic()
    people, reply_to = log_in_with_controls(telegram, topology, 80_000)
    print(f"logged in after {time.monotonic() - started:.1f}s")
    total = CHATS * len(COMMANDS)

    baseline = sent_so_far(telegram)
    orders = inject_shuffled(telegram, people, rng)
    started = time.monotonic()
    # Three kills at random points of the work, one in each third of it (so each finds messages
    # in flight), with the client restarted after each.
    thirds = [(20, 160), (170, 310), (320, 460)]
    targets = [rng.randrange(low, high) for low, high in thirds]
    last_before_kill: list[dict[int, dict[str, Any]]] = []
    for kill, target in enumerate(targets, 1):
        wait_until_sent(telegram, baseline + target)
        time.sleep(rng.uniform(0, 0.05))
        topology.kill("client", signal.SIGKILL)
        sent = sent_so_far(telegram) - baseline
        print(f"kill {kill} after {sent} of {total} replies, {time.monotonic() - started:.1f}s")
        assert sent < total, "the kill came after the work was done"
        # What each chat had last when the client died: the only reply a kill may repeat. (After
        # a moment, so that a request already on its way has reached the fake Telegram.)
        time.sleep(0.2)
        last_before_kill.append(
            {c: telegram.bot_messages(c)[-1] for c in people}  # the chat's last bot message
        )
        topology.restart("client")

    wait_for_texts(people.values(), len(COMMANDS), timeout=120)
    print(f"all answered after {time.monotonic() - started:.1f}s")
    time.sleep(1.5)  # a few timer ticks: room for late repeats to show
    repeats = 0
    wrong = {}
    for c, person in people.items():
        want = [reply_to[command] for command in orders[c]]
        messages = [m for m in telegram.bot_messages(c) if m["message_id"] > person.last_seen]
        have = [m["text"] for m in messages]
        # A kill may repeat the chat's last reply, as the first message after the restart.
        allowed = set()
        for snapshot in last_before_kill:
            last = snapshot[c]
            after = [m for m in messages if m["message_id"] > last["message_id"]]
            if after and after[0]["text"] == last["text"]:
                allowed.add(after[0]["message_id"])
        unexplained = [
            m["text"]
            for i, m in enumerate(messages)
            if m["text"] in have[:i] and m["message_id"] not in allowed
        ]
        repeats += len(have) - len(first_copies(have))
        if first_copies(have) != want or unexplained:
            wrong[c] = {"want": want, "have": have, "unexplained repeats": unexplained}
    print(f"repeated replies: {repeats} after {len(targets)} kills")
    assert not wrong, f"{len(wrong)} chats lost, reordered or repeated replies: {wrong}"
    assert repeats <= len(targets), f"{repeats} replies repeated after {len(targets)} kills"
    assert telegram.stats()["pending_updates"] == 0


# ---- a Bot Logic replica killed under load ----


@pytest.fixture
def replica_crash_topology(tmp_path: Path) -> Iterator[Topology]:
    # Module timeouts of 2 s instead of 5 (still far above what a call takes here): a replica
    # derives how long its claim on an update lasts from them, so the claims the dead replica
    # leaves behind run out sooner and the test is shorter.
    topology = start_topology(tmp_path, extra_env={"TGGATE_HTTP_TIMEOUT_S": "2"})
    try:
        yield topology
    finally:
        topology.stop()


def test_bot_logic_replica_killed_under_load_loses_nothing(
    replica_crash_topology: Topology,
) -> None:
    """nginx passes requests to the live replica; a request the dead one had claimed is taken
    over once its claim runs out (the person is told the answer is delayed meanwhile)."""
    topology = replica_crash_topology
    seed = new_seed()
    print(f"seed={seed}")
    rng = random.Random(seed)
    telegram = Telegram.of(topology)
    with contextlib.closing(telegram):
        run_replica_crash(topology, telegram, rng)


def run_replica_crash(topology: Topology, telegram: Telegram, rng: random.Random) -> None:
    people, reply_to = log_in_with_controls(telegram, topology, 81_000)
    total = CHATS * len(COMMANDS)

    baseline = sent_so_far(telegram)
    orders = inject_shuffled(telegram, people, rng)
    wait_until_sent(telegram, baseline + rng.randrange(50, total // 2))
    topology.kill("logic-1", signal.SIGKILL)
    killed_at = time.monotonic()
    sent = sent_so_far(telegram) - baseline
    print(f"logic-1 killed after {sent} of {total} replies")
    assert sent < total, "the kill came after the work was done"

    wait_for_texts(people.values(), len(COMMANDS), timeout=120)
    print(f"all answered {time.monotonic() - killed_at:.1f}s after the kill")
    time.sleep(1.5)
    delayed = 0
    wrong = {}
    for c, person in people.items():
        want = [reply_to[command] for command in orders[c]]
        have = texts_after(person)
        notices = have.count(UNAVAILABLE)
        delayed += notices
        if [t for t in have if t != UNAVAILABLE] != want or notices > 1:
            wrong[c] = {"want": want, "have": have}
    print(f"chats told their answer is delayed: {delayed}")
    assert not wrong, f"{len(wrong)} chats lost, repeated or reordered replies: {wrong}"
