"""The pages the person's browser visits to finish a login (docs/scenarios.md#a4, #a5;
docs/contract.md#reference).

Code login: `/code` signs the browser in (a demo identity, or GitHub / Yandex ID when configured),
takes the code the bot showed, and leads to the confirmation page. OAuth login: the bot's link
`/oauth/{provider}/start?ref=…` sends the browser to the provider (state + PKCE S256), the
provider sends it back to `/oauth/{provider}/callback`, and the same confirmation page follows.
The confirmation shows which chat asks (chat id, login type, when) with Yes / No; Yes grants the
login to the signed-in identity (`sub`), No denies it. A "deny" at the provider denies the login.

Security: the session is a signed cookie (HttpOnly, SameSite=Lax; Secure on https) holding a
random session id, a CSRF token and who signed in; every POST carries the CSRF token. A code or
reference is claimed by one browser session (`LoginBook.claim`): a link works once, a code only in
the browser that entered it first. A code dies after a few wrong guesses made anywhere
(`LoginBook`), and an address that keeps guessing wrong is locked out for a while (`BrowserState`);
a right code resets neither. The OAuth `state` is bound to the browser session and single-use; the
PKCE verifier never leaves the server. Codes, tokens and secrets are never logged. Every page
refuses to be framed (`tggate_sandbox.hardening`).

Stable hooks for browser tests (ids, names and values):
- sign-in (`GET /code`, signed out): `#demo-warning` (the demo sign-in is on), `form#signin-form`,
  `input#identity`, `button#signin`,
  demo users `button[name=demo][value=alice]` (also bob, dima), provider links `a#signin-github`,
  `a#signin-yandex` (only when configured);
- code entry (`GET /code`, signed in): `#whoami[data-identity]`, `form#code-form`, `input#code`,
  `button#submit-code`, `form#signout-form` / `button#signout`;
- confirmation (`GET /confirm`): `#chat-id`, `#telegram-user` (when Bot Logic sent the name),
  `#login-type[data-type]`, `#requested-at`,
  `#confirm-identity[data-identity]`, `form#confirm-form`, `button#yes`
  (`button[name=decision][value=yes]`), `button#no` (`button[name=decision][value=no]`);
- result: `#result[data-status=granted|denied]` ("You can return to Telegram");
- any refusal: `#error[data-reason=…]`, reasons wrong-code (400), expired (410), blocked (410),
  used (409), used-link (409), unknown-link (404), rate-limited (429, with Retry-After), csrf
  (403), state (400), provider (502),
  provider-denied (403), not-configured (503), nothing-to-confirm (404), bad-identity (400),
  bad-request (400).
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tggate.core.ports import Clock
from tggate_sandbox.reference.auth.browser import BrowserState, Confirmation
from tggate_sandbox.reference.auth.logins import (
    CodeBlocked,
    Grant,
    LoginBook,
    LoginExpired,
    LoginTaken,
    LoginType,
    NoPendingLogin,
)
from tggate_sandbox.reference.auth.oauth import OAuthProvider, ProviderError
from tggate_sandbox.reference.auth.pages import (
    DemoIdentity,
    Lang,
    code_page,
    confirm_page,
    error_page,
    language_from_header,
    result_page,
    signin_page,
)

__all__ = ["OAUTH_LOGIN_TYPES", "pages_router"]

log = logging.getLogger("tggate_sandbox.reference.auth.pages")

FormField = Annotated[str, Form()]

OAUTH_LOGIN_TYPES: tuple[LoginType, ...] = ("github", "yandex")

# Free-text demo identities: no ":" so that nobody can pose as "github:123" by typing it.
_IDENTITY = re.compile(r"[\w.-]{1,64}")
_STATUS = {
    "wrong-code": 400,
    "expired": 410,
    "blocked": 410,
    "used": 409,
    "used-link": 409,
    "unknown-link": 404,
    "rate-limited": 429,
    "csrf": 403,
    "state": 400,
    "provider": 502,
    "provider-denied": 403,
    "not-configured": 503,
    "nothing-to-confirm": 404,
    "bad-identity": 400,
    "bad-request": 400,
}


def pages_router(
    *,
    logins: LoginBook,
    browser: BrowserState,
    providers: Mapping[str, OAuthProvider],
    demo_identities: Sequence[DemoIdentity],
    demo_sign_in: bool,
    clock: Clock,
) -> APIRouter:
    """The login pages; needs Starlette's SessionMiddleware on the app."""
    router = APIRouter(include_in_schema=False)
    demo_users = {d.identity: d for d in demo_identities} if demo_sign_in else {}

    def refuse(request: Request, reason: str, *, back: bool = False) -> HTMLResponse:
        return HTMLResponse(
            error_page(lang=_lang(request), reason=reason, back=back), _STATUS[reason]
        )

    def show_code_page(
        request: Request, error: str | None = None, *, retry_after_s: float = 0.0
    ) -> HTMLResponse:
        session = request.session
        headers = {"Retry-After": str(math.ceil(retry_after_s))} if retry_after_s > 0 else None
        return HTMLResponse(
            code_page(
                lang=_lang(request),
                csrf=session["csrf"],
                identity=session["identity"],
                name=session.get("name") or session["identity"],
                error=error,
            ),
            200 if error is None else _STATUS[error],
            headers=headers,
        )

    def show_signin_page(request: Request, error: str | None = None) -> HTMLResponse:
        return HTMLResponse(
            signin_page(
                lang=_lang(request),
                csrf=request.session["csrf"],
                demo=list(demo_users.values()),
                providers=list(providers),
                error=error,
            ),
            200 if error is None else _STATUS[error],
        )

    @router.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/code", 303)

    @router.get("/code")
    async def code_form(request: Request) -> HTMLResponse:
        _ensure_session(request)
        if "identity" not in request.session:
            return show_signin_page(request)
        return show_code_page(request)

    @router.post("/signin")
    async def sign_in(
        request: Request, csrf: FormField = "", identity: FormField = "", demo: FormField = ""
    ) -> Response:
        if not _csrf_ok(request, csrf):
            return refuse(request, "csrf")
        if not demo_users:
            return refuse(request, "not-configured")
        if demo:
            chosen = demo_users.get(demo)
            if chosen is None:
                return show_signin_page(request, "bad-identity")
            who, name = chosen.identity, chosen.name
        else:
            who = identity.strip()
            if not _IDENTITY.fullmatch(who):
                return show_signin_page(request, "bad-identity")
            name = who
        _sign_in(request, identity=who, name=name)
        log.info("browser signed in (demo): identity=%s", who)
        return RedirectResponse("/code", 303)

    @router.get("/signin/{provider}")
    async def sign_in_with(request: Request, provider: str) -> Response:
        oauth = providers.get(provider)
        if oauth is None:
            return refuse(request, "not-configured")
        session_id, _ = _ensure_session(request)
        return await _to_provider(oauth, session_id=session_id, login=None)

    @router.post("/signout")
    async def sign_out(request: Request, csrf: FormField = "") -> Response:
        if not _csrf_ok(request, csrf):
            return refuse(request, "csrf")
        request.session.clear()
        return RedirectResponse("/code", 303)

    @router.post("/code")
    async def enter_code(request: Request, csrf: FormField = "", code: FormField = "") -> Response:
        if not _csrf_ok(request, csrf):
            return refuse(request, "csrf")
        if "identity" not in request.session:
            return RedirectResponse("/code", 303)
        session_id = request.session["sid"]
        client = _client(request)
        now = clock()
        locked = browser.locked_for(client, now=now)
        if locked > 0:
            return show_code_page(request, "rate-limited", retry_after_s=locked)
        try:
            token, login = logins.claim(now=now, claimant=session_id, code=_normal_code(code))
        except (NoPendingLogin, LoginExpired, LoginTaken) as refused:
            # Every refusal counts as a wrong guess: an expired or used code is no reason to
            # let a client keep guessing. (A right code counts nothing either way, issue 9.)
            locked = browser.wrong_guess(client, now=now)
            if isinstance(refused, LoginExpired):
                reason = "expired"
            elif isinstance(refused, CodeBlocked):
                reason = "blocked"
            elif isinstance(refused, LoginTaken):
                reason = "used"
            else:
                reason = "wrong-code"
            log.info("code refused: %s", reason)
            if locked > 0:
                log.warning("code guesses from one address locked for %.0f s", locked)
                return show_code_page(request, "rate-limited", retry_after_s=locked)
            return show_code_page(request, reason)
        return _to_confirmation(request, login_token=token, expires_at=login.expires_at, now=now)

    @router.get("/confirm")
    async def confirmation_page(request: Request) -> Response:
        session_id, csrf = _ensure_session(request)
        ticket = request.session.get("confirm")
        now = clock()
        found = (
            None
            if not isinstance(ticket, str)
            else browser.confirmation(ticket, session_id=session_id)
        )
        if ticket is None or found is None:
            return refuse(request, "nothing-to-confirm", back=True)
        try:
            login = logins.view(found.login_token, now=now)
        except LoginExpired:
            return refuse(request, "expired")
        except (LoginTaken, NoPendingLogin):
            return refuse(request, "used")
        return HTMLResponse(
            confirm_page(
                lang=_lang(request),
                csrf=csrf,
                ticket=ticket,
                chat_id=login.chat_id,
                telegram_user=login.telegram_user,
                login_type=login.type,
                requested_at=login.created_at,
                identity=found.identity,
                name=found.name,
            )
        )

    @router.post("/confirm")
    async def confirm(
        request: Request, csrf: FormField = "", ticket: FormField = "", decision: FormField = ""
    ) -> Response:
        if not _csrf_ok(request, csrf):
            return refuse(request, "csrf")
        if decision not in ("yes", "no") or not ticket:
            return refuse(request, "bad-request")
        now = clock()
        found = browser.confirmation(ticket, session_id=request.session["sid"])
        if request.session.get("confirm") != ticket or found is None:
            return refuse(request, "nothing-to-confirm", back=True)
        try:
            logins.view(found.login_token, now=now)
            login = logins.decide(
                found.login_token,
                decision="granted" if decision == "yes" else "denied",
                grant=Grant(identity=found.identity, name=found.name),
                now=now,
            )
        except LoginExpired:
            return refuse(request, "expired")
        except (LoginTaken, NoPendingLogin):
            return refuse(request, "used")
        finally:
            browser.close_confirmation(ticket)
            request.session.pop("confirm", None)
        log.info(
            "login of chat_id=%s %s by the person (%s)",
            login.chat_id,
            login.decision,
            found.identity,
        )
        return HTMLResponse(result_page(lang=_lang(request), granted=login.decision == "granted"))

    @router.get("/oauth/{provider}/start")
    async def oauth_start(request: Request, provider: str, ref: str = "") -> Response:
        if provider not in OAUTH_LOGIN_TYPES or not ref:
            return refuse(request, "unknown-link")
        oauth = providers.get(provider)
        if oauth is None:
            return refuse(request, "not-configured")
        session_id, _ = _ensure_session(request)
        try:
            token, login = logins.claim(
                now=clock(), claimant=session_id, ref=ref, type=_login_type(provider)
            )
        except NoPendingLogin:
            return refuse(request, "unknown-link")
        except LoginExpired:
            return refuse(request, "expired")
        except LoginTaken:
            log.info("a used %s login link was opened again", provider)
            return refuse(request, "used-link")
        return await _to_provider(oauth, session_id=session_id, login=(token, login.expires_at))

    @router.get("/oauth/{provider}/callback")
    async def oauth_callback(
        request: Request, provider: str, state: str = "", code: str = "", error: str = ""
    ) -> Response:
        oauth = providers.get(provider)
        if oauth is None:
            return refuse(request, "not-configured")
        session_id = request.session.get("sid")
        now = clock()
        attempt = (
            browser.finish_attempt(state, provider=provider, session_id=session_id, now=now)
            if isinstance(session_id, str) and state
            else None
        )
        if attempt is None:
            log.warning("%s callback refused: state does not match this browser", provider)
            return refuse(request, "state")
        token = attempt.login_token
        if token is not None:
            try:
                logins.view(token, now=now)
            except LoginExpired:
                return refuse(request, "expired")
            except (LoginTaken, NoPendingLogin):
                return refuse(request, "used-link")
        if error or not code:
            # access_denied: the person said no at the provider; anything else is its failure.
            declined = error == "access_denied"
            log.info(
                "%s callback without a code: %s", provider, "declined" if declined else "error"
            )
            if token is None:
                return refuse(request, "provider-denied" if declined else "provider", back=True)
            return _deny(request, token, now=now, reason=None if declined else "provider")
        try:
            user = await oauth.fetch_user(code=code, code_verifier=attempt.code_verifier)
        except ProviderError as failure:
            log.warning("%s login failed: %s", provider, failure)
            if token is None:
                return refuse(request, "provider", back=True)
            return _deny(request, token, now=clock(), reason="provider")
        identity = f"{provider}:{user.id}"
        _sign_in(request, identity=identity, name=user.name)
        log.info("%s identified the person as %s", provider, identity)
        if token is None:
            return RedirectResponse("/code", 303)
        now = clock()
        try:
            login = logins.view(token, now=now)
        except LoginExpired:
            return refuse(request, "expired")
        except (LoginTaken, NoPendingLogin):
            return refuse(request, "used-link")
        return _to_confirmation(request, login_token=token, expires_at=login.expires_at, now=now)

    async def _to_provider(
        oauth: OAuthProvider, *, session_id: str, login: tuple[str, float] | None
    ) -> Response:
        """To the provider's consent page, for a login (its token and expiry) or to sign in."""
        code_verifier = secrets.token_urlsafe(48)  # 64 characters, RFC 7636 §4.1
        state = browser.begin_attempt(
            provider=oauth.name,
            session_id=session_id,
            code_verifier=code_verifier,
            login_token=None if login is None else login[0],
            login_expires_at=None if login is None else login[1],
            now=clock(),
        )
        url = await oauth.authorization_url(state=state, code_verifier=code_verifier)
        return RedirectResponse(url, 303)

    def _to_confirmation(
        request: Request, *, login_token: str, expires_at: float, now: float
    ) -> Response:
        ticket = browser.offer_confirmation(
            Confirmation(
                login_token=login_token,
                session_id=request.session["sid"],
                identity=request.session["identity"],
                name=request.session.get("name") or request.session["identity"],
                expires_at=expires_at,
            ),
            now=now,
        )
        request.session["confirm"] = ticket
        return RedirectResponse("/confirm", 303)

    def _deny(request: Request, token: str, *, now: float, reason: str | None) -> Response:
        try:
            login = logins.decide(token, decision="denied", grant=None, now=now)
        except NoPendingLogin:
            return refuse(request, "expired")
        log.info("login of chat_id=%s denied at the provider", login.chat_id)
        if reason is not None:
            return refuse(request, reason)
        return HTMLResponse(result_page(lang=_lang(request), granted=False))

    return router


