"""The checks of the Main module (docs/contract.md#the-main-module): every action of the command
table with a valid token (200), a role that lacks the right (403), an expired, forged or
missing token (401), and the notifications (N2): read, then delete exactly the ids given.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from tggate.conformance.logins import GrantedTokens
from tggate.conformance.plan import Notify, Persona, Plan
from tggate.conformance.probe import Probe, bearer
from tggate.conformance.report import Exchange, Report, Verdict
from tggate.contract.main import (
    DELETE_NOTIFICATIONS,
    NOTIFICATIONS,
    NotificationIds,
    NotificationView,
)
from tggate.core.commands import ActionSpec, CommandTable

__all__ = ["MainChecks"]

PASS, FAIL, WARN, SKIP = Verdict.PASS, Verdict.FAIL, Verdict.WARN, Verdict.SKIP

_DELETED = (200, 204)


def _fields(templates: Iterable[str | None]) -> set[str]:
    """The `{name}` fields the reply templates read (core/render.py fills them)."""
    names: set[str] = set()
    for template in templates:
        if template:
            try:
                names.update(name for _, name, _, _ in string.Formatter().parse(template) if name)
            except ValueError:
                continue
    return names


def _missing_fields(action: ActionSpec, data: Any) -> list[str]:
    """The fields the reply reads that the answer lacks (each is shown as "—")."""
    reply = action.reply
    if reply.items is not None:
        items = (
            data
            if reply.items == "."
            else (data or {}).get(reply.items)
            if isinstance(data, dict)
            else None
        )
        if not isinstance(items, list):
            return [reply.items if reply.items != "." else "the list"]
        wanted = _fields([reply.item.ru, reply.item.en] if reply.item else [])
        return sorted(
            {name for item in items if isinstance(item, dict) for name in wanted - set(item)}
        )
    if reply.template is None:
        return []
    wanted = _fields([reply.template.ru, reply.template.en])
    present = set(data) if isinstance(data, dict) else set()
    return sorted(wanted - present)


class MainChecks:
    """The Main module's checks, for the actions of the command table and the plan's people."""

    def __init__(
        self,
        *,
        probe: Probe,
        report: Report,
        table: CommandTable,
        plan: Plan,
        base_url: str,
        notify_secret: str | None,
        patience_s: float,
        poll_s: float,
    ) -> None:
        self._probe = probe
        self._report = report
        self._table = table
        self._plan = plan
        self._base = base_url.rstrip("/")
        self._notify_secret = notify_secret
        self._patience_s = patience_s
        self._poll_s = poll_s

    def _actions(self, names: Iterable[str]) -> list[ActionSpec]:
        return [self._table.actions[name] for name in names if name not in self._plan.skip]

    async def _run(self, action: ActionSpec, access_token: str | None) -> Exchange:
        # The path as Bot Logic fills it (logic/commands.py): each argument URL-quoted.
        args = {name: quote(value, safe="") for name, value in self._plan.args_of(action).items()}
        headers = bearer(access_token) if access_token is not None else {}
        return await self._probe.send(
            action.method, self._base + action.path.format_map(args), headers=headers
        )

    def skipped(self) -> None:
        for name, why in self._plan.skip.items():
            self._report.line(SKIP, f"main {name}", f"not called: {why}")

    async def allowed(self, person: Persona, pair: GrantedTokens) -> None:
        """Z5: each action the person may run answers 200 with what its reply reads."""
        for action in self._actions(person.can):
            subject = f"main {action.command} ({person.identity})"
            exchange = await self._run(action, pair.access_token)
            if exchange.status != 200:
                got = exchange.got()
                self._report.line(
                    FAIL, subject, f"expected 200 with a valid token, got {got}", exchange
                )
                continue
            data = exchange.json()
            missing = _missing_fields(action, data)
            if data is None:
                self._report.line(
                    WARN, subject, "200, but not JSON: the reply shows only dashes", exchange
                )
            elif missing:
                self._report.line(
                    WARN,
                    subject,
                    f"200, but the reply reads {', '.join(missing)}, which the "
                    "answer lacks (shown as —)",
                    exchange,
                )
            else:
                self._report.line(PASS, subject, "200 with every field the reply reads")

    async def accepts(self, pair: GrantedTokens, person: Persona) -> None:
        """A refreshed access token works (Z9: the retried action succeeds)."""
        actions = self._actions(person.can)
        if not actions:
            return
        exchange = await self._run(actions[0], pair.access_token)
        subject = f"main {actions[0].command} (a refreshed access token)"
        if exchange.status == 200:
            self._report.line(PASS, subject, "200")
        else:
            got = exchange.got()
            self._report.line(FAIL, subject, f"expected 200, got {got}", exchange)

    async def forbidden(self, person: Persona, pair: GrantedTokens) -> None:
        """Z6: each action the person's role lacks answers 403."""
        for action in self._actions(person.cannot):
            subject = f"main {action.command} ({person.identity}, {person.role})"
            exchange = await self._run(action, pair.access_token)
            if exchange.status == 403:
                self._report.line(PASS, subject, "403: the role lacks the right")
            else:
                got = exchange.got()
                self._report.line(
                    FAIL, subject, f"expected 403 ({person.identity} may not), got {got}", exchange
                )

    async def refused(self, kind: str, token: str | None, *, notifications: bool = True) -> None:
        """Z7: an expired, forged or missing token is 401 on every action and on notifications."""
        targets: list[tuple[str, Any]] = [
            (a.command, a) for a in self._actions(self._table.actions)
        ]
        for name, action in targets:
            exchange = await self._run(action, token)
            self._401(f"main {name}", kind, exchange)
        if notifications:
            headers = bearer(token) if token is not None else {}
            read = await self._probe.send(
                NOTIFICATIONS.method, self._base + NOTIFICATIONS.path, headers=headers
            )
            self._401(f"main {NOTIFICATIONS.method} {NOTIFICATIONS.path}", kind, read)
            body = NotificationIds(ids=["tggate-check-none"]).model_dump_json().encode()
            delete = await self._probe.send(
                DELETE_NOTIFICATIONS.method,
                self._base + DELETE_NOTIFICATIONS.path,
                content=body,
                headers=headers,
            )
            self._401(
                f"main {DELETE_NOTIFICATIONS.method} {DELETE_NOTIFICATIONS.path}", kind, delete
            )

    def _401(self, subject: str, kind: str, exchange: Exchange) -> None:
        if exchange.status == 401:
            self._report.line(PASS, f"{subject} ({kind} token)", "401")
        else:
            got = exchange.got()
            self._report.line(
                FAIL, f"{subject} ({kind} token)", f"expected 401, got {got}", exchange
            )

    # ---- notifications ----

    async def _read(self, pair: GrantedTokens) -> tuple[list[NotificationView] | None, Exchange]:
        exchange = await self._probe.send(
            NOTIFICATIONS.method, self._base + NOTIFICATIONS.path, headers=bearer(pair.access_token)
        )
        body = exchange.json()
        if exchange.status != 200 or not isinstance(body, list):
            return None, exchange
        views = []
        for item in body:
            try:
                views.append(NotificationView.model_validate(item))
            except ValidationError:
                continue
        return views, exchange

    async def _delete(self, pair: GrantedTokens, ids: list[str]) -> Exchange:
        return await self._probe.send(
            DELETE_NOTIFICATIONS.method,
            self._base + DELETE_NOTIFICATIONS.path,
            content=NotificationIds(ids=ids).model_dump_json().encode(),
            headers=bearer(pair.access_token),
        )

    async def _create(self, notify: Notify, person: Persona, text: str) -> Exchange:
        headers = (
            {notify.secret_header: self._notify_secret}
            if notify.secret_header and self._notify_secret
            else {}
        )
        body = json.dumps(notify.fill(identity=person.identity, text=text)).encode()
        return await self._probe.send(
            notify.method, self._base + notify.path, content=body, headers=headers
        )

    async def notifications(self, person: Persona, pair: GrantedTokens) -> None:
        """N2: the list, then a delete of exactly the ids given (a notification that arrived
        meanwhile must stay)."""
        subject = f"main {NOTIFICATIONS.method} {NOTIFICATIONS.path}"
        before, exchange = await self._read(pair)
        if before is None:
            got = exchange.got()
            self._report.line(FAIL, subject, f"expected 200 with a JSON list, got {got}", exchange)
            return
        listed = exchange.json()
        skipped = len(listed) - len(before)
        if skipped:
            self._report.line(
                WARN,
                subject,
                f"{skipped} of {len(listed)} items lack an id or a text: tggate skips them",
                exchange,
            )
        else:
            self._report.line(PASS, subject, f"200, a list of {len(before)}")
        known = {view.id for view in before}
        marker = secrets.token_hex(4)
        texts = [f"tggate check-modules {marker} #{n}" for n in (1, 2)]
        if self._plan.notify is not None:
            for text in texts:
                created = await self._create(self._plan.notify, person, text)
                if created.status is None or not 200 <= created.status < 300:
                    got = created.got()
                    self._report.line(
                        FAIL,
                        "main notify (the plan's [notify])",
                        f"could not create a notification: {got}",
                        created,
                    )
                    return
        else:
            self._report.wait(
                f"create two notifications for {person.identity} in the Main module (any "
                f"text) (waiting up to {self._patience_s:g} s)"
            )
        new, exchange = await self._await_new(pair, known)
        if len(new) < 2:
            self._report.line(
                FAIL,
                subject,
                f"expected 2 new notifications for {person.identity}, found {len(new)}",
                exchange,
            )
            return
        first, second = new[0].id, new[1].id
        self._report.line(
            PASS, f"{subject} (after two were made)", "both listed, each with an id and a text"
        )
        delete_subject = f"main {DELETE_NOTIFICATIONS.method} {DELETE_NOTIFICATIONS.path}"
        deleted = await self._delete(pair, [first])
        if deleted.status not in _DELETED:
            got = deleted.got()
            self._report.line(FAIL, delete_subject, f"expected 204, got {got}", deleted)
            return
        self._report.line(PASS, delete_subject, f"{deleted.status}")
        after, listing = await self._read(pair)
        left = {view.id for view in after or []}
        if after is None:
            got = listing.got()
            self._report.line(FAIL, subject, f"expected 200 with a JSON list, got {got}", listing)
        elif first in left:
            self._report.line(
                FAIL,
                delete_subject + " (exactly those ids)",
                "the id it was given is still listed",
                deleted,
                listing,
            )
        elif second not in left:
            self._report.line(
                FAIL,
                delete_subject + " (exactly those ids)",
                "it also deleted a notification "
                "it was not given: one that arrives between tggate's read and delete is lost",
                deleted,
                listing,
            )
        else:
            self._report.line(
                PASS, delete_subject + " (exactly those ids)", "the other notification stays"
            )
        unknown = await self._delete(pair, [f"tggate-check-{marker}-unknown"])
        if unknown.status in _DELETED:
            self._report.line(
                PASS, delete_subject + " (an unknown id)", f"{unknown.status}: ignored"
            )
        else:
            got = unknown.got()
            self._report.line(
                FAIL,
                delete_subject + " (an unknown id)",
                f"expected 204 (unknown ids are ignored), got {got}",
                unknown,
            )
        await self._delete(pair, [second])  # leave the module as it was

    async def _await_new(
        self, pair: GrantedTokens, known: set[str]
    ) -> tuple[list[NotificationView], Exchange]:
        """The notifications not listed before, once there are two (or the patience is out)."""
        deadline = time.monotonic() + self._patience_s
        while True:
            views, exchange = await self._read(pair)
            new = [view for view in views or [] if view.id not in known]
            if len(new) >= 2 or time.monotonic() >= deadline:
                return new, exchange
            await asyncio.sleep(self._poll_s)
