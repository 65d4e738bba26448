"""Load through the whole topology (docs/contract.md#reliability: per-chat order, cross-chat
concurrency, no update lost or handled twice): 1,000 messages from 100 chats injected at once."""

from __future__ import annotations

import random
import time

from tests.e2e.driver import (
    Telegram,
    log_in_many,
    replica_counters,
    texts_after,
    wait_for_texts,
)

from tggate_sandbox.topology import Topology

# Ten commands whose replies all differ for a student (alice), so a chat's replies show the order
# its commands were handled in, and a lost or doubled one shows too.
COMMANDS = [
    "/me",
    "/courses",
    "/course py101",
    "/course db201",
    "/course ml301",  # Not found.
    "/tasks py101",
    "/tasks db201",
    "/grades",
    "/students py101",  # Not enough rights…
    "/help",
]
CHATS = 100
SEED = 20240531


def expected_replies(telegram: Telegram, topology: Topology, chat_id: int) -> dict[str, str]:
    """Each command's reply for alice, asked one by one from a control chat."""
    control = log_in_many(telegram, topology, [chat_id])[chat_id]
    replies = {command: control.ask_one(command) for command in COMMANDS}
    assert len(set(replies.values())) == len(COMMANDS), "the replies must tell commands apart"
    assert replies["/course ml301"] == "Not found."
    assert replies["/students py101"] == "Not enough rights for this action."
    return replies


def test_thousand_messages_from_hundred_chats_keep_each_chats_order(
    topology: Topology, telegram: Telegram
) -> None:
    print(f"seed={SEED}")
    rng = random.Random(SEED)
    reply_to = expected_replies(telegram, topology, chat_id=70_000)
    chat_ids = list(range(70_001, 70_001 + CHATS))
    people = log_in_many(telegram, topology, chat_ids)
    before = replica_counters(topology)

    orders = {c: rng.sample(COMMANDS, len(COMMANDS)) for c in chat_ids}
    # Chats interleaved at random, each chat's own messages in its order.
    slots = [c for c in chat_ids for _ in COMMANDS]
    rng.shuffle(slots)
    position = dict.fromkeys(chat_ids, 0)
    messages = []
    for c in slots:
        messages.append({"chat_id": c, "text": orders[c][position[c]], "language_code": "en"})
        position[c] += 1
    assert len(messages) == 1000

    started = time.monotonic()
    telegram.inject_many(messages)
    got = wait_for_texts(people.values(), len(COMMANDS), timeout=90)
    elapsed = time.monotonic() - started
    print(f"1000 messages answered in {elapsed:.1f}s")
    time.sleep(1.5)  # three timer ticks: room for a doubled reply to show up

    wrong = {}
    for c, person in people.items():
        want = [reply_to[command] for command in orders[c]]
        have = texts_after(person)
        if have != want:
            wrong[c] = (len(got[c]), len(have), [w == h for w, h in zip(want, have, strict=False)])
    assert not wrong, f"{len(wrong)} chats got replies missing, doubled or out of order: {wrong}"

    after = replica_counters(topology)
    served = [a - b for a, b in zip(after, before, strict=True)]
    print(f"commands per replica: {served}")
    assert sum(served) == 1000
    assert all(count > 0 for count in served), f"a replica served nothing: {served}"
