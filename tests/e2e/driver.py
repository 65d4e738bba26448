"""Drive the whole topology the way a person does: through the fake Telegram only."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tggate_sandbox.topology import Topology

__all__ = [
    "LOGGED_IN",
    "Person",
    "Telegram",
    "create_notification",
    "log_in_many",
    "logic_counter",
    "process_log",
    "replica_counters",
    "resolve_login",
    "texts_after",
    "wait_for_texts",
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
        messages: list[dict[str, Any]] = response.json()
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

    def nothing_more(self, *, wait: float = 1.0) -> None:
        response = self.telegram.http.get(
            "/_test/wait",
            params={"chat_id": self.chat_id, "count": 1, "timeout": wait, "after": self.last_seen},
        )
        assert response.status_code == 408, f"unexpected: {response.json()}"


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
        texts[person.chat_id] = [m["text"] for m in response.json()]
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
