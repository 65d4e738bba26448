"""The webhook intake's ports (docs/webhook.md): the durable per-chat queues and the sending
limits shared by every replica, as Protocols; `tggate.adapters.redis_intake` implements both.

A chat's updates wait in its queue, oldest first. A replica works a chat only while it holds the
chat's claim, which lapses unless renewed: so one replica at a time handles a chat, strictly in
order, and the chats of a replica that died go to the others once their claims lapse.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Backlog",
    "Claim",
    "Entry",
    "IntakeQueue",
    "QueueUnavailable",
    "SendPace",
    "Stored",
    "Ticket",
]


class QueueUnavailable(Exception):
    """Redis could not be reached or answered with an error; the message names no secret."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One update as it waits in its chat's queue; `payload` is `entries.encode`'s text."""

    chat_id: int
    update_id: int
    payload: str


class Stored(enum.Enum):
    """What became of an update offered to its chat's queue."""

    STORED = "stored"  # in the queue; the chat was idle, so this replica may start on it now
    QUEUED = "queued"  # in the queue, behind updates some replica is already working through
    REPEAT = "repeat"  # Telegram delivered this update_id before: dropped
    FULL = "full"  # the chat has too many updates waiting: Telegram should come back later


@dataclass(frozen=True, slots=True)
class Claim:
    """This replica's hold on a chat, with the update at the head of its queue.

    `sent` is how many of the head's replies Telegram already accepted (from a replica that
    lost the chat in the middle of them); `taken_over` says the previous holder's claim lapsed.
    """

    chat_id: int
    token: str
    head: Entry
    sent: int = 0
    taken_over: bool = False


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in the queues: chats with updates, and the updates."""

    chats: int
    updates: int


class IntakeQueue(Protocol):
    """Durable per-chat queues of updates with one claim per chat (docs/webhook.md#queues)."""

    async def enqueue(self, entry: Entry) -> Stored:
        """Store the update at the tail of its chat's queue, unless its update_id is a repeat."""
        ...

    async def claim(self, chat_id: int, *, token: str) -> Claim | None:
        """Take the chat if it has updates and nobody holds it (or the holder's claim lapsed)."""
        ...

    async def done(self, claim: Claim) -> Claim | None:
        """The head is handled: drop it and return the next one under the same claim, or None
        when the queue is empty (the chat is let go) or the claim was lost to another replica."""
        ...

    async def record_sent(self, claim: Claim, sent: int) -> bool:
        """Telegram accepted the head's first `sent` replies; False when the claim was lost."""
        ...

    async def renew(self, claims: Sequence[Claim]) -> set[int]:
        """Extend the claims; the chat ids of those lost to another replica."""
        ...

    async def release(self, claim: Claim) -> None:
        """Let the chat go before its claim lapses (a graceful stop): another replica may take
        it at once."""
        ...

    async def due(self, *, limit: int) -> list[int]:
        """Chats with updates that nobody holds now (none held by a live claim), up to `limit`."""
        ...

    async def backlog(self) -> Backlog: ...

    async def ping(self) -> bool:
        """True if the queues' storage answers; never raises (for /readyz)."""
        ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """A reservation to send one message to a chat, returned to `SendPace.settle`."""

    chat_id: int
    token: str
    # The message goes as a paid broadcast (sendMessage's allow_paid_broadcast): the free rate
    # was used up when it was reserved.
    paid: bool = False


class SendPace(Protocol):
    """Telegram's sending limits kept for every replica together (docs/contract.md#limits:
    ~30 messages/s overall, or more with paid broadcasts, 1 message/s per chat, 20 a minute per
    group), so more replicas do not send faster."""

    async def reserve(self, chat_id: int, *, may_pay: bool = True) -> Ticket:
        """Wait until a message may go to the chat, and hold that turn; the ticket says whether
        it goes as a paid broadcast (never unless `may_pay`: then it waits for the free rate)."""
        ...

    async def settle(self, ticket: Ticket, *, hold_chat_s: float | None = None) -> None:
        """Telegram answered: the chat's next message waits `hold_chat_s` from now (its
        interval, or a 429's retry_after; None: the usual interval)."""
        ...
