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
    "LoginCheck",
    "LoginDenied",
    "LoginGone",
    "LoginGranted",
    "LoginPending",
    "LoginStarted",
    "MainModule",
    "ModuleUnavailable",
    "Notification",
    "OutboxKind",
    "OutboxMessage",
    "RefreshRejected",
    "Refreshed",
    "SessionStore",
    "TelegramUser",
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


class OutboxKind(StrEnum):
    """Which timer cycle hands an outbox message out (L3 or N3, docs/state-machine.md)."""

    LOGIN = "login"
    NOTIFICATION = "notification"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message a cycle produced; it stays in the outbox until the client acknowledges it.

    `id` is its idempotency key: unique across kinds, the same when a retried cycle produces the
    same message again (docs/state-machine.md)."""

    id: str
    chat_id: int
    kind: OutboxKind
    reply: Reply


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


class SessionStore(Protocol):
    """Per-chat sessions with atomic compare-and-set transitions (docs/scenarios.md#atomic).

    `expect` names the revision the caller read; `None` means "the chat must be Unknown".
    Every write maintains the status index sets in the same atomic step.
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

    def chats(self, status: Status, *, shard: int = 0, shards: int = 1) -> AsyncIterator[int]:
        """Chats in `status` whose chat_id % shards == shard, read from the index (SSCAN)."""
        ...

    # -- idempotency of /v1/commands by update_id (docs/scenarios.md#idempotency)

    async def claim_update(self, chat_id: int, update_id: int, *, ttl_s: int) -> bool | str:
        """Claim an update for processing: True if claimed now, else the stored answer JSON,
        or False while another request still processes it."""
        ...

    async def finish_update(
        self, chat_id: int, update_id: int, answer: str, *, ttl_s: int
    ) -> None: ...

    async def release_update(self, chat_id: int, update_id: int) -> None:
        """Forget an unfinished claim (processing failed; a retry may claim it again)."""
        ...

    # -- single-flight refresh (docs/scenarios.md#single-flight)

    async def acquire_lock(self, chat_id: int, name: str, *, owner: str, ttl_ms: int) -> bool: ...

    async def release_lock(self, chat_id: int, name: str, *, owner: str) -> None: ...

    # -- the durable outbox of cycle messages (docs/scenarios.md#outbox)

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        """Add messages unless already present or already delivered (ids are idempotency keys)."""
        ...

    async def pending_outbox(
        self, *, kind: OutboxKind | None = None, shard: int = 0, shards: int = 1
    ) -> list[OutboxMessage]:
        """Undelivered messages of `kind` (None: every kind) in the shard, in the order they
        were added."""
        ...

    async def ack_outbox(self, ids: Sequence[str]) -> int:
        """Remove delivered messages and remember their ids for a day; returns how many."""
        ...

    # -- the poller lease (docs/scenarios.md#lease)

    async def lease(self, name: str, *, instance: str, ttl_ms: int) -> bool:
        """Grant or renew the lease `name` to `instance` if free or already its own."""
        ...

    async def ping(self) -> bool: ...


class Clock(Protocol):
    """Seconds since the epoch, like `time.time` (which satisfies it); tests pass a fake one.

    Deadlines inside asyncio code use `time.monotonic()` and are not clocks in this sense."""

    def __call__(self) -> float: ...
