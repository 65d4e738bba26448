"""Webhook mode end to end (issue 10, docs/webhook.md): the fake Telegram posts every update to
real nginx, which hands it to one of three intake replicas; they store it in Redis, work the
chats' queues and reply through the Bot Logic replicas behind the other nginx server.

Every chat sends commands whose replies all differ, in an order of its own, so a lost reply, a
repeated one or one out of order shows in that chat's messages. Nothing here waits for time to
pass to conclude that something did not happen: each check waits for an event (a reply, a
sentinel command answered after everything before it, the fake's record of a refused request).
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from tests.e2e.conftest import start_topology
from tests.e2e.driver import (
    Person,
    Telegram,
    inject_shuffled,
    log_in_many,
    texts_after,
    wait_for_texts,
)

from tggate.adapters.redis_intake import IntakeKeys
from tggate.intake.app import SECRET_HEADER
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
CHATS = 200
# Z1's reply differs from every command's above.
SENTINEL = "/login"
WEBHOOK_ENV = {
    # A dead replica's chats go to the others two seconds after its last renewal.
    "TGGATE_INTAKE_CLAIM_TTL_S": "2",
}


def new_seed() -> int:
    return random.randrange(2**32)


@pytest.fixture(scope="module")
def webhook_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = start_topology(
        tmp_path_factory.mktemp("webhook"),
        webhook=True,
        intake_replicas=3,
        extra_env=WEBHOOK_ENV,
    )
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="module")
def telegram(webhook_topology: Topology) -> Iterator[Telegram]:
    client = Telegram.of(webhook_topology)
    yield client
    client.close()


@pytest.fixture(scope="module")
def reply_to(webhook_topology: Topology, telegram: Telegram) -> dict[str, str]:
    """Each command's reply for alice, asked one by one from a control chat."""
    control = log_in_many(telegram, webhook_topology, [90_000])[90_000]
    replies = {command: control.ask_one(command) for command in [*COMMANDS, SENTINEL]}
    assert len(set(replies.values())) == len(COMMANDS) + 1, "the replies must tell commands apart"
    return replies


@pytest.fixture(scope="module")
def people(webhook_topology: Topology, telegram: Telegram) -> dict[int, Person]:
    """CHATS chats logged in as alice (the login-check timer runs on one intake replica)."""
    return log_in_many(telegram, webhook_topology, list(range(90_001, 90_001 + CHATS)))


def first(wrong: dict[int, Any]) -> dict[int, Any]:
    """A few of the wrong chats, for a readable failure."""
    return dict(list(wrong.items())[:2])


def first_copies(texts: list[str]) -> list[str]:
    return [text for i, text in enumerate(texts) if text not in texts[:i]]


def sent_so_far(telegram: Telegram) -> int:
    sent: int = telegram.stats()["calls"].get("sendMessage", 0)
    return sent


def handled_by_intakes(topology: Topology) -> float:
    total = 0.0
    for url in topology.intake_urls():
        text = httpx.get(url + "/metrics", timeout=10).text
        match = re.search(r'^tggate_intake_updates_total\{result="done"\} (\S+)$', text, re.M)
        total += float(match.group(1)) if match else 0.0
    return total


def wait_until_confirmed(telegram: Telegram, timeout_s: float = 30.0) -> None:
    """Until Telegram holds no update: each one was answered 2xx by the webhook, or confirmed by
    the polling client's next getUpdates."""
    deadline = time.monotonic() + timeout_s
    while (pending := telegram.stats()["pending_updates"]) > 0:
        assert time.monotonic() < deadline, f"{pending} updates still pending at Telegram"
        time.sleep(0.05)


def send_sentinels(telegram: Telegram, people: dict[int, Person]) -> None:
    """One more command per chat: once its reply is there, everything before it was handled
    (a chat's updates are handled in order), repeats included."""
    telegram.inject_many([{"chat_id": c, "text": SENTINEL, "language_code": "en"} for c in people])


def test_2000_messages_from_200_chats_are_answered_once_each_chat_in_order(
    webhook_topology: Topology,
    telegram: Telegram,
    people: dict[int, Person],
    reply_to: dict[str, str],
) -> None:
    seed = new_seed()
    print(f"seed={seed}")
    handled_before = handled_by_intakes(webhook_topology)
    orders = inject_shuffled(telegram, people, random.Random(seed), COMMANDS)
    started = time.monotonic()
    wait_for_texts(people.values(), len(COMMANDS), timeout=240)
    print(f"{CHATS * len(COMMANDS)} messages answered in {time.monotonic() - started:.1f}s")
    send_sentinels(telegram, people)
    wait_for_texts(people.values(), len(COMMANDS) + 1, timeout=120)

    wrong = {}
    for c, person in people.items():
        want = [reply_to[command] for command in orders[c]] + [reply_to[SENTINEL]]
        have = texts_after(person)
        if have != want:
            wrong[c] = {"want": want, "have": have}
        person.last_seen = max(m["message_id"] for m in telegram.bot_messages(c))
    assert not wrong, f"{len(wrong)} chats lost, repeated or reordered replies: {first(wrong)}"
    # Each update handled once, whichever replica took it.
    assert handled_by_intakes(webhook_topology) - handled_before == CHATS * (len(COMMANDS) + 1)
    wait_until_confirmed(telegram)


