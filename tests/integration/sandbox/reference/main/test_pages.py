"""The reference Main module's notification page (issue 4, item 3), over real HTTP.

Issue 9: the page is the admin's. It signs in with the admin secret, and every form carries a
CSRF token; without an admin secret it is off.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from tests.support.sandbox import ADMIN_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.reference.main import create_app

SECRET = "reference-main-pages-secret-0123456789abcdef"
START = 1_700_000_000.0


def access_token(sub: str) -> str:
    """A token shaped like the reference Authorization module's."""
    now = int(START)
    payload = {
        "iss": "tggate-reference-auth",
        "sub": sub,
        "typ": "access",
        "iat": now,
        "exp": now + 300,
        "name": sub,
    }
    return jwt.encode(payload, SECRET, algorithm="HS256")


@pytest.fixture
def main_url() -> Iterator[str]:
    app = create_app(jwt_secret=SECRET, admin_secret=ADMIN_SECRET, clock=lambda: START)
    with run_asgi(app) as url:
        yield url


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found is not None, "no csrf field in the page"
    return html.unescape(found.group(1))


async def sign_in(browser: httpx.AsyncClient, password: str = ADMIN_SECRET) -> httpx.Response:
    page = await browser.get("/notify")
    assert 'id="signin-form"' in page.text and 'type="password"' in page.text
    return await browser.post("/notify/signin", data={"csrf": csrf_of(page), "password": password})


async def send(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    """The form as the page sends it, with the page's CSRF token."""
    page = await client.get("/notify")
    assert 'id="notify-form"' in page.text
    return await client.post("/notify", data={"csrf": csrf_of(page), **form})


@pytest.fixture
async def stranger(main_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that has not signed in."""
    async with httpx.AsyncClient(base_url=main_url, timeout=10) as http:
        yield http


@pytest.fixture
async def client(main_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's browser, signed in."""
    async with httpx.AsyncClient(base_url=main_url, timeout=10) as http:
        signed = await sign_in(http)
        assert signed.status_code == 303 and signed.headers["location"] == "/notify"
        yield http


async def notifications_of(client: httpx.AsyncClient, who: str) -> list[dict[str, Any]]:
    answer = await client.get(
        "/notification", headers={"Authorization": f"Bearer {access_token(who)}"}
    )
    assert answer.status_code == 200, answer.text
    notes: list[dict[str, Any]] = answer.json()
    return notes


async def test_the_page_offers_the_known_identities(client: httpx.AsyncClient) -> None:
    page = await client.get("/notify")
    assert page.status_code == 200
    assert '<meta name="viewport"' in page.text and 'id="notify-form"' in page.text
    for who in ("alice", "bob", "dima", "katya"):
        assert f'<option value="{who}"' in page.text
    root = await client.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/notify"


async def test_sending_creates_a_notification_the_person_reads(client: httpx.AsyncClient) -> None:
    sent = await send(client, to="alice", to_other="", text="Exam at 10")
    assert sent.status_code == 303
    location = sent.headers["location"]
    note_id = re.fullmatch(r"/notify\?sent=([0-9a-f]+)", location)
    assert note_id is not None

    page = await client.get(location)
    assert f'id="sent" class="ok" data-id="{note_id.group(1)}"' in page.text
    assert (
        f'data-id="{note_id.group(1)}" data-to="alice" data-status="waiting"' in page.text
        and "Exam at 10" in page.text
    )
    notes = await notifications_of(client, "alice")
    assert [(n["id"], n["text"]) for n in notes] == [(note_id.group(1), "Exam at 10")]
    assert await notifications_of(client, "bob") == []

    # Once Bot Logic has delivered (deleted) it, the page says so.
    deleted = await client.request(
        "DELETE",
        "/notification",
        json={"ids": [note_id.group(1)]},
        headers={"Authorization": f"Bearer {access_token('alice')}"},
    )
    assert deleted.status_code == 204
    assert 'data-status="delivered"' in (await client.get("/notify")).text


async def test_a_typed_identity_wins_over_the_select(client: httpx.AsyncClient) -> None:
    sent = await send(client, to="alice", to_other=" github:1001 ", text="Hi")
    assert sent.status_code == 303
    assert [n["text"] for n in await notifications_of(client, "github:1001")] == ["Hi"]
    assert await notifications_of(client, "alice") == []


@pytest.mark.parametrize(
    "form",
    [
        {"to": "", "to_other": "", "text": "nobody"},
        {"to": "alice", "to_other": "", "text": "   "},
        {"to": "alice", "to_other": "", "text": "x" * 10_001},
    ],
)
async def test_an_incomplete_form_is_a_400_page(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    refused = await send(client, **form)
    assert refused.status_code == 400 and 'id="error"' in refused.text
    assert await notifications_of(client, "alice") == []


async def test_what_was_sent_is_escaped(client: httpx.AsyncClient) -> None:
    await send(client, to="alice", to_other="<b>x</b>", text="<script>alert(1)</script>")
    page = await client.get("/notify")
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "<b>x</b>" not in page.text


async def test_an_unknown_sent_id_shows_no_confirmation(client: httpx.AsyncClient) -> None:
    page = await client.get("/notify", params={"sent": "<nope>"})
    assert page.status_code == 200 and 'id="sent"' not in page.text


# ---- who may send (issue 9) ----


async def test_signed_out_the_page_asks_for_the_password_and_sends_nothing(
    stranger: httpx.AsyncClient,
) -> None:
    page = await stranger.get("/notify")
    assert page.status_code == 200
    assert 'id="signin-form"' in page.text and 'id="notify-form"' not in page.text
    # A valid CSRF token of a browser that has not signed in is not enough.
    sent = await stranger.post(
        "/notify", data={"csrf": csrf_of(page), "to": "alice", "text": "Pay here"}
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/notify"
    assert await notifications_of(stranger, "alice") == []


async def test_a_wrong_password_is_refused(stranger: httpx.AsyncClient) -> None:
    refused = await sign_in(stranger, password="x" * 40)
    assert refused.status_code == 403 and 'data-reason="password"' in refused.text
    assert ADMIN_SECRET not in refused.text
    assert 'id="notify-form"' not in (await stranger.get("/notify")).text


async def test_every_form_needs_its_csrf_token(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    without = await client.post("/notify", data={"to": "alice", "text": "forged"})
    foreign = await client.post(
        "/notify",
        data={"csrf": csrf_of(await stranger.get("/notify")), "to": "alice", "text": "forged"},
    )
    login_csrf = await stranger.post("/notify/signin", data={"password": ADMIN_SECRET})
    signout = await client.post("/notify/signout", data={})
    for refused in (without, foreign, login_csrf, signout):
        assert refused.status_code == 403 and 'data-reason="csrf"' in refused.text
    assert await notifications_of(client, "alice") == []
    assert 'id="notify-form"' not in (await stranger.get("/notify")).text
    assert 'id="notify-form"' in (await client.get("/notify")).text  # still signed in


async def test_signing_in_starts_a_new_session(stranger: httpx.AsyncClient) -> None:
    before = csrf_of(await stranger.get("/notify"))
    await sign_in(stranger)
    page = await stranger.get("/notify")
    assert 'id="notify-form"' in page.text
    assert csrf_of(page) != before  # a token seen before signing in is worth nothing after


async def test_signing_out_ends_the_session(client: httpx.AsyncClient) -> None:
    page = await client.get("/notify")
    out = await client.post("/notify/signout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303
    assert 'id="signin-form"' in (await client.get("/notify")).text


async def test_the_session_cookie_is_http_only_and_same_site(stranger: httpx.AsyncClient) -> None:
    cookie = (await stranger.get("/notify")).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


async def test_without_an_admin_secret_the_page_is_off() -> None:
    with run_asgi(create_app(jwt_secret=SECRET)) as url:
        async with httpx.AsyncClient(base_url=url) as browser:
            page = await browser.get("/notify")
            assert page.status_code == 503 and 'data-reason="off"' in page.text
            sent = await browser.post("/notify", data={"to": "alice", "text": "x"})
            assert sent.status_code == 503
