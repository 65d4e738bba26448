"""Notifications waiting for their person (docs/contract.md#the-main-module): read oldest first,
deleted by id.

Deleting names exact ids, so a notification that arrives between Bot Logic's read and its delete
stays for the next cycle (N2) instead of being lost.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Notification", "NotificationBox"]


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    text: str
    created_at: str  # ISO 8601, UTC


class NotificationBox:
    """Every person's pending notifications, in arrival order. Thread-safe."""

    def __init__(self) -> None:
        self._by_person: dict[str, list[Notification]] = {}
        self._lock = threading.Lock()

    def add(self, identity: str, text: str, *, now: float) -> Notification:
        note = Notification(
            id=uuid.uuid4().hex,
            text=text,
            created_at=datetime.fromtimestamp(now, UTC).isoformat(),
        )
        with self._lock:
            self._by_person.setdefault(identity, []).append(note)
        return note

    def of(self, identity: str) -> list[Notification]:
        with self._lock:
            return list(self._by_person.get(identity, ()))

    def delete(self, identity: str, ids: Collection[str]) -> int:
        """Delete those of `ids` that are this person's; unknown or foreign ids are ignored."""
        wanted = set(ids)
        with self._lock:
            notes = self._by_person.get(identity, [])
            kept = [note for note in notes if note.id not in wanted]
            if kept:
                self._by_person[identity] = kept
            else:
                self._by_person.pop(identity, None)
            return len(notes) - len(kept)
