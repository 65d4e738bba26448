"""A page to send a notification by hand (issue 4, item 3): pick a person, type, send.

`GET /notify` shows the form and the notifications sent from it, each marked waiting (still in
the person's box) or delivered (Bot Logic has read and deleted it, N2). `POST /notify` creates a
notification like `POST /notifications` does and redirects back (`/notify?sent=<id>`), so a
reload does not send it twice. Plain HTML, no JavaScript, readable on a phone; like
`POST /notifications`, no token (an admin page in a real system).

Hooks for browser tests: `form#notify-form`, `select#to` (known identities), `input#to-other`
(any identity; wins over the select when filled), `textarea#text`, `button#send`; after sending,
`#sent[data-id]`; the list `#recent` with `li.notification[data-id][data-to][data-status]`;
a refusal `#error`.
"""

from __future__ import annotations

import html
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import FastAPI, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tggate_sandbox.reference.main.catalog import School
from tggate_sandbox.reference.main.notifications import Notification, NotificationBox

__all__ = ["add_notification_pages"]

Clock = Callable[[], float]
FormField = Annotated[str, Form()]

_RECENT = 20
_MAX_IDENTITY = 200  # the limits of POST /notifications (models.NewNotification)
_MAX_TEXT = 10_000

_CSS = """
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f3f4f6;
color:#1f2328}
main{max-width:34rem;margin:1.5rem auto;padding:1.25rem;background:#fff;border-radius:12px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.3rem;margin:0 0 .75rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
label{display:block;margin:.75rem 0 .25rem}
input,select,textarea,button{font:inherit;box-sizing:border-box}
input[type=text],select,textarea{width:100%;padding:.6rem;border:1px solid #c4c8cf;
border-radius:8px}
textarea{min-height:6rem}
button{padding:.65rem 1.1rem;margin-top:.75rem;border:0;border-radius:8px;background:#2563eb;
color:#fff;cursor:pointer}
ul{list-style:none;padding:0}li{padding:.5rem 0;border-bottom:1px solid #e5e7eb}
.ok{color:#15803d}.error{color:#b91c1c}.muted{color:#57606a;font-size:.9rem}
"""


@dataclass(frozen=True, slots=True)
class _Sent:
    identity: str
    note: Notification


class _SentLog:
    """The last notifications sent from the page, newest first. Thread-safe."""

    def __init__(self) -> None:
        self._items: deque[_Sent] = deque(maxlen=_RECENT)
        self._lock = threading.Lock()

    def add(self, identity: str, note: Notification) -> None:
        with self._lock:
            self._items.appendleft(_Sent(identity, note))

    def items(self) -> list[_Sent]:
        with self._lock:
            return list(self._items)


def add_notification_pages(
    app: FastAPI, *, school: School, box: NotificationBox, clock: Clock
) -> None:
    sent_log = _SentLog()

    def render(
        *, sent: str | None = None, error: str | None = None, to: str = "", text: str = ""
    ) -> str:
        return _page(
            identities=school.identities(),
            recent=[(item, _is_waiting(box, item)) for item in sent_log.items()],
            sent=sent,
            error=error,
            to=to,
            text=text,
        )

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/notify", 303)

    @app.get("/notify", response_class=HTMLResponse, tags=["pages"])
    async def notify_form(sent: str = "") -> str:
        known = {item.note.id for item in sent_log.items()}
        return render(sent=sent if sent in known else None)

    @app.post("/notify", tags=["pages"])
    async def notify(
        to: FormField = "", to_other: FormField = "", text: FormField = ""
    ) -> Response:
        identity = to_other.strip() or to.strip()
        if not identity or len(identity) > _MAX_IDENTITY:
            error = "Choose a recipient (up to 200 characters)."
        elif not text.strip() or len(text) > _MAX_TEXT:
            error = "Write a text (up to 10 000 characters)."
        else:
            note = box.add(identity, text, now=clock())
            sent_log.add(identity, note)
            return RedirectResponse(f"/notify?sent={note.id}", 303)
        return HTMLResponse(render(error=error, to=identity, text=text), 400)


def _is_waiting(box: NotificationBox, item: _Sent) -> bool:
    return any(note.id == item.note.id for note in box.of(item.identity))


def _page(
    *,
    identities: list[str],
    recent: list[tuple[_Sent, bool]],
    sent: str | None,
    error: str | None,
    to: str,
    text: str,
) -> str:
    e = html.escape
    options = "".join(
        f'<option value="{e(who)}"{" selected" if who == to else ""}>{e(who)}</option>'
        for who in identities
    )
    other = "" if to in identities else to
    parts = ["<h1>Send a notification</h1>"]
    if sent is not None:
        parts.append(
            f'<p id="sent" class="ok" data-id="{e(sent)}">Sent. The bot delivers it on its next '
            "notification cycle.</p>"
        )
    if error is not None:
        parts.append(f'<p id="error" class="error">{e(error)}</p>')
    parts.append(
        '<form id="notify-form" method="post" action="/notify">'
        f'<label for="to">Recipient</label><select id="to" name="to">{options}</select>'
        '<label for="to-other">…or another identity</label>'
        f'<input type="text" id="to-other" name="to_other" maxlength="{_MAX_IDENTITY}" '
        f'value="{e(other)}" placeholder="github:1001">'
        '<label for="text">Text</label>'
        f'<textarea id="text" name="text" maxlength="{_MAX_TEXT}" required>{e(text)}</textarea>'
        '<button type="submit" id="send">Send</button></form>'
    )
    items = "".join(
        f'<li class="notification" data-id="{e(item.note.id)}" data-to="{e(item.identity)}" '
        f'data-status="{"waiting" if waiting else "delivered"}">'
        f"<b>{e(item.identity)}</b>: {e(item.note.text)}<br>"
        f'<span class="muted">{e(item.note.created_at)} · '
        f"{'waiting' if waiting else 'delivered'}</span></li>"
        for item, waiting in recent
    )
    parts.append(
        f'<h2>Recent</h2><ul id="recent">{items}</ul>'
        if items
        else '<h2>Recent</h2><ul id="recent"></ul><p class="muted">Nothing sent yet.</p>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Notifications</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )
