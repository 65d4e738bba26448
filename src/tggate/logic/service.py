"""Bot Logic's service layer: loads a session, runs the pure machine, performs its requests,
writes the outcome atomically (SPEC §3, §6). Also the two timer cycles (L, N) and the outbox."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tggate.core.commands import CommandTable
from tggate.core.machine import (
    KEEP,
    CallAction,
    CheckLogin,
    Command,
    Keep,
    LogoutEverywhere,
    Outcome,
    RefreshTokens,
    Reply,
    Request,
    StartLogin,
    decide,
    decide_login_check,
    login_offer,
)
from tggate.core.ports import (
    ActionDone,
    AuthModule,
    MainModule,
    ModuleUnavailable,
    OutboxMessage,
    Refreshed,
    RefreshRejected,
    SessionStore,
)
from tggate.core.session import Anonymous, Authorized, Session, Status, StoredSession
from tggate.core.texts import Text, say
from tggate.logic.metrics import LogicMetrics

__all__ = ["BotLogic", "UpdateInProgress", "replies_json"]

log = logging.getLogger("tggate.logic")

# A command whose session changed under it (a timer cycle wrote meanwhile) is decided again
# from the new session, at most this many times.
_MAX_ATTEMPTS = 4
_LOGIN_PREFIX = "l:"
_NOTIFICATION_PREFIX = "n:"


class UpdateInProgress(Exception):
    """Another request is still processing this update_id; the caller should retry later."""


def replies_json(chat_id: int, replies: Iterable[Reply]) -> list[dict[str, Any]]:
    return [
        {
            "chat_id": chat_id,
            "text": reply.text,
            "buttons": [[button.as_json() for button in row] for row in reply.buttons],
        }
        for reply in replies
    ]


def _outbox_buttons(reply: Reply) -> tuple[tuple[dict[str, str], ...], ...]:
    return tuple(tuple(button.as_json() for button in row) for row in reply.buttons)


@dataclass(frozen=True, slots=True)
class _Step:
    answer: object
    revision: str | None


class BotLogic:
    """The state machine over real ports. Stateless itself: every replica may run it."""

    def __init__(
        self,
        *,
        store: SessionStore,
        auth: AuthModule,
        main: MainModule,
        table: CommandTable,
        metrics: LogicMetrics | None = None,
        update_ttl_s: int = 86_400,
        claim_ttl_s: int = 30,
        refresh_lock_ttl_ms: int = 10_000,
        cycle_concurrency: int = 32,
        new_login_token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        in_progress_wait_s: float = 5.0,
    ) -> None:
        self._store = store
        self._auth = auth
        self._main = main
        self._table = table
        self._metrics = metrics or LogicMetrics()
        self._update_ttl_s = update_ttl_s
        # A claim outlives one processing attempt only briefly: if this replica dies mid-way,
        # the client's retry can claim the update again instead of waiting a day.
        self._claim_ttl_s = claim_ttl_s
        self._refresh_lock_ttl_ms = refresh_lock_ttl_ms
        self._cycle_concurrency = cycle_concurrency
        self._new_login_token = new_login_token
        self._in_progress_wait_s = in_progress_wait_s

    @property
    def table(self) -> CommandTable:
        return self._table

    # ---- commands (C7 onwards) ----

    async def handle_update(self, update_id: int, command: Command) -> str:
        """The JSON answer to one update; a repeated update_id gets the stored first answer."""
        deadline = time.monotonic() + self._in_progress_wait_s
        while True:
            claim = await self._store.claim_update(
                command.chat_id, update_id, ttl_s=self._claim_ttl_s
            )
            if isinstance(claim, str):
                self._metrics.replayed.inc()
                return claim
            if claim:
                break
            if time.monotonic() > deadline:
                raise UpdateInProgress(update_id)
            await asyncio.sleep(0.05)
        try:
            replies = await self.run_command(command)
        except BaseException:
            await self._store.release_update(command.chat_id, update_id)
            raise
        answer = json.dumps({"replies": replies_json(command.chat_id, replies)}, ensure_ascii=False)
        await self._store.finish_update(
            command.chat_id, update_id, answer, ttl_s=self._update_ttl_s
        )
        return answer

    async def run_command(self, command: Command) -> tuple[Reply, ...]:
        outcome: Outcome | None = None
        for _attempt in range(_MAX_ATTEMPTS):
            stored = await self._store.load(command.chat_id)
            outcome, revision = await self._decide(stored, command)
            if await self._write(command.chat_id, outcome, revision):
                self._metrics.commands.labels(command.name, _result_label(stored, outcome)).inc()
                return outcome.replies
            log.info("chat %s changed during /%s; deciding again", command.chat_id, command.name)
        self._metrics.commands.labels(command.name, "conflict").inc()
        return (Reply(text=say(Text.UNAVAILABLE, command.language)),)

    async def _decide(
        self, stored: StoredSession | None, command: Command
    ) -> tuple[Outcome, str | None]:
        session = stored.session if stored else None
        revision = stored.revision if stored else None
        token = self._new_login_token()
        answers: list[object] = []
        while True:
            step = decide(session, command, answers, table=self._table, fresh_login_token=token)
            if isinstance(step, Outcome):
                return step, revision
            performed = await self._perform(step, command, session, revision)
            answers.append(performed.answer)
            revision = performed.revision

    async def _write(self, chat_id: int, outcome: Outcome, revision: str | None) -> bool:
        if isinstance(outcome.session, Keep):
            return True
        if outcome.session is None and revision is None:
            return True  # already Unknown
        written = await self._store.replace(
            chat_id, outcome.session, expect=revision, ttl_s=outcome.ttl_s
        )
        return written is not None

    async def _perform(
        self, request: Request, command: Command, session: Session | None, revision: str | None
    ) -> _Step:
        if isinstance(request, StartLogin):
            started = await self._auth.start_login(
                login_token=request.login_token,
                login_type=request.login_type,
                chat_id=command.chat_id,
                language=command.language,
            )
            self._count("login", started)
            return _Step(started, revision)
        if isinstance(request, CheckLogin):
            checked = await self._auth.check_login(login_token=request.login_token)
            self._count("login_check", checked)
            return _Step(checked, revision)
        if isinstance(request, CallAction):
            path = request.action.path.format_map(
                {name: quote(value, safe="") for name, value in request.args.items()}
            )
            done = await self._main.call(
                method=request.action.method, path=path, access_token=request.access_token
            )
            self._count("action", done)
            return _Step(done, revision)
        if isinstance(request, RefreshTokens):
            language = session.language if session is not None else command.language
            return await self._refresh_once(
                command.chat_id, request.refresh_token, revision, language
            )
        if isinstance(request, LogoutEverywhere):
            ended = await self._auth.logout_everywhere(refresh_token=request.refresh_token)
            self._count("logout", ended)
            return _Step(ended, revision)
        raise AssertionError(f"unhandled request {request!r}")

    def _count(self, request: str, answer: object) -> None:
        if isinstance(answer, ModuleUnavailable):
            result = "unavailable"
        elif isinstance(answer, ActionDone):
            result = str(answer.status)
        else:
            result = type(answer).__name__.lower() if answer is not None else "ok"
        self._metrics.module_calls.labels(request, result).inc()

    # ---- single-flight refresh (Z7–Z9, SPEC §6) ----

    async def _refresh_once(
        self, chat_id: int, refresh_token: str, revision: str | None, language: str
    ) -> _Step:
        """Trade `refresh_token` for a new pair with one /refresh call per chat, whichever
        replica asks: the lock holder calls and stores; the others wait and read its result."""
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + self._refresh_lock_ttl_ms / 1000
        delay = 0.01
        while True:
            if await self._store.acquire_lock(
                chat_id, "refresh", owner=owner, ttl_ms=self._refresh_lock_ttl_ms
            ):
                try:
                    return await self._refresh_holding_lock(
                        chat_id, refresh_token, revision, language
                    )
                finally:
                    await self._store.release_lock(chat_id, "refresh", owner=owner)
            settled = self._refreshed_by_other(await self._store.load(chat_id), refresh_token)
            if settled is not None:
                return settled
            if time.monotonic() > deadline:
                return _Step(ModuleUnavailable("auth", "refresh lock wait timed out"), revision)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    @staticmethod
    def _refreshed_by_other(stored: StoredSession | None, refresh_token: str) -> _Step | None:
        if stored is None:  # logged out meanwhile: nothing to refresh
            return _Step(RefreshRejected(), None)
        session = stored.session
        if isinstance(session, Authorized) and session.refresh_token != refresh_token:
            return _Step(Refreshed(session.access_token, session.refresh_token), stored.revision)
        return None

    async def _refresh_holding_lock(
        self, chat_id: int, refresh_token: str, revision: str | None, language: str
    ) -> _Step:
        stored = await self._store.load(chat_id)
        settled = self._refreshed_by_other(stored, refresh_token)
        if settled is not None:
            return settled
        assert stored is not None
        if isinstance(stored.session, Anonymous) and stored.revision != revision:
            # A new login started meanwhile; this command's grant is stale.
            return _Step(RefreshRejected(), stored.revision)
        refreshed = await self._auth.refresh(refresh_token=refresh_token)
        self._count("refresh", refreshed)
        if not isinstance(refreshed, Refreshed):
            return _Step(refreshed, stored.revision)
        pair = Authorized(refreshed.access_token, refreshed.refresh_token, language)
        written = await self._store.replace(chat_id, pair, expect=stored.revision)
        if written is None:
            return _Step(ModuleUnavailable("store", "session changed during refresh"), None)
        return _Step(refreshed, written)

    # ---- timer cycles (L, N) and the outbox (SPEC §5.1) ----

    async def login_cycle(self, *, shard: int = 0, shards: int = 1) -> list[OutboxMessage]:
        """L2: check every Anonymous chat of the shard; return all undelivered login messages."""
        started = time.monotonic()
        await self._for_each_chat(Status.ANONYMOUS, shard, shards, self._check_one_login)
        self._metrics.cycle_seconds.labels("login").observe(time.monotonic() - started)
        return await self._pending(_LOGIN_PREFIX, shard, shards, "login")

    async def notification_cycle(self, *, shard: int = 0, shards: int = 1) -> list[OutboxMessage]:
        """N2: fetch every Authorized chat's notifications; return all undelivered ones."""
        started = time.monotonic()
        await self._for_each_chat(Status.AUTHORIZED, shard, shards, self._collect_notifications)
        self._metrics.cycle_seconds.labels("notifications").observe(time.monotonic() - started)
        return await self._pending(_NOTIFICATION_PREFIX, shard, shards, "notifications")

    async def acknowledge(self, ids: Sequence[str]) -> int:
        return await self._store.ack_outbox(ids)

    async def lease(self, *, instance: str, ttl_s: float) -> bool:
        return await self._store.lease("poller", instance=instance, ttl_ms=int(ttl_s * 1000))

    async def ready(self) -> bool:
        return await self._store.ping()

    async def _pending(
        self, prefix: str, shard: int, shards: int, cycle: str
    ) -> list[OutboxMessage]:
        pending = await self._store.pending_outbox(shard=shard, shards=shards)
        # Kept in the store's order, the order they were produced in (a chat's notifications as
        # the Main module listed them); sorting by id (random for notifications) shuffled them.
        messages = [m for m in pending if m.id.startswith(prefix)]
        self._metrics.cycle_messages.labels(cycle).inc(len(messages))
        return messages

    async def _for_each_chat(
        self,
        status: Status,
        shard: int,
        shards: int,
        handle: Callable[[int], Awaitable[None]],
    ) -> None:
        # A bounded pool of workers over the index: memory stays flat at 100k chats.
        queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=self._cycle_concurrency * 2)

        async def worker() -> None:
            while (chat_id := await queue.get()) is not None:
                try:
                    await handle(chat_id)
                except Exception:
                    log.exception("cycle step failed for chat %s", chat_id)

        workers = [asyncio.create_task(worker()) for _ in range(self._cycle_concurrency)]
        try:
            async for chat_id in self._store.chats(status, shard=shard, shards=shards):
                await queue.put(chat_id)
        finally:
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)

    async def _check_one_login(self, chat_id: int) -> None:
        stored = await self._store.load(chat_id)
        if stored is None or not isinstance(stored.session, Anonymous):
            return
        answer = await self._auth.check_login(login_token=stored.session.login_token)
        self._count("login_check", answer)
        outcome = decide_login_check(stored.session, answer)
        if outcome.session is KEEP or isinstance(outcome.session, Keep):
            return
        outbox: tuple[OutboxMessage, ...] = ()
        if outcome.message is not None:
            message_id = f"{_LOGIN_PREFIX}{chat_id}:{stored.revision}"
            outbox = (OutboxMessage(id=message_id, chat_id=chat_id, text=outcome.message),)
        # The transition and its message are one atomic step: a crash cannot lose "logged in".
        await self._store.replace(chat_id, outcome.session, expect=stored.revision, outbox=outbox)

    async def _collect_notifications(self, chat_id: int) -> None:
        stored = await self._store.load(chat_id)
        for _attempt in range(2):
            if stored is None or not isinstance(stored.session, Authorized):
                return
            session = stored.session
            found = await self._main.notifications(access_token=session.access_token)
            self._count("notifications", found)
            if isinstance(found, ModuleUnavailable):
                return
            if isinstance(found, ActionDone):
                if found.status != 401:
                    return
                stored = await self._after_cycle_401(chat_id, stored, session)
                continue
            if not found:
                return
            messages = [
                OutboxMessage(
                    id=f"{_NOTIFICATION_PREFIX}{chat_id}:{item.id}",
                    chat_id=chat_id,
                    text=say(Text.NOTIFICATION, session.language, text=item.text),
                )
                for item in found
            ]
            # Outbox first, then delete at the Main module: a crash in between re-fetches the
            # same ids, which the outbox recognises, so nothing is lost and nothing doubled.
            await self._store.add_outbox(messages)
            deleted = await self._main.delete_notifications(
                access_token=session.access_token, ids=[item.id for item in found]
            )
            self._count("notifications_delete", deleted)
            return

    async def _after_cycle_401(
        self, chat_id: int, stored: StoredSession, session: Authorized
    ) -> StoredSession | None:
        """A 401 in the notification cycle follows Z7–Z9 for that chat (SPEC §3 N)."""
        step = await self._refresh_once(
            chat_id, session.refresh_token, stored.revision, session.language
        )
        if isinstance(step.answer, Refreshed) and step.revision is not None:
            pair = Authorized(step.answer.access_token, step.answer.refresh_token, session.language)
            return StoredSession(pair, step.revision)
        if isinstance(step.answer, RefreshRejected) and step.revision is not None:
            offer = login_offer(session.language)
            message = OutboxMessage(
                id=f"{_NOTIFICATION_PREFIX}{chat_id}:z8:{step.revision}",
                chat_id=chat_id,
                text=offer.text,
                buttons=_outbox_buttons(offer),
            )
            await self._store.replace(chat_id, None, expect=step.revision, outbox=(message,))
        return None


def _result_label(stored: StoredSession | None, outcome: Outcome) -> str:
    before = stored.session.status.value if stored else "unknown"
    if isinstance(outcome.session, Keep):
        return f"{before}->{before}"
    after = outcome.session.status.value if outcome.session is not None else "unknown"
    return f"{before}->{after}"
