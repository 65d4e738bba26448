"""The service layer over hand-written fakes (STYLE.md): idempotency, claims, conflicts, and
how the cycles perform what the core decides (the outbox, its kinds, Z8 in the N2 cycle)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.clock import FakeClock
from tests.support.commands import TABLE
from tests.support.waiting import eventually

from tggate.adapters.memory_store import MemorySessionStore
from tggate.core.commands import parse_command_table
from tggate.core.machine import Command
from tggate.core.ports import (
    ActionDone,
    ActionResult,
    LoginCheck,
    LoginGranted,
    LoginPending,
    LoginStarted,
    ModuleUnavailable,
    Notification,
    OutboxKind,
    Refreshed,
    RefreshRejected,
    StoreUnavailable,
    TelegramUser,
    UpdateClaim,
    UpdateClaimed,
)
from tggate.core.session import Anonymous, Authorized, LoginPrompt, Status
from tggate.logic.service import BotLogic


@dataclass
class FakeAuth:
    check_answer: LoginCheck = field(default_factory=LoginPending)
    refresh_answer: Refreshed | RefreshRejected = field(
        default_factory=lambda: Refreshed("access-2", "refresh-2")
    )
    calls: list[str] = field(default_factory=list)
    # When set, /refresh answers only once it is (the module held slow until a test's event).
    refresh_gate: asyncio.Event | None = None
    users: list[TelegramUser | None] = field(default_factory=list)

    async def start_login(
        self,
        *,
        login_token: str,
        login_type: str,
        chat_id: int,
        language: str = "ru",
        telegram_user: TelegramUser | None = None,
    ) -> LoginStarted | ModuleUnavailable:
        self.calls.append("login")
        self.users.append(telegram_user)
        return LoginStarted(LoginPrompt(text="Enter 123-456", code="123-456"), expires_in=600)

    async def check_login(self, *, login_token: str) -> LoginCheck | ModuleUnavailable:
        self.calls.append("check")
        return self.check_answer

    async def refresh(
        self, *, refresh_token: str
    ) -> Refreshed | RefreshRejected | ModuleUnavailable:
        self.calls.append("refresh")
        if self.refresh_gate is not None:
            await self.refresh_gate.wait()
        return self.refresh_answer

    async def logout_everywhere(self, *, refresh_token: str) -> ModuleUnavailable | None:
        self.calls.append("logout")
        return None


@dataclass
class FakeMain:
    """Accepts only "access-2"; holds notifications (by access token) until deleted."""

    calls: list[str] = field(default_factory=list)
    notes: list[Notification] = field(default_factory=list)
    # Runs before /notification answers: what another request does meanwhile.
    meanwhile: Callable[[], Awaitable[None]] | None = None
    # Runs before an action answers.
    before_action: Callable[[], Awaitable[object]] | None = None

    async def call(
        self, *, method: str, path: str, access_token: str, query: object = None
    ) -> ActionResult:
        self.calls.append(f"{method} {path} {access_token}")
        if self.before_action is not None:
            await self.before_action()
        if access_token != "access-2":
            return ActionDone(401, {"detail": "expired"})
        return ActionDone(200, {"id": "alice", "name": "Alice", "role": "student"})

    async def notifications(
        self, *, access_token: str
    ) -> Sequence[Notification] | ActionDone | ModuleUnavailable:
        self.calls.append(f"GET /notification {access_token}")
        if self.meanwhile is not None:
            await self.meanwhile()
        if access_token != "access-2":
            return ActionDone(401, {"detail": "expired"})
        return list(self.notes)

    async def delete_notifications(
        self, *, access_token: str, ids: Sequence[str]
    ) -> ActionDone | ModuleUnavailable | None:
        self.calls.append(f"DELETE /notification {','.join(ids)}")
        self.notes = [note for note in self.notes if note.id not in ids]
        return None


def make(
    store: MemorySessionStore | None = None, **options: object
) -> tuple[BotLogic, MemorySessionStore, FakeAuth, FakeMain]:
    store = store or MemorySessionStore(clock=FakeClock())
    auth, main = FakeAuth(), FakeMain()
    logic = BotLogic(store=store, auth=auth, main=main, table=TABLE, **options)  # type: ignore[arg-type]
    return logic, store, auth, main


async def chats(store: MemorySessionStore, status: Status) -> list[int]:
    return [chat async for batch in store.sessions(status) for chat, _ in batch]


def me(chat_id: int = 42) -> Command:
    return Command(chat_id=chat_id, name="me", args={}, language="en")


async def test_a_repeated_update_id_replays_the_stored_answer() -> None:
    logic, _store, auth, _ = make()
    login = Command(chat_id=42, name="login", args={"type": "code"}, language="en")
    first = await logic.handle_update(7, login)
    assert await logic.handle_update(7, login) == first
    assert auth.calls == ["login"]


async def test_an_abandoned_claim_expires_and_the_update_is_handled() -> None:
    clock = FakeClock()
    logic, store, _auth, _ = make(MemorySessionStore(clock=clock), in_progress_wait_s=0.05)
    # A replica claimed update 9 and died before answering.
    claim = await store.begin_update(42, 9, owner="dead", ttl_ms=30_000)
    assert isinstance(claim, UpdateClaimed)
    try:
        await logic.handle_update(9, me())
        raise AssertionError("expected UpdateInProgress")
    except Exception as error:
        assert type(error).__name__ == "UpdateInProgress"
    clock.advance(31)
    answer = await logic.handle_update(9, me())
    assert "not logged in" in answer


class StoreDown(Exception):
    pass


class AnswersUnwritable(MemorySessionStore):
    """A store that fails to write an answer, as when a bug or a full disk strikes mid-command."""

    async def finish_update(self, *args: object, **kwargs: object) -> str | None:
        raise StoreDown


async def test_a_failing_command_releases_its_claim() -> None:
    store = AnswersUnwritable(clock=FakeClock())
    logic, _, _, _ = make(store)
    try:
        await logic.handle_update(11, me())
        raise AssertionError("expected StoreDown")
    except StoreDown:
        pass
    assert isinstance(await store.begin_update(42, 11, owner="x", ttl_ms=30_000), UpdateClaimed)


class RedisGone(MemorySessionStore):
    """A store whose database does not answer (Redis down or failing over)."""

    async def begin_update(self, *args: object, **kwargs: object) -> UpdateClaim:
        raise StoreUnavailable("ConnectionError")


async def test_a_store_outage_is_not_done_and_asks_to_be_offered_again_not_an_error() -> None:
    logic, _, _, main = make(RedisGone(clock=FakeClock()))
    answer = json.loads(await logic.handle_update(12, me()))
    assert answer == {
        "replies": [
            {
                "chat_id": 42,
                "text": "The service is temporarily unavailable, please try again later.",
                "buttons": [],
            }
        ],
        "retry": True,
    }
    assert main.calls == []


class RedisGoneAtTheEnd(MemorySessionStore):
    """A store whose database stops answering while a command runs: its answer is not written."""

    failing = True

    async def finish_update(self, *args: Any, **kwargs: Any) -> str | None:
        if self.failing:
            raise StoreUnavailable("ConnectionError")
        return await super().finish_update(*args, **kwargs)


async def test_a_command_the_store_failed_midway_runs_anew_when_offered_again() -> None:
    # Issue 9: nothing of it was recorded, so the same update_id is handled, not replayed.
    store = RedisGoneAtTheEnd(clock=FakeClock())
    logic, _, _, _ = make(store)
    assert json.loads(await logic.handle_update(13, me()))["retry"] is True
    store.failing = False
    answer = json.loads(await logic.handle_update(13, me()))
    assert "retry" not in answer
    assert answer["replies"][0]["text"].startswith("You are not logged in")
    assert json.loads(await logic.handle_update(13, me())) == answer  # recorded now


class ClaimWatch(MemorySessionStore):
    """Records the holder renewing its claim."""

    def __init__(self) -> None:
        super().__init__(clock=FakeClock())
        self.renewed = asyncio.Event()

    async def extend_update(self, chat_id: int, update_id: int, *, owner: str, ttl_ms: int) -> bool:
        kept = await super().extend_update(chat_id, update_id, owner=owner, ttl_ms=ttl_ms)
        if kept:
            self.renewed.set()
        return kept


async def test_the_holder_renews_its_claim_while_the_command_runs() -> None:
    """Issue 9: a short claim, kept alive by the live holder (a dead one lets it lapse)."""
    store = ClaimWatch()
    logic, _, _, main = make(store, claim_ttl_s=0.3)
    await store.replace(42, Authorized("access-2", "refresh-2"), expect=None)
    main.before_action = store.renewed.wait  # the Main module answers once it was renewed
    answer = await asyncio.wait_for(logic.handle_update(13, me()), timeout=30)
    assert "Alice" in answer
    assert store.renewed.is_set()


async def test_refresh_is_single_flight_within_a_replica() -> None:
    logic, store, auth, main = make()
    auth.refresh_gate = asyncio.Event()  # /refresh held until every command saw its 401
    await store.replace(42, Authorized("access-1", "refresh-1"), expect=None)
    commands = asyncio.gather(*(logic.run_command(me()) for _ in range(20)))
    expired = "GET /api/me access-1"
    await eventually(lambda: main.calls.count(expired) == 20)
    auth.refresh_gate.set()
    replies = await commands
    assert auth.calls.count("refresh") == 1
    assert main.calls.count(expired) == 20
    assert all("Alice" in r[0].text for r in replies)
    stored = await store.load(42)
    assert stored is not None and stored.session == Authorized("access-2", "refresh-2")


async def test_a_grant_during_a_command_is_stored_once() -> None:
    logic, store, auth, _ = make()
    prompt = LoginPrompt(text="x")
    await store.replace(42, Anonymous("lt", "code", prompt), expect=None, ttl_s=600)
    auth.check_answer = LoginGranted("access-2", "refresh-2")
    replies = await logic.run_command(me())
    assert next(r.text for r in replies) == "You are logged in."
    stored = await store.load(42)
    assert stored is not None and isinstance(stored.session, Authorized)
    assert await chats(store, Status.AUTHORIZED) == [42]


async def test_Z4_path_arguments_are_url_encoded() -> None:
    table = parse_command_table(
        """
[[actions]]
command = "find"
path = "/api/find/{term}"
[[actions.args]]
name = "term"
pattern = "^.{1,50}$"
"""
    )
    store = MemorySessionStore(clock=FakeClock())
    auth, main = FakeAuth(), FakeMain()
    logic = BotLogic(store=store, auth=auth, main=main, table=table)
    await store.replace(42, Authorized("access-2", "refresh-2"), expect=None)
    command = Command(chat_id=42, name="find", args={"term": "../a b?c#d/é"}, language="en")
    await logic.run_command(command)
    assert main.calls == ["GET /api/find/..%2Fa%20b%3Fc%23d%2F%C3%A9 access-2"]


async def test_N2_notifications_go_to_the_outbox_as_their_kind_then_are_deleted() -> None:
    logic, store, _auth, main = make()
    await store.replace(42, Authorized("access-2", "refresh-2", "en"), expect=None)
    main.notes = [Notification("n1", "Deadline!"), Notification("n2", "Exam")]
    messages = await logic.notification_cycle()
    assert [(m.chat_id, m.kind, m.reply.text) for m in messages] == [
        (42, OutboxKind.NOTIFICATION, "🔔 Deadline!"),
        (42, OutboxKind.NOTIFICATION, "🔔 Exam"),
    ]
    assert main.calls == ["GET /notification access-2", "DELETE /notification n1,n2"]
    assert main.notes == []
    # Handed out again until acknowledged, by the notification cycle only.
    assert await logic.notification_cycle() == messages
    assert await logic.login_cycle() == []
    assert await logic.acknowledge([m.id for m in messages]) == 2
    assert await logic.notification_cycle() == []


async def test_N2_a_fetch_that_comes_again_after_a_crash_is_not_queued_twice() -> None:
    logic, store, _auth, main = make()
    await store.replace(42, Authorized("access-2", "refresh-2"), expect=None)
    main.notes = [Notification("n1", "Deadline!")]
    first = await logic.notification_cycle()
    main.notes = [Notification("n1", "Deadline!")]  # the delete was lost: the same id again
    assert await logic.notification_cycle() == first
    await logic.acknowledge([m.id for m in first])
    main.notes = [Notification("n1", "Deadline!")]  # and once more, after delivery
    assert await logic.notification_cycle() == []


async def test_L2_login_messages_are_their_own_kind() -> None:
    logic, store, auth, _main = make()
    await store.replace(7, Anonymous("lt", "code", LoginPrompt("x"), "en"), expect=None, ttl_s=60)
    auth.check_answer = LoginGranted("access-2", "refresh-2")
    messages = await logic.login_cycle()
    assert [(m.chat_id, m.kind, m.reply.text) for m in messages] == [
        (7, OutboxKind.LOGIN, "You are logged in.")
    ]
    assert await logic.notification_cycle() == []


async def test_N2_Z7_Z9_a_401_in_the_cycle_refreshes_and_fetches_again() -> None:
    logic, store, auth, main = make()
    await store.replace(42, Authorized("access-1", "refresh-1"), expect=None)
    main.notes = [Notification("n1", "Deadline!")]
    messages = await logic.notification_cycle()
    assert [m.reply.text for m in messages] == ["🔔 Deadline!"]
    assert auth.calls == ["refresh"]
    stored = await store.load(42)
    assert stored is not None and stored.session == Authorized("access-2", "refresh-2")


async def test_N2_Z8_a_rejected_refresh_in_the_cycle_ends_the_session_with_a_login_offer() -> None:
    logic, store, auth, _main = make()
    await store.replace(42, Authorized("access-1", "refresh-1", "en"), expect=None)
    auth.refresh_answer = RefreshRejected()
    messages = await logic.notification_cycle()
    assert await store.load(42) is None
    assert [m.chat_id for m in messages] == [42]
    assert messages[0].kind is OutboxKind.NOTIFICATION
    assert messages[0].reply.text.startswith("You are not logged in.")
    assert [b.command for row in messages[0].reply.buttons for b in row] == [
        "/login github",
        "/login yandex",
        "/login code",
    ]
    assert await chats(store, Status.AUTHORIZED) == []


async def test_N2_Z8_says_nothing_to_a_chat_that_logged_out_meanwhile() -> None:
    logic, store, auth, main = make()
    revision = await store.replace(42, Authorized("access-1", "refresh-1", "en"), expect=None)

    async def logout() -> None:  # Z2 on another replica, while the cycle's fetch is answered
        await store.replace(42, None, expect=revision)

    main.meanwhile = logout
    assert await logic.notification_cycle() == []
    assert await store.load(42) is None
    assert auth.calls == []  # nothing left to refresh
