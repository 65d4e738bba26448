"""Ports of the core (STYLE.md §2): what Bot Logic needs from the world, as Protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from tggate.core.replies import Reply
from tggate.core.session import LoginPrompt, Session, Status, StoredSession

__all__ = [
    "ActionDone",
    "ActionResult",
    "AuthModule",
    "Clock",
    "FeedNotification",
    "FeedPage",
    "FeedStore",
    "LoginCheck",
    "LoginDenied",
    "LoginGone",
    "LoginGranted",
    "LoginPending",
    "LoginStarted",
    "MainModule",
    "ModuleUnavailable",
    "Notification",
    "NotificationFeed",
    "OutboxKind",
    "OutboxMessage",
    "RefreshRejected",
    "Refreshed",
    "SessionChange",
    "SessionStore",
    "SessionWrite",
    "StoreUnavailable",
    "SubjectChat",
    "TelegramUser",
    "UpdateAnswered",
    "UpdateBusy",
    "UpdateClaim",
    "UpdateClaimed",
    "outbox_chat_id",
]


@dataclass(frozen=True, slots=True)
class TelegramUser:
    """Who sent a command, as Telegram names them: what the person recognises on the login
    confirmation page (issue 9, finding 8). Chosen by the person, so shown, never trusted."""

    first_name: str
    last_name: str | None = None
    username: str | None = None


# ---- answers of the Authorization module (docs/contract.md#the-authorization-module) ----


@dataclass(frozen=True, slots=True)
class LoginStarted:
    """The module accepted a login: what to show the person, and how long it stays valid."""

    prompt: LoginPrompt
    expires_in: int


@dataclass(frozen=True, slots=True)
class LoginPending:
    pass


@dataclass(frozen=True, slots=True)
class LoginDenied:
    pass


@dataclass(frozen=True, slots=True)
class LoginGone:
    """The login token is unknown or expired (A3): both are handled the same way."""

    reason: str = "unknown"


@dataclass(frozen=True, slots=True)
class LoginGranted:
    access_token: str
    refresh_token: str


LoginCheck = LoginPending | LoginDenied | LoginGone | LoginGranted


@dataclass(frozen=True, slots=True)
class Refreshed:
    access_token: str
    refresh_token: str


@dataclass(frozen=True, slots=True)
class RefreshRejected:
    pass


@dataclass(frozen=True, slots=True)
class ModuleUnavailable:
    """A module did not answer in time, or answered with something unusable."""

    module: str
    detail: str = ""


# ---- answers of the Main module (docs/contract.md#the-main-module) ----


@dataclass(frozen=True, slots=True)
class ActionDone:
    """The Main module answered an action: `status` is its HTTP status, `data` its JSON body."""

    status: int
    data: Any = None


ActionResult = ActionDone | ModuleUnavailable


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    text: str
    created_at: str = ""


# ---- the notification feed (docs/contract.md#the-notification-feed) ----


@dataclass(frozen=True, slots=True)
class FeedNotification:
    """One notification of the Main module's feed, for the person named by `subject`."""

    id: str
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class FeedPage:
    """A page of the feed and the cursor to ask after next (the same one when it is empty)."""

    notifications: Sequence[FeedNotification]
    cursor: str


@dataclass(frozen=True, slots=True)
class SubjectChat:
    """An Authorized chat of a subject, with the language its notifications are sent in."""

    chat_id: int
    language: str


