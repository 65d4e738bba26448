"""Commands (C7 onwards, docs/scenarios.md): idempotent by update_id, decided by the pure machine.

`handle_update` claims the update_id in the store, runs the command and stores its answer, so a
repeated request (the client retrying after a timeout) gets the first answer and repeats no side
effect. `run_command` loads the session, lets `core.machine.decide` choose each request,
performs it, and writes the outcome as a compare-and-set; a session that changed meanwhile (a
timer cycle wrote) is decided again from the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from tggate.contract.logic import REPLIES_ANSWER, replies_answer
from tggate.core.commands import CommandTable
from tggate.core.machine import (
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
from tggate.core.ports import ActionDone, AuthModule, MainModule, SessionStore
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


class UpdateInProgress(Exception):
    """Another request is still processing this update_id; the caller should retry later."""


def answer_json(chat_id: int, replies: Iterable[Reply]) -> str:
    """The JSON answer to a command of `chat_id` (tggate.contract.logic.RepliesAnswer)."""
    return REPLIES_ANSWER.dump_json(replies_answer(chat_id, replies)).decode()


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
        claim_ttl_s: int,
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
        # A claim outlives one processing attempt only briefly: if this replica dies mid-way,
        # the client's retry can claim the update again instead of waiting a day.
        self._claim_ttl_s = claim_ttl_s
        self._in_progress_wait_s = in_progress_wait_s

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
        answer = answer_json(command.chat_id, replies)
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
