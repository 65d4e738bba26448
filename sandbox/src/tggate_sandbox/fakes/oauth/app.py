"""A local fake OAuth 2.0 provider that speaks like GitHub and like Yandex ID
(docs/contract.md#reference).

One app serves both flavours, each under its prefix; point the Authorization module at them with
`auth_configs(base_url, …)` (or `github_config(base_url=f"{base}/github",
api_url=f"{base}/github/api")` and `yandex_config(oauth_url=f"{base}/yandex",
info_url=f"{base}/yandex/info")`):

| flavour | authorize (GET: page, POST: decision) | token (POST) | user (GET) |
|---|---|---|---|
| GitHub | `/github/login/oauth/authorize` | `…/login/oauth/access_token` | `/github/api/user` |
| Yandex | `/yandex/authorize` | `/yandex/token` | `/yandex/info?format=json` |

The authorize page is a consent page ("App X wants to sign you in as …", a user picker, Allow /
Deny) that redirects back with `code` + `state` or `error=access_denied`. The token endpoint
checks the client (form body or HTTP Basic), the code (single-use, not expired), `redirect_uri`
and the PKCE S256 verifier. Like the real ones, GitHub answers token errors with 200 and an
`error` field (form-encoded unless JSON is asked for), Yandex with 400/401 JSON. The user
endpoints answer GitHub's `/user` (`id` a number, `login`, `name`) and Yandex's `/info` (`id` a
string, `login`, `real_name`, `display_name`) shapes. With a test API secret, `GET /_test/stats`
counts the calls (`X-Test-Api-Secret`, `tggate_sandbox.hardening`).
Every client is registered with its redirect URIs (`OAuthClient`; the reference module's
callbacks); an authorize request naming any other is refused with a page and no redirect, so the
provider cannot be used to bounce a person, or a code, to a stranger's site (issue 9; RFC 9700
§4.1: exact string matching). The consent form has no CSRF token and no login of its own: it is
a fake, for loopback use.

Hooks for browser tests: `form#consent-form`, `#app-name`, a radio per user
`input[name=user][value=<id>]` (id `user-<login>`), `button#allow`
(`button[name=decision][value=allow]`) and `button#deny` (`button[name=decision][value=deny]`).
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tggate.core.ports import Clock
from tggate_sandbox.fakes.oauth.grants import DEMO_USERS, FakeUser, GrantBook, GrantRefused
from tggate_sandbox.hardening import guard_test_api, sandbox_app

if TYPE_CHECKING:
    from pydantic import SecretStr

    from tggate_sandbox.reference.auth.oauth import OAuthProviderConfig
    from tggate_sandbox.settings import SandboxSettings

__all__ = ["OAuthClient", "auth_configs", "clients_from_settings", "create_app"]

Flavor = Literal["github", "yandex"]
FormField = Annotated[str, Form()]

_PATHS: dict[Flavor, dict[str, str]] = {
    "github": {
        "authorize": "/github/login/oauth/authorize",
        "token": "/github/login/oauth/access_token",
        "user": "/github/api/user",
    },
    "yandex": {
        "authorize": "/yandex/authorize",
        "token": "/yandex/token",
        "user": "/yandex/info",
    },
}


# Where `tggate reference-auth` listens when nothing else is said (cli.DEFAULT_PORTS).
_DEFAULT_AUTH_URL = "http://127.0.0.1:8081"


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """An application registered at the fake provider: its secret and its redirect URIs."""

    secret: str = field(repr=False)
    redirect_uris: frozenset[str]

    @classmethod
    def of_auth_module(
        cls, secret: str, auth_url: str, flavors: Iterable[Flavor] = ("github", "yandex")
    ) -> OAuthClient:
        """The reference Authorization module at `auth_url`: its callback per flavour."""
        base = auth_url.rstrip("/")
        return cls(secret, frozenset(f"{base}/oauth/{flavor}/callback" for flavor in flavors))


def clients_from_settings(settings: SandboxSettings) -> dict[str, OAuthClient]:
    """The registered clients: the ids and secrets the reference module is configured with, and
    its callbacks under TGGATE_AUTH_PUBLIC_URL."""
    auth_url = str(settings.auth_public_url or _DEFAULT_AUTH_URL)
    clients: dict[str, OAuthClient] = {}
    flavors: tuple[tuple[Flavor, str | None, SecretStr | None], ...] = (
        ("github", settings.github_client_id, settings.github_client_secret),
        ("yandex", settings.yandex_client_id, settings.yandex_client_secret),
    )
    for flavor, client_id, secret in flavors:
        if not client_id or secret is None:
            continue
        client = OAuthClient.of_auth_module(secret.get_secret_value(), auth_url, [flavor])
        known = clients.get(client_id)
        if known is not None:  # one app for both flavours
            client = OAuthClient(known.secret, known.redirect_uris | client.redirect_uris)
        clients[client_id] = client
    return clients


def auth_configs(
    base_url: str, *, client_id: str, client_secret: str
) -> dict[str, OAuthProviderConfig]:
    """The Authorization module's `oauth=` argument for this fake provider at `base_url`."""
    # Imported here: the package brings the whole Authorization module's app along, which the
    # fake provider's server never serves (issue 11, item 7).
    from tggate_sandbox.reference.auth.oauth import github_config, yandex_config

    base = base_url.rstrip("/")
    return {
        "github": github_config(
            client_id, client_secret, base_url=f"{base}/github", api_url=f"{base}/github/api"
        ),
        "yandex": yandex_config(
            client_id, client_secret, oauth_url=f"{base}/yandex", info_url=f"{base}/yandex/info"
        ),
    }