def _lang(request: Request) -> Lang:
    return language_from_header(request.headers.get("accept-language"))


def _client(request: Request) -> str:
    """Whom wrong code guesses are counted against: the client's address."""
    return request.client.host if request.client is not None else "unknown"


def _ensure_session(request: Request) -> tuple[str, str]:
    """The browser's session id and CSRF token, made on its first visit."""
    session: dict[str, Any] = request.session
    if not isinstance(session.get("sid"), str) or not isinstance(session.get("csrf"), str):
        session.clear()
        session["sid"] = secrets.token_urlsafe(16)
        session["csrf"] = secrets.token_urlsafe(32)
    return session["sid"], session["csrf"]


def _sign_in(request: Request, *, identity: str, name: str) -> None:
    """Remember who this browser is; a new session id and CSRF token (no session fixation)."""
    session: dict[str, Any] = request.session
    session.clear()
    session["sid"] = secrets.token_urlsafe(16)
    session["csrf"] = secrets.token_urlsafe(32)
    session["identity"] = identity
    session["name"] = name


def _csrf_ok(request: Request, token: str) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(request.session.get("sid"), str)
        and bool(token)
        and secrets.compare_digest(expected, token)
    )


def _normal_code(typed: str) -> str:
    """ "123 456", "123456" and "123-456" are the same code."""
    digits = "".join(ch for ch in typed if ch in "0123456789")
    return f"{digits[:3]}-{digits[3:]}" if len(digits) == 6 else typed.strip()[:16]


def _login_type(provider: str) -> LoginType:
    return "github" if provider == "github" else "yandex"
