"""A page to send a notification by hand (issue 4, item 3): sign in, pick a person, type, send.

`GET /notify` shows the form and the notifications sent from it, each marked waiting (still in
the person's box) or delivered (Bot Logic has read and deleted it, N2). `POST /notify` creates a
notification like `POST /notifications` does and redirects back (`/notify?sent=<id>`), so a
reload does not send it twice. Plain HTML, no JavaScript, readable on a phone.

A notification is a message the bot pushes into someone's Telegram, so the page is the admin's
(issue 9): it signs in with the module's admin secret (`POST /notify/signin`; `tggate demo` prints
it), and every form carries a CSRF token bound to the signed session cookie (HttpOnly,
SameSite=Lax). Without an admin secret the page only says it is off (503).

Hooks for browser tests: signed out, `form#signin-form`, `input#password`, `button#signin`;
signed in, `form#notify-form`, `select#to` (known identities), `input#to-other` (any identity;
wins over the select when filled), `textarea#text`, `button#send`, `form#signout-form` /
`button#signout`; after sending, `#sent[data-id]`; the list `#recent` with
`li.notification[data-id][data-to][data-status]`; a refusal `#error[data-reason]`, reasons
password (403), csrf (403), off (503), input (400).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from tggate.core.ports import Clock
from tggate_sandbox.reference.main.catalog import School
from tggate_sandbox.reference.main.notifications import NotificationBox, StoredNotification

__all__ = ["add_notification_pages"]

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
input[type=password]{width:100%;padding:.6rem;border:1px solid #c4c8cf;border-radius:8px}
button.secondary{background:#e5e7eb;color:#1f2328}
"""

_REFUSALS = {
    "password": (403, "Wrong password."),
    "csrf": (403, "The form is stale or was not sent from this page. Reload it and try again."),
    "off": (
        503,
        "This page is off: the module was started without an admin secret "
        "(TGGATE_REFERENCE_ADMIN_SECRET).",
    ),
}


@dataclass(frozen=True, slots=True)
class _Sent:
    identity: str
    note: StoredNotification


class _SentLog:
    """The last notifications sent from the page, newest first. Thread-safe."""

    def __init__(self) -> None:
        self._items: deque[_Sent] = deque(maxlen=_RECENT)
        self._lock = threading.Lock()

    def add(self, identity: str, note: StoredNotification) -> None:
        with self._lock:
            self._items.appendleft(_Sent(identity, note))

    def items(self) -> list[_Sent]:
        with self._lock:
            return list(self._items)


def add_notification_pages(
    app: FastAPI,
    *,
    school: School,
    box: NotificationBox,
    clock: Clock,
    admin_secret: str | None,
    secure_cookies: bool,
) -> None:
    """The page, behind the admin secret; adds the session middleware it needs."""
    sent_log = _SentLog()

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/notify", 303)

    if admin_secret is None:

        @app.api_route("/notify", methods=["GET", "POST"], include_in_schema=False)
        async def notify_off() -> HTMLResponse:
            return _refusal("off")

        return

    app.add_middleware(
        SessionMiddleware,
        secret_key=_session_key(admin_secret),
        session_cookie="tggate_main_session",
        max_age=12 * 3600,
        same_site="lax",
        https_only=secure_cookies,
    )
    admin_password = admin_secret.encode("utf-8")

    def render(
        request: Request,
        *,
        sent: str | None = None,
        error: str | None = None,
        to: str = "",
        text: str = "",
    ) -> str:
        return _page(
            csrf=request.session["csrf"],
            identities=school.identities(),
            recent=[(item, _is_waiting(box, item)) for item in sent_log.items()],
            sent=sent,
            error=error,
            to=to,
            text=text,
        )

    @app.get("/notify", response_class=HTMLResponse, include_in_schema=False)
    async def notify_form(request: Request, sent: str = "") -> HTMLResponse:
        csrf = _ensure_session(request)
        if not request.session.get("admin"):
            return HTMLResponse(_signin_page(csrf=csrf))
        known = {item.note.id for item in sent_log.items()}
        return HTMLResponse(render(request, sent=sent if sent in known else None))

    @app.post("/notify/signin", include_in_schema=False)
    async def sign_in(request: Request, csrf: FormField = "", password: FormField = "") -> Response:
        if not _csrf_ok(request, csrf):
            return _refusal("csrf")
        if not secrets.compare_digest(password.encode("utf-8"), admin_password):
            return HTMLResponse(
                _signin_page(csrf=request.session["csrf"], error="password"),
                _REFUSALS["password"][0],
            )
        # A new session on sign-in: a CSRF token seen before it is worth nothing after.
        request.session.clear()
        request.session.update(csrf=secrets.token_urlsafe(32), admin=True)
        return RedirectResponse("/notify", 303)

    @app.post("/notify/signout", include_in_schema=False)
    async def sign_out(request: Request, csrf: FormField = "") -> Response:
        if not _csrf_ok(request, csrf):
            return _refusal("csrf")
        request.session.clear()
        return RedirectResponse("/notify", 303)

    @app.post("/notify", include_in_schema=False)
    async def notify(
        request: Request,
        csrf: FormField = "",
        to: FormField = "",
        to_other: FormField = "",
        text: FormField = "",
    ) -> Response:
        if not _csrf_ok(request, csrf):
            return _refusal("csrf")
        if not request.session.get("admin"):
            return RedirectResponse("/notify", 303)
        identity = to_other.strip() or to.strip()
        if not identity or len(identity) > _MAX_IDENTITY:
            error = "Choose a recipient (up to 200 characters)."
        elif not text.strip() or len(text) > _MAX_TEXT:
            error = "Write a text (up to 10 000 characters)."
        else:
            note = box.add(identity, text, now=clock())
            sent_log.add(identity, note)
            return RedirectResponse(f"/notify?sent={note.id}", 303)
        return HTMLResponse(render(request, error=error, to=identity, text=text), 400)


