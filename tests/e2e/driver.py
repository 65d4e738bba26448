"""Drive the whole topology the way a person does: through the fake Telegram only."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tests.support.waiting import eventually_sync

from tggate.settings import Settings
from tggate_sandbox.topology import Topology

__all__ = [
    "LOAD_COMMANDS",
    "LOGGED_IN",
    "UNAVAILABLE",
    "Person",
    "Telegram",
    "bot_messages_of",
    "create_notification",
    "first_copies",
    "inject_shuffled",
    "log_in_many",
    "log_in_with_controls",
    "logic_counter",
    "new_seed",
    "process_log",
    "replica_counters",
    "resolve_login",
    "sent_so_far",
    "texts_after",
    "wait_for_texts",
    "wait_for_ticks",
    "wait_until_confirmed",
    "wait_until_sent",
]


@dataclass
class Telegram:
    """The fake Telegram's test API (inject a person's message, read what the bot sent)."""

    http: httpx.Client

    @classmethod
    def of(cls, topology: Topology) -> Telegram:
        http = httpx.Client(
            base_url=topology.telegram_url, headers=topology.test_api_headers, timeout=120
        )
        return cls(http)

    def person(self, chat_id: int, language: str = "en") -> Person:
        return Person(self, chat_id, language)

    def inject_many(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.http.post("/_test/inject_many", json={"messages": messages})
        response.raise_for_status()
        results: list[dict[str, Any]] = response.json()
        return results

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        messages = self.http.get(f"/_test/chats/{chat_id}/messages").json()
        return [m for m in messages if m["from_bot"]]

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.http.get("/_test/stats").json()
        return stats

    def close(self) -> None:
        self.http.close()


@dataclass
class Person:
    telegram: Telegram
    chat_id: int
    language: str = "en"
    last_seen: int = 0  # the id of the last message read from this chat

    def say(self, text: str) -> int:
        body = {"chat_id": self.chat_id, "text": text, "language_code": self.language}
        response = self.telegram.http.post("/_test/inject", json=body)
        response.raise_for_status()
        message_id: int = response.json()["message_id"]
        return message_id

    def press(self, message: dict[str, Any], data: str) -> None:
        body = {"chat_id": self.chat_id, "message_id": message["message_id"], "data": data}
        self.telegram.http.post("/_test/press", json=body).raise_for_status()

    def read(self, count: int = 1, *, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The next `count` bot messages after the ones already read (fails if they don't come)."""
        response = self.telegram.http.get(
            "/_test/wait",
            params={
                "chat_id": self.chat_id,
                "count": count,
                "timeout": timeout,
                "after": self.last_seen,
            },
            timeout=timeout + 10,
        )
        messages = bot_messages_of(response)
        assert response.status_code == 200, (
            f"chat {self.chat_id}: wanted {count} bot messages, got {[m['text'] for m in messages]}"
        )
        self.last_seen = max(m["message_id"] for m in messages[:count])
        return messages[:count]

    def ask(self, text: str, count: int = 1) -> list[str]:
        """Say `text` and return the texts of the next `count` bot messages."""
        self.say(text)
        return [m["text"] for m in self.read(count)]

    def ask_one(self, text: str) -> str:
        return self.ask(text)[0]


def bot_messages_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The messages a `/_test/wait` answered: all it wanted (200), or what came in time (408)."""
    body = response.json()
    messages: list[dict[str, Any]] = body if response.status_code == 200 else body["messages"]
    return messages


def logic_counter(topology: Topology, name: str = "tggate_commands_total") -> float:
    """The sum of a Bot Logic counter over every replica (read from /metrics)."""
    total = 0.0
    for url in topology.logic_replica_urls():
        text = httpx.get(url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                match = re.search(r"\s([0-9.e+-]+)$", line)
                if match:
                    total += float(match.group(1))
    return total


# ---- helpers for the load, crash, notification and standby tests ----

LOGGED_IN = {"en": "You are logged in.", "ru": "Успешная авторизация."}


def resolve_login(
    topology: Topology,
    chat_id: int,
    *,
    identity: str = "alice",
    decision: str = "granted",
    **extra: Any,
) -> None:
    """What the person does on the Authorization module's page (Yes / No)."""
    body = {"chat_id": chat_id, "decision": decision, "identity": identity, **extra}
    response = httpx.post(
        topology.auth_url + "/test/logins/resolve",
        json=body,
        headers=topology.test_api_headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text


def log_in_many(
    telegram: Telegram,
    topology: Topology,
    chat_ids: list[int],
    *,
    identity: str | Callable[[int], str] = "alice",
    language: str = "en",
) -> dict[int, Person]:
    """Log many chats in at once (U2, the person's Yes, then L: the timer says "logged in");
    the returned people have read everything so far."""
    telegram.inject_many(
        [{"chat_id": c, "text": "/login code", "language_code": language} for c in chat_ids]
    )
    people = {c: telegram.person(c, language) for c in chat_ids}
    for person in people.values():
        person.read(1)  # the code to enter
    for c in chat_ids:
        resolve_login(topology, c, identity=identity(c) if callable(identity) else identity)
    for person in people.values():
        (message,) = person.read(1)
        assert message["text"] == LOGGED_IN[language], (person.chat_id, message["text"])
    return people


def wait_for_texts(
    people: Iterable[Person], count: int | Mapping[int, int], *, timeout: float
) -> dict[int, list[str]]:
    """Each person's bot messages after the ones already read, once there are `count` of them
    (or, when `timeout` ran out overall, whatever is there). `last_seen` stays as it was."""
    deadline = time.monotonic() + timeout
    texts: dict[int, list[str]] = {}
    for person in people:
        wanted = count if isinstance(count, int) else count[person.chat_id]
        response = person.telegram.http.get(
            "/_test/wait",
            params={
                "chat_id": person.chat_id,
                "count": wanted,
                "timeout": max(0.0, deadline - time.monotonic()),
                "after": person.last_seen,
            },
            timeout=timeout + 10,
        )
        texts[person.chat_id] = [m["text"] for m in bot_messages_of(response)]
    return texts


def texts_after(person: Person) -> list[str]:
    """Every bot message of the chat after the ones the person has read, right now."""
    return [
        m["text"]
        for m in person.telegram.bot_messages(person.chat_id)
        if m["message_id"] > person.last_seen
    ]


def replica_counters(topology: Topology, name: str = "tggate_commands_total") -> list[float]:
    """A Bot Logic counter per replica (summed over its labels), read from each /metrics."""
    totals = []
    for url in topology.logic_replica_urls():
        total = 0.0
        for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                match = re.search(r"\s([0-9.e+-]+)$", line)
                if match:
                    total += float(match.group(1))
        totals.append(total)
    return totals


def create_notification(topology: Topology, identity: str, text: str) -> str:
    """A notification created in the reference Main module (its admin API); its id."""
    response = httpx.post(
        topology.main_url + "/notifications",
        json={"to": identity, "text": text},
        headers=topology.admin_headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    notification_id: str = response.json()["id"]
    return notification_id


def process_log(topology: Topology, name: str) -> list[dict[str, Any]]:
    """One component's JSON log lines (lines that are not JSON are skipped)."""
    entries = []
    for line in topology.processes[name].tail(10**9).splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def wait_until_confirmed(telegram: Telegram) -> None:
    """Until the client has confirmed every update to Telegram. It confirms one only once its
    replies went out, so no reply to those updates can come later: what a chat shows now is
    final (issue 9: instead of sleeping "room for a doubled reply to show up")."""
    eventually_sync(lambda: telegram.stats()["pending_updates"] == 0, what="every update confirmed")


def wait_for_ticks(topology: Topology, cycle: str) -> None:
    """Until a whole tick of the `cycle` timer ("login", "notifications") ran after this call:
    its messages sent and acknowledged, so one it was to send twice would be in the chat now.

    Counted in Bot Logic's finished cycle calls (one per shard): the tick in progress may add up
    to `shards` of them; one more `shards` is a whole tick, and a call of the next tick means that
    one finished (ticks never overlap, docs/scenarios.md#l1)."""
    shards = int(
        topology.extra_env.get("TGGATE_CYCLE_SHARDS", Settings.model_fields["cycle_shards"].default)
    )
    name = f'tggate_cycle_seconds_count{{cycle="{cycle}"}}'
    before = logic_counter(topology, name)
    eventually_sync(
        lambda: logic_counter(topology, name) >= before + 2 * shards,
        what=f"a whole {cycle} tick",
    )


# ---- load with replies that tell every message apart (the crash and fault tests) ----

LOAD_COMMANDS = [
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
# The notice of a reply delayed by an outage (docs/scenarios.md#c6).
UNAVAILABLE = "The service is temporarily unavailable. The answer will come once it is back."


def log_in_with_controls(
    telegram: Telegram, topology: Topology, first_chat_id: int, chats: int
) -> tuple[dict[int, Person], dict[str, str]]:
    """Log in `chats` chats as alice; and each command's reply for alice, asked from control
    chats of their own (one command each, so Telegram's per-chat pause does not add up)."""
    controls = list(range(first_chat_id, first_chat_id + len(LOAD_COMMANDS)))
    chats = list(
        range(first_chat_id + len(LOAD_COMMANDS), first_chat_id + len(LOAD_COMMANDS) + chats)
    )
    people = log_in_many(telegram, topology, controls + chats)
    telegram.inject_many(
        [
            {"chat_id": c, "text": command, "language_code": "en"}
            for c, command in zip(controls, LOAD_COMMANDS, strict=True)
        ]
    )
    replies = {
        command: people[c].read(1)[0]["text"]
        for c, command in zip(controls, LOAD_COMMANDS, strict=True)
    }
    assert len(set(replies.values())) == len(LOAD_COMMANDS), "the replies must tell commands apart"
    return {c: people[c] for c in chats}, replies


def inject_shuffled(
    telegram: Telegram,
    people: dict[int, Person],
    rng: random.Random,
    commands: Sequence[str] = LOAD_COMMANDS,
) -> dict[int, list[str]]:
    """Every chat's `commands` in an order of its own, chats interleaved; returns the orders."""
    orders = {c: rng.sample(commands, len(commands)) for c in people}
    slots = [c for c in people for _ in commands]
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
    """Until the fake Telegram has been asked to send `count` messages (a point in the work)."""
    eventually_sync(
        lambda: sent_so_far(telegram) >= count,
        within_s=timeout,
        every_s=0.005,
        what=f"{count} sent messages",
    )
    return sent_so_far(telegram)


def new_seed() -> int:
    """A fresh seed each run; E2E_SEED=<the printed seed> replays a run's choices."""
    return int(os.environ.get("E2E_SEED") or random.randrange(2**32))


def first_copies(texts: list[str]) -> list[str]:
    """The texts without their repeats (each where it first came)."""
    return [text for i, text in enumerate(texts) if text not in texts[:i]]
