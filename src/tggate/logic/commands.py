"""Commands (C7 onwards, docs/scenarios.md): idempotent by update_id, decided by the pure machine.

`handle_update` claims the update_id and reads the chat's session in one step, runs the command,
and writes the session change with the answer and the end of the claim in another: two Redis
round trips for a command (issue 11), however many module calls it makes. A repeated request
(the client retrying after a timeout) gets the first answer and repeats no side effect. The pure
`core.machine.decide` chooses each request; a session that changed meanwhile (a timer cycle
wrote) is read and decided again.

The claim is short and renewed by its holder while it works (`_ClaimKeeper`): if the replica
dies mid-command, its claim lapses within `claim_ttl_s` and the client's retry is handled by
another replica (issue 9).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress

from tggate.contract.logic import REPLIES_ANSWER, replies_answer
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
    Request,
    StartLogin,
    decide,
)
from tggate.core.ports import (
    ActionDone,
    AuthModule,
    MainModule,
    SessionChange,
    SessionStore,
    StoreUnavailable,
    UpdateAnswered,
    UpdateBusy,
    UpdateClaimed,
)
from tggate.core.replies import Reply
from tggate.core.session import LostSession, Session, StoredSession
from tggate.core.texts import Text, say
from tggate.logic.metrics import LogicMetrics
from tggate.logic.refresh import SingleFlightRefresh, Step

__all__ = ["Commands", "UpdateInProgress", "answer_json"]

log = logging.getLogger("tggate.logic")

# A command whose session changed under it (a timer cycle wrote meanwhile) is decided again
# from the new session, at most this many times.
_MAX_ATTEMPTS = 4

# Writes the outcome of a command decided from a session of some revision; False when the
# session changed meanwhile (nothing written).
_Commit = Callable[[Outcome, str | None], Awaitable[bool]]


class UpdateInProgress(Exception):
    """Another request is still processing this update_id; the caller should retry later."""


def answer_json(chat_id: int, replies: Iterable[Reply], *, retry: bool = False) -> str:
    """The JSON answer to a command of `chat_id` (tggate.contract.logic.RepliesAnswer)."""
    return REPLIES_ANSWER.dump_json(replies_answer(chat_id, replies, retry=retry)).decode()


def _change(outcome: Outcome, revision: str | None) -> SessionChange | None:
    """The session write an outcome asks for, decided from `revision`; None: nothing to write."""
    if isinstance(outcome.session, Keep):
        return None
    if outcome.session is None and revision is None:
        return None  # already Unknown
    return SessionChange(outcome.session, revision, outcome.ttl_s)


class _ClaimKeeper:
    """Renews an update's claim every third of its TTL while the command runs (issue 9): a live
    holder keeps it, a dead one lets it lapse. A timer, not a task, per command: most commands
    finish before it first fires."""

    def __init__(
        self, store: SessionStore, chat_id: int, update_id: int, owner: str, ttl_ms: int
    ) -> None:
        self._store = store
        self._key = (chat_id, update_id)
        self._owner = owner
        self._ttl_ms = ttl_ms
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._renewal: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(ttl_ms / 3000, self._renew)

    def stop(self) -> None:
        self._stopped = True
        self._timer.cancel()

    def _renew(self) -> None:
        self._renewal = self._loop.create_task(self._extend())

    async def _extend(self) -> None:
        if self._stopped:
            return
        chat_id, update_id = self._key
        try:
            kept = await self._store.extend_update(
                chat_id, update_id, owner=self._owner, ttl_ms=self._ttl_ms
            )
        except StoreUnavailable:
            kept = True  # try again at the next tick; Redis may be back by then
        if not kept:
            log.warning("chat %s lost the claim of update %s while handling it", *self._key)
        elif not self._stopped:
            self._timer = self._loop.call_later(self._ttl_ms / 3000, self._renew)


class Commands:
    def __init__(
        self,
        *,
        store: SessionStore,
        auth: AuthModule,
        main: MainModule,
        table: CommandTable,
        refresh: SingleFlightRefresh,
        metrics: LogicMetrics,
        new_login_token: Callable[[], str],
        update_ttl_s: int,
        claim_ttl_s: float,
        in_progress_wait_s: float,
    ) -> None:
        self._store = store
        self._auth = auth
        self._main = main
        self._table = table
        self._refresh = refresh
        self._metrics = metrics
        self._new_login_token = new_login_token
        self._update_ttl_s = update_ttl_s
        self._claim_ttl_ms = max(1, int(claim_ttl_s * 1000))
        self._in_progress_wait_s = in_progress_wait_s
        # Claim owners: unique across replicas (the random part) and requests (the counter).
        self._owner_prefix = secrets.token_hex(6)
        self._owner_serial = itertools.count()

    async def handle_update(self, update_id: int, command: Command) -> str:
        """The JSON answer to one update; a repeated update_id gets the stored first answer."""
        chat_id = command.chat_id
        owner = f"{self._owner_prefix}:{next(self._owner_serial)}"
        try:
            claim = await self._claim(update_id, command, owner)
            if isinstance(claim, UpdateAnswered):
                self._metrics.replayed.inc()
                return answer_json(chat_id, claim.replies)
            replies = await self._handle_claimed(update_id, command, owner, claim.stored)
        except StoreUnavailable as error:
            # Never a 5xx (issue 10), and never lost (issue 9): nothing was recorded, so the
            # answer asks for the update again and the retry runs anew; its reply only says so,
            # for a reader that does not know the marker (docs/scenarios.md#unavailable).
            log.warning("Redis unavailable during /%s: %s", command.name, error)
            self._metrics.command_done(command.name, "store_unavailable")
            unavailable = Reply(text=say(Text.UNAVAILABLE, command.language))
            return answer_json(chat_id, [unavailable], retry=True)
        return answer_json(chat_id, replies)

    async def run_command(self, command: Command) -> tuple[Reply, ...]:
        """The replies to one command, without idempotency (for tests and benchmarks)."""

        async def commit(outcome: Outcome, revision: str | None) -> bool:
            change = _change(outcome, revision)
            if change is None:
                return True
            written = await self._store.replace(
                command.chat_id, change.session, expect=change.expect, ttl_s=change.ttl_s
            )
            return written is not None

        return await self._run(command, await self._store.load(command.chat_id), commit)

    async def _claim(
        self, update_id: int, command: Command, owner: str
    ) -> UpdateClaimed | UpdateAnswered:
        deadline: float | None = None
        while True:
            claim = await self._store.begin_update(
                command.chat_id, update_id, owner=owner, ttl_ms=self._claim_ttl_ms
            )
            if not isinstance(claim, UpdateBusy):
                return claim
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._in_progress_wait_s
            elif now > deadline:
                raise UpdateInProgress(update_id)
            await asyncio.sleep(0.05)

    async def _handle_claimed(
        self, update_id: int, command: Command, owner: str, stored: StoredSession | None
    ) -> tuple[Reply, ...]:
        chat_id = command.chat_id

        async def commit(outcome: Outcome, revision: str | None) -> bool:
            written = await self._store.finish_update(
                chat_id,
                update_id,
                outcome.replies,
                owner=owner,
                ttl_s=self._update_ttl_s,
                change=_change(outcome, revision),
            )
            return written is not None

        keeper = _ClaimKeeper(self._store, chat_id, update_id, owner, self._claim_ttl_ms)
        self._metrics.in_progress.inc()
        try:
            return await self._run(command, stored, commit)
        except BaseException:
            keeper.stop()
            with suppress(StoreUnavailable):
                await self._store.release_update(chat_id, update_id, owner=owner)
            raise
        finally:
            keeper.stop()
            self._metrics.in_progress.dec()

    async def _run(
        self, command: Command, stored: StoredSession | None, commit: _Commit
    ) -> tuple[Reply, ...]:
        for attempt in range(_MAX_ATTEMPTS):
            if attempt:
                stored = await self._store.load(command.chat_id)
            outcome, revision = await self._decide(stored, command)
            if await commit(outcome, revision):
                self._metrics.command_done(command.name, _result_label(stored, outcome))
                return outcome.replies
            log.info("chat %s changed during /%s; deciding again", command.chat_id, command.name)
        self._metrics.command_done(command.name, "conflict")
        gave_up = Outcome(KEEP, (Reply(text=say(Text.UNAVAILABLE, command.language)),))
        await commit(gave_up, None)
        return gave_up.replies

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

    async def _perform(
        self,
        request: Request,
        command: Command,
        session: Session | LostSession | None,
        revision: str | None,
    ) -> Step:
        count = self._metrics.module_call
        if isinstance(request, StartLogin):
            started = await self._auth.start_login(
                login_token=request.login_token,
                login_type=request.login_type,
                chat_id=command.chat_id,
                language=command.language,
                telegram_user=request.telegram_user,
            )
            count("login", started)
            return Step(started, revision)
        if isinstance(request, CheckLogin):
            checked = await self._auth.check_login(login_token=request.login_token)
            count("login_check", checked)
            return Step(checked, revision)
        if isinstance(request, CallAction):
            try:
                path = request.action.path_for(request.args)
            except ValueError:
                # Validation refuses dot segments before this (issue 9, finding 5); should one
                # get here anyway, it never reaches the Main module.
                log.warning("/%s: refused a dot segment in a path argument", command.name)
                return Step(ActionDone(400), revision)
            done = await self._main.call(
                method=request.action.method, path=path, access_token=request.access_token
            )
            count("action", done)
            return Step(done, revision)
        if isinstance(request, RefreshTokens):
            language = session.language if session is not None else command.language
            return await self._refresh.refresh(
                command.chat_id, request.refresh_token, revision, language
            )
        if isinstance(request, LogoutEverywhere):
            ended = await self._auth.logout_everywhere(refresh_token=request.refresh_token)
            count("logout", ended)
            if ended is None and request.subject is not None:
                # The person's other chats keep their sessions until they next act (Z8), but
                # the feed must not reach them meanwhile (docs/scenarios.md#n2-bulk).
                await self._store.forget_subject(request.subject)
            return Step(ended, revision)
        raise AssertionError(f"unhandled request {request!r}")


def _result_label(stored: StoredSession | None, outcome: Outcome) -> str:
    before = "unknown" if stored is None else _status_label(stored.session)
    if isinstance(outcome.session, Keep):
        return f"{before}->{before}"
    after = outcome.session.status.value if outcome.session is not None else "unknown"
    return f"{before}->{after}"


def _status_label(session: Session | LostSession) -> str:
    return "lost" if isinstance(session, LostSession) else session.status.value