def test_a_replica_killed_mid_burst_loses_nothing_and_keeps_each_chats_order(
    webhook_topology: Topology,
    telegram: Telegram,
    people: dict[int, Person],
    reply_to: dict[str, str],
) -> None:
    seed = new_seed()
    print(f"seed={seed}")
    rng = random.Random(seed)
    baseline = sent_so_far(telegram)
    orders = inject_shuffled(telegram, people, rng, COMMANDS)
    target = baseline + rng.randrange(300, 900)
    deadline = time.monotonic() + 120
    while sent_so_far(telegram) < target:
        assert time.monotonic() < deadline, "the burst does not progress"
        time.sleep(0.005)
    webhook_topology.kill("intake-1", signal.SIGKILL)
    killed_after = sent_so_far(telegram) - baseline
    print(f"intake-1 killed after {killed_after} of {CHATS * len(COMMANDS)} replies")
    assert killed_after < CHATS * len(COMMANDS), "the kill came after the work was done"

    wait_for_texts(people.values(), len(COMMANDS), timeout=240)
    send_sentinels(telegram, people)
    wait_for_texts(people.values(), len(COMMANDS) + 1, timeout=120)
    repeats, wrong = 0, {}
    for c, person in people.items():
        want = [reply_to[command] for command in orders[c]] + [reply_to[SENTINEL]]
        messages = [m for m in telegram.bot_messages(c) if m["message_id"] > person.last_seen]
        have = [m["text"] for m in messages]
        # The kill may repeat the reply the chat had last when the replica died, as the first
        # one after: right after the original (issue 9: told by adjacency, not by a snapshot
        # taken a guessed moment after the kill). The replies of one chat all differ.
        unexplained = [
            text for i, text in enumerate(have) if text in have[:i] and have[i - 1] != text
        ]
        repeats += len(have) - len(first_copies(have))
        if first_copies(have) != want or unexplained:
            wrong[c] = {"want": want, "have": have, "unexplained repeats": unexplained}
        person.last_seen = max(m["message_id"] for m in messages)
    print(f"repeated replies after the kill: {repeats}")
    assert not wrong, f"{len(wrong)} chats lost, reordered or repeated replies: {first(wrong)}"
    webhook_topology.restart("intake-1")
    wait_until_confirmed(telegram)


def telegram_update(telegram: Telegram, chat_id: int, injected: dict[str, Any]) -> dict[str, Any]:
    """The update Telegram made for an injected message, as its webhook request carries it."""
    [message] = [
        m
        for m in telegram.http.get(f"/_test/chats/{chat_id}/messages").json()
        if m["message_id"] == injected["message_id"]
    ]
    person = {"id": chat_id, "is_bot": False, "first_name": "Tester", "language_code": "en"}
    return {
        "update_id": injected["update_id"],
        "message": {
            "message_id": message["message_id"],
            "from": person,
            "chat": {"id": chat_id, "first_name": "Tester", "type": "private"},
            "date": message["date"],
            "text": message["text"],
        },
    }


def test_telegram_delivering_a_stored_update_again_gets_it_answered_once(
    webhook_topology: Topology, telegram: Telegram
) -> None:
    chat = 91_001
    [injected] = telegram.inject_many([{"chat_id": chat, "text": "hello", "language_code": "en"}])
    person = telegram.person(chat)
    assert [m["text"] for m in person.read(1)] == ["No such command"]
    # Telegram did not see the 200 and posts the same update again.
    again = httpx.post(
        webhook_topology.webhook_url,
        json=telegram_update(telegram, chat, injected),
        headers={SECRET_HEADER: webhook_topology.webhook_secret},
        timeout=10,
    )
    assert again.status_code == 200
    assert person.ask("/help", 2)  # after the repeat in the chat's queue, had it been stored
    texts = [m["text"] for m in telegram.bot_messages(chat)]
    assert texts.count("No such command") == 1


