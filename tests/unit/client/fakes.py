"""Hand-written fakes of the Telegram Client's ports (no mocks): `FakeTelegram`, `FakeLogic`.

`message` builds an outbox message as Bot Logic hands it out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tggate.client.base import Incoming, IncomingMessage, LogicUnavailable, Rejected
from tggate.core.ports import OutboxKind, OutboxMessage, TelegramUser
from tggate.core.replies import ChatReply, Keyboard, Reply
from tggate.core.texts import Language


def message(
    message_id: str, chat_id: int, text: str, kind: OutboxKind = OutboxKind.NOTIFICATION
) -> OutboxMessage:
    return OutboxMessage(message_id, chat_id, kind, Reply(text))


@dataclass(frozen=True)
class Sent:
    chat_id: int
    text: str
    buttons: Keyboard = ()
    paid: bool = False


class FakeTelegram:
    """getUpdates with the Bot API's offset semantics; records everything sent.

    `send_errors[chat_id]` and `fetch_errors` are raised, one per call, before succeeding;
    `refuse_paid` refuses every paid broadcast; with a `clock`, `sent_at` has each send's time.
    """

    def __init__(self) -> None:
        self.queue: list[Incoming] = []
        self.confirmed_below = 0
        self.fetches: list[tuple[int | None, int, int]] = []
        self.sent: list[Sent] = []
        self.answered: list[str] = []
        self.menus: list[tuple[str | None, list[tuple[str, str]]]] = []
        self.send_errors: dict[int, list[Exception]] = {}
        self.fetch_errors: list[Exception] = []
        self.send_delay_s = 0.0
        self.username = "tggate_bot"
        self.username_asked = 0
        self.username_errors: list[Exception] = []
        self.refuse_paid = False
        self.clock: Callable[[], float] | None = None
        self.sent_at: list[float] = []
        self._arrived = asyncio.Event()
        self._next_id = 1

    def inject(self, chat_id: int, text: str | None, language: Language = "ru") -> int:
        update_id = self._next_id
        self._next_id += 1
        self.queue.append(IncomingMessage(update_id, chat_id, text, language))
        self._arrived.set()
        return update_id

    def push(self, update: Incoming) -> None:
        self._next_id = max(self._next_id, update.update_id + 1)
        self.queue.append(update)
        self._arrived.set()

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == chat_id]

    async def get_updates(
        self, *, offset: int | None, long_poll_s: int, limit: int
    ) -> Sequence[Incoming]:
        self.fetches.append((offset, long_poll_s, limit))
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        if offset is not None:
            self.confirmed_below = max(self.confirmed_below, offset)
            self.queue = [u for u in self.queue if u.update_id >= offset]
        if not self.queue and long_poll_s > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), long_poll_s)
        return self.queue[:limit]

    async def send_message(
        self, *, chat_id: int, text: str, buttons: Keyboard = (), paid: bool = False
    ) -> None:
        if self.send_delay_s:
            await asyncio.sleep(self.send_delay_s)
        errors = self.send_errors.get(chat_id)
        if errors:
            raise errors.pop(0)
        if paid and self.refuse_paid:
            raise Rejected("Bad Request: not enough Telegram Stars for a paid broadcast")
        self.sent.append(Sent(chat_id, text, buttons, paid))
        if self.clock is not None:
            self.sent_at.append(self.clock())

    async def answer_callback(self, *, callback_id: str) -> None:
        self.answered.append(callback_id)

    async def get_username(self) -> str:
        self.username_asked += 1
        if self.username_errors:
            raise self.username_errors.pop(0)
        return self.username

    async def set_commands(
        self, commands: Sequence[tuple[str, str]], *, language: str | None
    ) -> None:
        self.menus.append((language, list(commands)))


@dataclass
class CommandCall:
    update_id: int
    chat_id: int
    command: str
    args: dict[str, str]
    text: str
    language: Language
    telegram_user: TelegramUser | None = None


@dataclass
class FakeLeases:
    """The lease table Bot Logic keeps, shared by several clients' `FakeLogic`."""

    holder: str | None = None
    until: float = 0.0
    monotonic: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())

    def grant(self, instance: str, ttl_s: float) -> bool:
        now = self.monotonic()
        if self.holder in (None, instance) or now >= self.until:
            self.holder, self.until = instance, now + ttl_s
            return True
        return False


class FakeLogic:
    """Bot Logic: echoes commands, hands out queued cycle messages, records acks.

    `failures[update_id]` transient failures come before the answer; `answer` may be replaced.
    """

    def __init__(self, leases: FakeLeases | None = None) -> None:
        self.calls: list[CommandCall] = []
        self.failures: dict[int, list[Exception]] = {}
        self.answer: Callable[[CommandCall], Sequence[ChatReply]] = lambda call: [
            ChatReply(call.chat_id, Reply(f"ok {call.text}"))
        ]
        self.delay_s = 0.0
        # When not None, commands wait until it is set: a Bot Logic that answers late.
        self.answer_when: asyncio.Event | None = None
        self.outbox: dict[OutboxKind, list[OutboxMessage]] = {kind: [] for kind in OutboxKind}
        self.cycle_calls: list[tuple[OutboxKind, int, int]] = []
        self.acked: list[str] = []
        self.leases = leases or FakeLeases()
        self.lease_calls: list[tuple[str, float]] = []
        self.lease_down = False

    async def command(
        self,
        *,
        update_id: int,
        chat_id: int,
        command: str,
        args: dict[str, str],
        text: str,
        language: Language,
        telegram_user: TelegramUser | None = None,
    ) -> Sequence[ChatReply]:
        call = CommandCall(update_id, chat_id, command, args, text, language, telegram_user)
        self.calls.append(call)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.answer_when is not None:
            await self.answer_when.wait()
        pending = self.failures.get(update_id)
        if pending:
            raise pending.pop(0)
        return self.answer(call)

    async def cycle(self, kind: OutboxKind, *, shard: int, shards: int) -> Sequence[OutboxMessage]:
        self.cycle_calls.append((kind, shard, shards))
        return [m for m in self.outbox[kind] if m.chat_id % shards == shard]

    async def ack(self, ids: Sequence[str]) -> None:
        self.acked.extend(ids)
        for kind, items in self.outbox.items():
            self.outbox[kind] = [m for m in items if m.id not in ids]

    async def lease(self, *, instance: str, ttl_s: float) -> bool:
        self.lease_calls.append((instance, ttl_s))
        if self.lease_down:
            raise LogicUnavailable("lease: 503")
        return self.leases.grant(instance, ttl_s)


async def eventually(condition: Callable[[], object], within_s: float = 30.0) -> None:
    """Wait until `condition()` is true (the bound only ends a hopeless wait, issue 9)."""
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
