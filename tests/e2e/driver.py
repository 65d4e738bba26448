"""Drive the whole topology the way a person does: through the fake Telegram only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from tggate.topology import Topology

__all__ = ["Person", "Telegram", "logic_counter"]


@dataclass
class Telegram:
    """The fake Telegram's test API (inject a person's message, read what the bot sent)."""

    http: httpx.Client

    @classmethod
    def of(cls, topology: Topology) -> Telegram:
        return cls(httpx.Client(base_url=topology.telegram_url, timeout=120))

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