class OutboxKind(StrEnum):
    """Which timer cycle hands an outbox message out (L3 or N3, docs/state-machine.md)."""

    LOGIN = "login"
    NOTIFICATION = "notification"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message a cycle produced; it stays in the outbox until the client acknowledges it.

    `id` is its idempotency key: unique across kinds, the same when a retried cycle produces the
    same message again (docs/state-machine.md). It reads `<prefix>:<chat_id>:<rest>`: the client
    acknowledges ids alone, and a store finds the chat's part of the outbox by them
    (`outbox_chat_id`)."""

    id: str
    chat_id: int
    kind: OutboxKind
    reply: Reply


def outbox_chat_id(message_id: str) -> int | None:
    """The chat an outbox message id names (`OutboxMessage`), or None for an id of no message."""
    parts = message_id.split(":", 2)
    if len(parts) < 3:
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


class AuthModule(Protocol):
    """The Authorization module (docs/contract.md#the-authorization-module)."""

    async def start_login(
        self,
        *,
        login_token: str,
        login_type: str,
        chat_id: int,
        language: str = "ru",
        telegram_user: TelegramUser | None = None,
    ) -> LoginStarted | ModuleUnavailable:
        """`language` is a hint for the text shown to the person, `telegram_user` who asks, for
        the module's confirmation page (extensions of the seed, docs/openapi/auth.yaml)."""
        ...

    async def check_login(self, *, login_token: str) -> LoginCheck | ModuleUnavailable: ...

    async def refresh(
        self, *, refresh_token: str
    ) -> Refreshed | RefreshRejected | ModuleUnavailable: ...

    async def logout_everywhere(self, *, refresh_token: str) -> ModuleUnavailable | None: ...


class MainModule(Protocol):
    """The Main module (docs/contract.md#the-main-module)."""

    async def call(
        self, *, method: str, path: str, access_token: str, query: Mapping[str, str] | None = None
    ) -> ActionResult: ...

    async def notifications(
        self, *, access_token: str
    ) -> Sequence[Notification] | ActionDone | ModuleUnavailable:
        """The chat's notifications, or the non-200 answer (401/403…), or unavailability."""
        ...

    async def delete_notifications(
        self, *, access_token: str, ids: Sequence[str]
    ) -> ActionDone | ModuleUnavailable | None: ...


class NotificationFeed(Protocol):
    """The Main module's notification feed with the service credential (bulk mode,
    docs/contract.md#the-notification-feed)."""

    async def notification_feed(
        self, *, after: str | None, limit: int
    ) -> FeedPage | ActionDone | ModuleUnavailable:
        """At most `limit` notifications created after the cursor `after` (None: from the
        start), oldest first; a status other than 200 as `ActionDone`."""
        ...


class StoreUnavailable(Exception):
    """The session store did not answer (Redis down, failing over, out of connections).

    The chat is told the service is temporarily unavailable (docs/scenarios.md#unavailable);
    nothing was decided."""


@dataclass(frozen=True, slots=True)
class SessionChange:
    """A compare-and-set of one chat's session: write `session` (None: delete it) if the stored
    revision is still `expect` (None: the chat must be Unknown). `ttl_s` makes the session expire
    (an Anonymous session expires with its login token)."""

    session: Session | None
    expect: str | None
    ttl_s: int | None = None


@dataclass(frozen=True, slots=True)
class SessionWrite:
    """One chat's `SessionChange` and the outbox messages written in the same atomic step."""

    chat_id: int
    change: SessionChange
    outbox: Sequence[OutboxMessage] = ()


# ---- what claiming an update_id found (docs/scenarios.md#idempotency) ----


@dataclass(frozen=True, slots=True)
class UpdateClaimed:
    """The update is ours to handle; `stored` is the chat's session, read in the same step."""

    stored: StoredSession | None


@dataclass(frozen=True, slots=True)
class UpdateAnswered:
    """The update was handled before: its first answer."""

    replies: tuple[Reply, ...]


@dataclass(frozen=True, slots=True)
class UpdateBusy:
    """Another request holds the update's claim and is still handling it."""


UpdateClaim = UpdateClaimed | UpdateAnswered | UpdateBusy


class SessionStore(Protocol):
    """Per-chat sessions with atomic compare-and-set transitions (docs/scenarios.md#atomic).

    Every write maintains the status indexes in the same atomic step. A store that cannot reach
    its database raises `StoreUnavailable`.
    """

    async def load(self, chat_id: int) -> StoredSession | None: ...

    async def replace(
        self,
        chat_id: int,
        session: Session | None,
        *,
        expect: str | None,
        ttl_s: int | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> str | None:
        """Write `session` (None deletes it) if the stored revision is still `expect`.

        Returns the new revision ("" after a delete), or None when the session changed meanwhile
        (nothing is written then). `ttl_s` makes the session expire (Anonymous sessions expire
        with their login token). `outbox` messages are added in the same atomic step.
        """
        ...

    async def write_sessions(self, writes: Sequence[SessionWrite]) -> list[str | None]:
        """Several chats' `replace`, each atomic on its own, in as few round trips as the store
        can; the results in the order of `writes`."""
        ...

    def sessions(
        self, status: Status, *, shard: int = 0, shards: int = 1
    ) -> AsyncIterator[Sequence[tuple[int, StoredSession]]]:
        """The sessions in `status` of chats whose chat_id % shards == shard, in batches read
        from the status index; each chat once."""
        ...

    # -- idempotency of /v1/commands by update_id (docs/scenarios.md#idempotency)

    async def begin_update(
        self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int
    ) -> UpdateClaim:
        """Claim an update for `owner` for `ttl_ms` and read the chat's session in one step, or
        find its first answer, or find it busy."""
        ...

    async def extend_update(self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int) -> bool:
        """Renew `owner`'s claim (the holder works on); False if it is no longer `owner`'s."""
        ...

    async def finish_update(
        self,
        chat_id: int,
        update_id: int,
        replies: Sequence[Reply],
        *,
        owner: str,
        ttl_s: int,
        change: SessionChange | None = None,
    ) -> str | None:
        """Apply `change` (if any), remember `replies` as the update's answer for `ttl_s` and
        drop `owner`'s claim, in one atomic step. Returns the new revision ("" with no change or
        after a delete), or None when the session changed meanwhile: then nothing is written and
        the claim is kept."""
        ...

    async def release_update(self, chat_id: int, update_id: int, *, owner: str) -> None:
        """Drop `owner`'s unfinished claim (processing failed; a retry may claim it again)."""
        ...

    # -- single-flight refresh (docs/scenarios.md#single-flight)

    async def acquire_lock(self, chat_id: int, name: str, *, owner: str, ttl_ms: int) -> bool: ...

    async def release_lock(self, chat_id: int, name: str, *, owner: str) -> None: ...

    async def forget_subject(self, subject: str) -> None:
        """Route the feed's notifications of `subject` to none of their chats (after Z3); a
        chat logged in as them afterwards is filed again (docs/scenarios.md#n2-bulk)."""
        ...

    # -- the durable outbox of cycle messages (docs/scenarios.md#outbox)

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        """Add messages unless already present or already delivered (ids are idempotency keys)."""
        ...

    async def pending_outbox(
        self, *, kind: OutboxKind | None = None, shard: int = 0, shards: int = 1
    ) -> list[OutboxMessage]:
        """Undelivered messages of `kind` (None: every kind) in the shard, each chat's in the
        order they were added."""
        ...

    async def ack_outbox(self, ids: Sequence[str]) -> int:
        """Remove delivered messages and remember their ids for a day; returns how many."""
        ...

    # -- the poller lease (docs/scenarios.md#lease)

    async def lease(self, name: str, *, instance: str, ttl_ms: int) -> bool:
        """Grant or renew the lease `name` to `instance` if free or already its own."""
        ...

    async def ping(self) -> bool: ...


class FeedStore(Protocol):
    """What the bulk notification mode keeps besides sessions (docs/scenarios.md#n2-bulk): the
    feed's cursor, a lock so one replica pulls the feed at a time, and the subject -> chats
    index. The index is kept by the `SessionStore` itself in the bulk mode: every Authorized
    session it writes files its chat under the subject of the session's access token
    (`token_subject`)."""

    async def feed_cursor(self) -> str | None:
        """Where the last pull stopped (None: never pulled)."""
        ...

    async def advance_feed_cursor(self, cursor: str) -> None:
        """Called only once the notifications before `cursor` are in the outbox."""
        ...

    async def subject_chats(self, subjects: Sequence[str]) -> Mapping[str, Sequence[SubjectChat]]:
        """The Authorized chats of each subject, checked against their sessions: an index entry
        whose session ended or changed person is dropped, not returned."""
        ...

    async def file_subjects(self, chats: Sequence[tuple[int, str]]) -> None:
        """File (chat, subject) pairs in the index, e.g. chats logged in before the bulk mode
        was turned on; an entry that turns out stale is dropped by `subject_chats`."""
        ...

    async def acquire_feed_lock(self, *, owner: str, ttl_ms: int) -> bool: ...

    async def release_feed_lock(self, *, owner: str) -> None: ...


class Clock(Protocol):
    """Seconds since the epoch, like `time.time` (which satisfies it); tests pass a fake one.

    Deadlines inside asyncio code use `time.monotonic()` and are not clocks in this sense."""

    def __call__(self) -> float: ...