def test_a_wrong_secret_is_refused_with_401_and_nothing_is_processed(
    webhook_topology: Topology, telegram: Telegram
) -> None:
    topology, chat = webhook_topology, 91_002
    redis = Redis.from_url(topology.redis.url if topology.redis else "")
    try:
        topology.set_webhook(secret="not-the-intakes-secret")
        [injected] = telegram.inject_many([{"chat_id": chat, "text": "hi", "language_code": "en"}])
        info: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while "401" not in str(info.get("last_error_message")):
            assert time.monotonic() < deadline, info
            info = telegram.http.get(f"/bot{topology.bot_token}/getWebhookInfo").json()["result"]
            time.sleep(0.05)
        assert info["last_error_message"] == "Wrong response from the webhook: 401 Unauthorized"
        assert info["pending_update_count"] >= 1
        # Refused before anything was stored: no replica can be working on it.
        assert not redis.exists(IntakeKeys().queue(chat), IntakeKeys().seen(chat))
        assert telegram.bot_messages(chat) == []
        no_secret = httpx.post(
            topology.webhook_url, json=telegram_update(telegram, chat, injected), timeout=10
        )
        assert no_secret.status_code == 401
        assert not redis.exists(IntakeKeys().queue(chat), IntakeKeys().seen(chat))
    finally:
        topology.set_webhook()
        redis.close()
    # With the right secret Telegram's own retry brings the update, answered once.
    person = telegram.person(chat)
    assert [m["text"] for m in person.read(1)] == ["No such command"]
    assert person.ask("/help", 2)
    assert [m["text"] for m in telegram.bot_messages(chat)].count("No such command") == 1


def test_no_secret_appears_in_any_log(webhook_topology: Topology) -> None:
    """After everything above: the webhook secret, the bot token and the internal secret were
    in every intake replica's environment and in every webhook request, never in a log."""
    logs = webhook_topology.logs()
    assert "intake replica" in logs  # the replicas' logs are there
    for secret in (
        webhook_topology.webhook_secret,
        webhook_topology.bot_token.split(":", 1)[1],
        webhook_topology.internal_token,
    ):
        assert secret not in logs


# ---- polling → webhook → polling ----


@pytest.fixture
def switching_topology(tmp_path: Path) -> Iterator[Topology]:
    """Polling first, with nginx ready for three intake replicas that are not running yet."""
    topology = start_topology(tmp_path, intake_replicas=3, extra_env=WEBHOOK_ENV)
    try:
        yield topology
    finally:
        topology.stop()


def test_switching_polling_to_webhook_and_back_loses_nothing(
    switching_topology: Topology,
) -> None:
    """docs/webhook.md#switching, step by step, with messages arriving at every step."""
    topology = switching_topology
    telegram = Telegram.of(topology)
    chats = list(range(92_001, 92_031))
    try:
        people = log_in_many(telegram, topology, chats)  # polling: the client's timer
        waves: list[str] = []

        def wave() -> None:
            command = COMMANDS[len(waves)]
            waves.append(command)
            telegram.inject_many(
                [{"chat_id": c, "text": command, "language_code": "en"} for c in chats]
            )

        wave()  # polling
        for index in range(topology.intake_replicas):
            topology.start_intake(index)  # they wait: the client holds the lease
        topology.wait_ready()
        wave()  # still polling
        topology.kill("client", signal.SIGTERM)  # it confirms what it handled on its way out
        wave()  # nobody takes these: Telegram keeps them
        print(topology.set_webhook())
        wave()  # webhook
        wave()  # webhook
        print(topology.delete_webhook())  # waits until the intake's queues are empty
        wave()  # Telegram keeps these for getUpdates
        topology.restart("client")  # it waits for the lease, held by an intake replica
        for index in range(topology.intake_replicas):
            topology.kill(f"intake-{index}", signal.SIGTERM)
        wave()  # polling again

        got = wait_for_texts(people.values(), len(waves), timeout=120)
        reply_to = expected(telegram, topology, waves)
        want = [reply_to[command] for command in waves]
        wrong = {c: texts for c, texts in got.items() if first_copies(texts) != want}
        assert not wrong, f"{len(wrong)} chats lost or reordered replies: {first(wrong)}"
        # Only an update in flight to the webhook when it was deleted may come twice.
        repeats = sum(len(texts) - len(first_copies(texts)) for texts in got.values())
        print(f"repeated replies: {repeats}")
        wait_until_confirmed(telegram)
    finally:
        telegram.close()


def expected(telegram: Telegram, topology: Topology, commands: list[str]) -> dict[str, str]:
    """Each command's reply for alice, from control chats of their own."""
    controls = log_in_many(telegram, topology, [93_000 + i for i in range(len(commands))])
    return {
        command: control.ask_one(command)
        for command, control in zip(commands, controls.values(), strict=True)
    }