def create_app(
    *,
    clients: Mapping[str, OAuthClient],
    users: Sequence[FakeUser] = DEMO_USERS,
    code_ttl_s: float = 600.0,
    test_api_secret: str | None = None,
    clock: Clock = time.time,
) -> FastAPI:
    """Build the fake provider; `clients` maps each client_id to its registration."""
    if not clients:
        raise ValueError("the fake provider needs at least one client")
    if not users:
        raise ValueError("the fake provider needs at least one user")
    clients = dict(clients)
    people = {user.id: user for user in users}
    grants = GrantBook(code_ttl_s=code_ttl_s)
    stats: Counter[str] = Counter()
    app = sandbox_app(title="tggate fake OAuth provider", version="1")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for flavor in ("github", "yandex"):
        _add_flavor(
            app, flavor, clients=clients, people=people, grants=grants, stats=stats, clock=clock
        )

    if test_api_secret is not None:

        @app.get(
            "/_test/stats", tags=["test"], dependencies=[Depends(guard_test_api(test_api_secret))]
        )
        async def test_stats() -> dict[str, int]:
            return dict(stats)

    return app


def _add_flavor(
    app: FastAPI,
    flavor: Flavor,
    *,
    clients: Mapping[str, OAuthClient],
    people: Mapping[int, FakeUser],
    grants: GrantBook,
    stats: Counter[str],
    clock: Clock,
) -> None:
    paths = _PATHS[flavor]
    title = "GitHub" if flavor == "github" else "Yandex ID"

    def authorize_problem(client_id: str, redirect_uri: str) -> HTMLResponse | None:
        """Errors shown on the provider's page, not sent back (RFC 6749 §4.1.2.1)."""
        client = clients.get(client_id)
        if client is None:
            return _provider_page(title, "Unknown application", "No such client_id.", 400)
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return _provider_page(title, "Bad redirect_uri", "redirect_uri is missing.", 400)
        if redirect_uri not in client.redirect_uris:
            stats[f"{flavor}.redirect_refused"] += 1
            return _provider_page(
                title,
                "Bad redirect_uri",
                "This redirect_uri is not registered for the application: nothing is sent there.",
                400,
            )
        return None

    @app.get(paths["authorize"], response_class=HTMLResponse, tags=[flavor])
    async def authorize(
        client_id: str = "",
        redirect_uri: str = "",
        state: str = "",
        scope: str = "",
        response_type: str = "code",
        code_challenge: str = "",
        code_challenge_method: str = "",
    ) -> Response:
        stats[f"{flavor}.authorize"] += 1
        problem = authorize_problem(client_id, redirect_uri)
        if problem is not None:
            return problem
        if response_type != "code":
            return _back(redirect_uri, error="unsupported_response_type", state=state)
        if code_challenge and code_challenge_method != "S256":
            # Only S256: "plain" would let whoever sees the URL redeem the code.
            return _back(redirect_uri, error="invalid_request", state=state)
        return HTMLResponse(
            _consent_page(
                title,
                action=paths["authorize"],
                users=list(people.values()),
                fields={
                    "client_id": client_id,
                    "redirect_uri": redirect_uri,
                    "state": state,
                    "scope": scope,
                    "code_challenge": code_challenge,
                    "code_challenge_method": code_challenge_method,
                },
            )
        )

    @app.post(paths["authorize"], tags=[flavor])
    async def decide(
        client_id: FormField = "",
        redirect_uri: FormField = "",
        state: FormField = "",
        scope: FormField = "",
        code_challenge: FormField = "",
        code_challenge_method: FormField = "",
        decision: FormField = "",
        user: FormField = "",
    ) -> Response:
        problem = authorize_problem(client_id, redirect_uri)
        if problem is not None:
            return problem
        if decision != "allow":
            stats[f"{flavor}.denied"] += 1
            return _back(redirect_uri, error="access_denied", state=state)
        if code_challenge and code_challenge_method != "S256":
            return _back(redirect_uri, error="invalid_request", state=state)
        chosen = people.get(int(user)) if user.isdigit() else None
        if chosen is None:
            return _provider_page(title, "Pick a user", "Choose who to sign in as.", 400)
        stats[f"{flavor}.allowed"] += 1
        code = grants.issue_code(
            client_id=client_id,
            redirect_uri=redirect_uri,
            user_id=chosen.id,
            scope=scope,
            code_challenge=code_challenge or None,
            now=clock(),
        )
        return _back(redirect_uri, code=code, state=state)

    @app.post(paths["token"], tags=[flavor])
    async def token(
        request: Request,
        grant_type: FormField = "",
        code: FormField = "",
        redirect_uri: FormField = "",
        client_id: FormField = "",
        client_secret: FormField = "",
        code_verifier: FormField = "",
    ) -> Response:
        stats[f"{flavor}.token"] += 1
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            client_id, client_secret = basic
        known = clients.get(client_id)
        try:
            if (
                known is None
                or not client_secret
                or not secrets.compare_digest(client_secret.encode(), known.secret.encode())
            ):
                raise GrantRefused("invalid_client", "client authentication failed")
            if grant_type != "authorization_code":
                raise GrantRefused("unsupported_grant_type", "only authorization_code")
            access_token, grant = grants.exchange(
                code,
                client_id=client_id,
                redirect_uri=redirect_uri or None,
                code_verifier=code_verifier or None,
                now=clock(),
            )
        except GrantRefused as refused:
            stats[f"{flavor}.token_error.{refused.error}"] += 1
            return _token_error(flavor, request, refused)
        body = {"access_token": access_token, "token_type": "bearer", "scope": grant.scope}
        if flavor == "github" and "json" not in request.headers.get("accept", ""):
            return Response(urlencode(body), media_type="application/x-www-form-urlencoded")
        return JSONResponse(body)

    @app.get(paths["user"], tags=[flavor])
    async def user_info(request: Request) -> Response:
        stats[f"{flavor}.user"] += 1
        scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
        schemes = ("bearer", "token") if flavor == "github" else ("oauth", "bearer")
        user_id = grants.user_of(presented.strip()) if scheme.lower() in schemes else None
        person = people.get(user_id) if user_id is not None else None
        if person is None:
            if flavor == "github":
                return JSONResponse({"message": "Bad credentials"}, 401)
            return JSONResponse({"error": "invalid_token"}, 401)
        if flavor == "github":
            return JSONResponse(
                {"login": person.login, "id": person.id, "name": person.name, "type": "User"}
            )
        first, _, last = person.name.partition(" ")
        return JSONResponse(
            {
                "id": str(person.id),
                "login": person.login,
                "client_id": "fake",
                "display_name": person.login,
                "real_name": person.name,
                "first_name": first,
                "last_name": last,
                "psuid": f"fake.{person.id}",
            }
        )


