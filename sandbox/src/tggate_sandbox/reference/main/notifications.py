"""Notifications waiting for their person (docs/contract.md#the-main-module): read oldest first,
deleted by id.

Deleting names exact ids, so a notification that arrives between Bot Logic's read and its delete
stays for the next cycle (N2) instead of being lost. The same notifications are also listed for
everybody at once, in the order they arrived (`feed`, the bulk mode's `GET /notifications`): a
global sequence number is the cursor.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["FeedItem", "NotificationBox", "StoredNotification"]


@dataclass(frozen=True, slots=True)
class StoredNotification:
    """A notification as the module keeps it; Bot Logic reads it as `tggate.core.ports.Notification`
    through the HTTP contract, never this row."""

    id: str
    text: str
    created_at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A notification as the feed lists it: its sequence number (the cursor) and person."""

    seq: int
    identity: str
    notification: StoredNotification


class NotificationBox:
    """Every person's pending notifications, in arrival order. Thread-safe."""

    def __init__(self) -> None:
        self._by_person: dict[str, list[StoredNotification]] = {}
        # Every notification in arrival order, for the feed; a deleted one is skipped there.
        self._sequence: list[FeedItem] = []
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def add(self, identity: str, text: str, *, now: float) -> StoredNotification:
        note = StoredNotification(
            id=uuid.uuid4().hex,
            text=text,
            created_at=datetime.fromtimestamp(now, UTC).isoformat(),
        )
        with self._lock:
            self._by_person.setdefault(identity, []).append(note)
            self._sequence.append(FeedItem(len(self._sequence) + 1, identity, note))
            self._pending.add(note.id)
        return note

    def feed(self, *, after: int, limit: int) -> tuple[list[FeedItem], int]:
        """At most `limit` notifications that arrived after the sequence number `after`, oldest
        first, and the cursor to ask after next (`after` itself when there are none)."""
        with self._lock:
            found: list[FeedItem] = []
            cursor = after
            # Sequence numbers are positions + 1: the first one after `after` is at `after`.
            for position in range(max(after, 0), len(self._sequence)):
                if len(found) == limit:
                    break
                item = self._sequence[position]
                cursor = item.seq
                if item.notification.id in self._pending:  # not deleted through /notification
                    found.append(item)
            return found, cursor

    def of(self, identity: str) -> list[StoredNotification]:
        with self._lock:
            return list(self._by_person.get(identity, ()))

    def delete(self, identity: str, ids: Collection[str]) -> int:
        """Delete those of `ids` that are this person's; unknown or foreign ids are ignored."""
        wanted = set(ids)
        with self._lock:
            notes = self._by_person.get(identity, [])
            kept = [note for note in notes if note.id not in wanted]
            self._pending.difference_update(n.id for n in notes if n.id in wanted)
            if kept:
                self._by_person[identity] = kept
            else:
                self._by_person.pop(identity, None)
            return len(notes) - len(kept)