def _session_key(admin_secret: str) -> str:
    """A key for the session cookie that is not the admin secret itself."""
    return hmac.new(
        admin_secret.encode("utf-8"), b"tggate reference main: session cookie", hashlib.sha256
    ).hexdigest()


def _ensure_session(request: Request) -> str:
    """The browser's CSRF token, made on its first visit."""
    session: dict[str, Any] = request.session
    if not isinstance(session.get("csrf"), str):
        session.clear()
        session["csrf"] = secrets.token_urlsafe(32)
    csrf: str = session["csrf"]
    return csrf


def _csrf_ok(request: Request, token: str) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and bool(token) and secrets.compare_digest(expected, token)


def _refusal(reason: str) -> HTMLResponse:
    status, text = _REFUSALS[reason]
    return HTMLResponse(
        _layout(
            "Notifications",
            f"<h1>Send a notification</h1>{_error_line(reason, text)}"
            '<p><a href="/notify">Back</a></p>',
        ),
        status,
    )


def _error_line(reason: str, text: str) -> str:
    return (
        f'<p id="error" class="error" data-reason="{html.escape(reason)}">{html.escape(text)}</p>'
    )


def _signin_page(*, csrf: str, error: str | None = None) -> str:
    e = html.escape
    body = (
        "<h1>Send a notification</h1>"
        f"{'' if error is None else _error_line(error, _REFUSALS[error][1])}"
        "<p>This page is the system's admin page: sign in with the Main module's admin password "
        "(<code>tggate demo</code> prints it).</p>"
        '<form id="signin-form" method="post" action="/notify/signin">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label for="password">Admin password</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" '
        "required autofocus>"
        '<button type="submit" id="signin">Sign in</button></form>'
    )
    return _layout("Notifications: sign in", body)


def _is_waiting(box: NotificationBox, item: _Sent) -> bool:
    return any(note.id == item.note.id for note in box.of(item.identity))


def _page(
    *,
    csrf: str,
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
        parts.append(_error_line("input", error))
    parts.append(
        '<form id="notify-form" method="post" action="/notify">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<label for="to">Recipient</label><select id="to" name="to">{options}</select>'
        '<label for="to-other">…or another identity</label>'
        f'<input type="text" id="to-other" name="to_other" maxlength="{_MAX_IDENTITY}" '
        f'value="{e(other)}" placeholder="github:1001">'
        '<label for="text">Text</label>'
        f'<textarea id="text" name="text" maxlength="{_MAX_TEXT}" required>{e(text)}</textarea>'
        '<button type="submit" id="send">Send</button></form>'
        '<form id="signout-form" method="post" action="/notify/signout">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<button type="submit" id="signout" class="secondary">Sign out</button></form>'
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
    return _layout("Notifications", "".join(parts))


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