def _back(redirect_uri: str, **params: str) -> RedirectResponse:
    """Back to the client with `params` added to its redirect URI's query."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value]
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), 302)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
    return (unquote(client_id), unquote(secret)) if sep else None


def _token_error(flavor: Flavor, request: Request, refused: GrantRefused) -> Response:
    if flavor == "github":
        # GitHub answers 200 with an error body (bad_verification_code for a bad code).
        error = "bad_verification_code" if refused.error == "invalid_grant" else refused.error
        error = "incorrect_client_credentials" if error == "invalid_client" else error
        body = {"error": error, "error_description": refused.description}
        if "json" not in request.headers.get("accept", ""):
            return Response(urlencode(body), media_type="application/x-www-form-urlencoded")
        return JSONResponse(body)
    status = 401 if refused.error == "invalid_client" else 400
    return JSONResponse({"error": refused.error, "error_description": refused.description}, status)


_CSS = (
    "body{font:16px/1.45 system-ui,sans-serif;margin:0;background:#0d1117;color:#e6edf3}"
    "main{max-width:28rem;margin:1.5rem auto;padding:1.25rem;background:#161b22;"
    "border:1px solid #30363d;border-radius:12px}"
    "h1{font-size:1.25rem;margin:0 0 .75rem}label{display:block;padding:.4rem 0}"
    "button{font:inherit;padding:.65rem 1.1rem;margin:.35rem .35rem 0 0;border:0;"
    "border-radius:8px;cursor:pointer}#allow{background:#238636;color:#fff}"
    "#deny{background:#30363d;color:#e6edf3}.muted{color:#8b949e;font-size:.9rem}"
)


def _provider_page(title: str, heading: str, text: str, status: int = 200) -> HTMLResponse:
    body = f'<h1>{html.escape(heading)}</h1><p id="error">{html.escape(text)}</p>'
    return HTMLResponse(_layout(f"{title} (fake)", body), status)


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _consent_page(
    title: str, *, action: str, users: Sequence[FakeUser], fields: Mapping[str, str]
) -> str:
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in fields.items()
    )
    choices = "".join(
        f'<label><input type="radio" id="user-{e(u.login)}" name="user" value="{u.id}"'
        f"{' checked' if i == 0 else ''}> {e(u.name)} <span class=muted>@{e(u.login)}</span>"
        "</label>"
        for i, u in enumerate(users)
    )
    body = (
        f"<h1>{e(title)} <span class=muted>(fake)</span></h1>"
        f'<p>App <b id="app-name">{e(fields["client_id"])}</b> wants to sign you in as:</p>'
        f'<form id="consent-form" method="post" action="{e(action)}">{hidden}{choices}'
        '<button type="submit" id="allow" name="decision" value="allow">Allow</button>'
        '<button type="submit" id="deny" name="decision" value="deny">Deny</button>'
        "</form>"
    )
    return _layout(f"{title} (fake): sign in", body)
