"""The two timer cycles (L2, N2) and the durable outbox they fill (docs/scenarios.md#outbox).

A cycle reads the sessions of its shard from the status indexes in batches (one Redis round trip
for some hundred chats) and hands them to a bounded pool of workers; for each chat the pure
machine decides (`decide_login_check`, `decide_notifications`) and this module performs: module
calls, the outbox, the session write. A chat's transition and its message are written in one
atomic step, so a crash cannot lose "logged in"; writes that workers make at about the same time
go to the store together (`_WriteBatcher`). In the bulk notification mode the Main module's feed
replaces the per-chat calls (`tggate.logic.feed`). The cycle then answers every undelivered
message of its kind; they stay in the outbox until the client acknowledges them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from tggate.core.machine import (
    CycleOutcome,
    DeleteNotifications,
    FetchNotifications,
    Keep,
    NotificationRequest,
    QueueNotifications,
    RefreshTokens,
    decide_login_check,
    decide_lost_session,
    decide_notifications,
)
from tggate.core.ports import (
    AuthModule,
    MainModule,
    OutboxKind,
    OutboxMessage,
    SessionChange,
    SessionStore,
    SessionWrite,
)
from tggate.core.session import Anonymous, Authorized, LostSession, Status, StoredSession
from tggate.logic.feed import FeedPuller, notification_message_id
from tggate.logic.metrics import LogicMetrics
from tggate.logic.refresh import SingleFlightRefresh, Step

__all__ = ["Cycles"]

log = logging.getLogger("tggate.logic")

# Outbox ids are idempotency keys: the same message produced twice (a retried tick, a crash
# between the outbox and the delete at the Main module) gets the same id, different messages
# never share one. The short prefixes keep the kinds' ids apart and are those of the ids written
# before messages carried their kind, so an upgrade neither repeats a message nor loses one.


def _login_message_id(chat_id: int, revision: str) -> str:
    return f"l:{chat_id}:{revision}"


def _logged_out_message_id(chat_id: int, revision: str) -> str:
    """Z8 in the notification cycle: the login offer to a chat whose session ended."""
    return f"n:{chat_id}:z8:{revision}"


def _lost_message_id(chat_id: int, revision: str) -> str:
    """A lost session met by the notification cycle (docs/state-machine.md#lost-sessions)."""
    return f"n:{chat_id}:lost:{revision}"


class _WriteBatcher:
    """Session writes of many workers in few round trips: the writes made during one turn of the
    event loop (module answers that arrived together) go to the store as one batch."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._loop = asyncio.get_running_loop()
        self._pending: list[tuple[SessionWrite, asyncio.Future[str | None]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def write(self, write: SessionWrite) -> str | None:
        written: asyncio.Future[str | None] = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append((write, written))
        return await written

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = self._loop.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[SessionWrite, asyncio.Future[str | None]]]) -> None:
        try:
            results = await self._store.write_sessions([write for write, _ in batch])
        except Exception as error:
            for _, written in batch:
                if not written.done():
                    written.set_exception(error)
            return
        for (_, written), result in zip(batch, results, strict=True):
            if not written.done():
                written.set_result(result)


_Handle = Callable[[int, StoredSession, _WriteBatcher], Awaitable[None]]


class Cycles:
    def __init__(
        self,
        *,
        store: SessionStore,
        auth: AuthModule,
        main: MainModule,
        refresh: SingleFlightRefresh,
        metrics: LogicMetrics,
        concurrency: int,
        feed: FeedPuller | None = None,
    ) -> None:
        self._store = store
        # Bulk mode (docs/scenarios.md#n2-bulk): the feed instead of a call per chat.
        self._feed = feed
        self._auth = auth
        self._main = main
        self._refresh = refresh
        self._metrics = metrics
        self._concurrency = concurrency

    async def login_cycle(self, *, shard: int = 0, shards: int = 1) -> list[OutboxMessage]:
        """L2: check every Anonymous chat of the shard; return all undelivered login messages."""
        started = time.monotonic()
        await self._for_each_session(Status.ANONYMOUS, shard, shards, self._check_login)
        self._metrics.cycle_seconds.labels("login").observe(time.monotonic() - started)
        return await self._pending(OutboxKind.LOGIN, shard, shards, "login")

    async def notification_cycle(self, *, shard: int = 0, shards: int = 1) -> list[OutboxMessage]:
        """N2: fetch every Authorized chat's notifications (bulk mode: the feed, pulled by the
        replica serving shard 0); return all undelivered ones of the shard."""
        started = time.monotonic()
        if self._feed is None:
            await self._for_each_session(
                Status.AUTHORIZED, shard, shards, self._collect_notifications
            )
        elif shard == 0:
            # Messages routed to another shard's chats are handed out by its next tick.
            await self._feed.pull()
        self._metrics.cycle_seconds.labels("notifications").observe(time.monotonic() - started)
        return await self._pending(OutboxKind.NOTIFICATION, shard, shards, "notifications")

    async def acknowledge(self, ids: Sequence[str]) -> int:
        return await self._store.ack_outbox(ids)

    async def _pending(
        self, kind: OutboxKind, shard: int, shards: int, label: str
    ) -> list[OutboxMessage]:
        # Each chat's in the order they were produced (its notifications as the Main module
        # listed them).
        messages = await self._store.pending_outbox(kind=kind, shard=shard, shards=shards)
        self._metrics.cycle_messages.labels(label).inc(len(messages))
        self._metrics.outbox_backlog.labels(label, str(shard)).set(len(messages))
        return messages

    async def _for_each_session(
        self, status: Status, shard: int, shards: int, handle: _Handle
    ) -> None:
        # A bounded pool of workers over batches of sessions: memory stays flat at 100k chats. A
        # session may wait a moment in the queue; its write names the revision it was read at,
        # so one that changed meanwhile is left alone and decided again next tick.
        queue: asyncio.Queue[tuple[int, StoredSession] | None] = asyncio.Queue(
            maxsize=self._concurrency * 4
        )
        writes = _WriteBatcher(self._store)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                chat_id, stored = item
                try:
                    await handle(chat_id, stored, writes)
                except Exception:
                    log.exception("cycle step failed for chat %s", chat_id)

        workers = [asyncio.create_task(worker()) for _ in range(self._concurrency)]
        try:
            async for batch in self._store.sessions(status, shard=shard, shards=shards):
                for item in batch:
                    await queue.put(item)
        finally:
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)

    async def _write(
        self,
        writes: _WriteBatcher,
        chat_id: int,
        outcome: CycleOutcome,
        revision: str | None,
        *,
        kind: OutboxKind,
        message_id: Callable[[int, str], str],
    ) -> None:
        """The chat's transition and its message in one compare-and-set. A session that
        changed meanwhile wins (nothing is written): the chat is decided again next tick."""
        if isinstance(outcome.session, Keep):
            return
        if revision is None:
            # Only after a refresh found the chat logged out meanwhile: nothing to end, nothing
            # to say.
            return
        outbox: tuple[OutboxMessage, ...] = ()
        if outcome.message is not None:
            outbox = (OutboxMessage(message_id(chat_id, revision), chat_id, kind, outcome.message),)
        change = SessionChange(outcome.session, revision)
        await writes.write(SessionWrite(chat_id, change, outbox))

    # ---- L2 ----

    async def _check_login(
        self, chat_id: int, stored: StoredSession, writes: _WriteBatcher
    ) -> None:
        if isinstance(stored.session, LostSession):
            outcome = decide_lost_session(stored.session)
        elif isinstance(stored.session, Anonymous):
            answer = await self._auth.check_login(login_token=stored.session.login_token)
            self._metrics.module_call("login_check", answer)
            outcome = decide_login_check(stored.session, answer)
        else:
            return
        await self._write(
            writes,
            chat_id,
            outcome,
            stored.revision,
            kind=OutboxKind.LOGIN,
            message_id=_login_message_id,
        )

    # ---- N2 (401: Z7–Z9) ----

    async def _collect_notifications(
        self, chat_id: int, stored: StoredSession, writes: _WriteBatcher
    ) -> None:
        if isinstance(stored.session, LostSession):
            lost = decide_lost_session(stored.session)
            await self._write(
                writes,
                chat_id,
                lost,
                stored.revision,
                kind=OutboxKind.NOTIFICATION,
                message_id=_lost_message_id,
            )
            return
        if not isinstance(stored.session, Authorized):
            return
        session = stored.session
        revision: str | None = stored.revision
        answers: list[object] = []
        while not isinstance(step := decide_notifications(session, answers), CycleOutcome):
            performed = await self._perform(chat_id, session, revision, step)
            answers.append(performed.answer)
            revision = performed.revision
        await self._write(
            writes,
            chat_id,
            step,
            revision,
            kind=OutboxKind.NOTIFICATION,
            message_id=_logged_out_message_id,
        )

    async def _perform(
        self,
        chat_id: int,
        session: Authorized,
        revision: str | None,
        request: NotificationRequest,
    ) -> Step:
        if isinstance(request, FetchNotifications):
            found = await self._main.notifications(access_token=request.access_token)
            self._metrics.module_call("notifications", found)
            return Step(found, revision)
        if isinstance(request, RefreshTokens):
            return await self._refresh.refresh(
                chat_id, request.refresh_token, revision, session.language
            )
        if isinstance(request, QueueNotifications):
            await self._store.add_outbox(
                [
                    OutboxMessage(
                        notification_message_id(chat_id, message.notification_id),
                        chat_id,
                        OutboxKind.NOTIFICATION,
                        message.reply,
                    )
                    for message in request.messages
                ]
            )
            return Step(None, revision)
        if isinstance(request, DeleteNotifications):
            deleted = await self._main.delete_notifications(
                access_token=request.access_token, ids=request.ids
            )
            self._metrics.module_call("notifications_delete", deleted)
            return Step(deleted, revision)
        raise AssertionError(f"unhandled request {request!r}")
