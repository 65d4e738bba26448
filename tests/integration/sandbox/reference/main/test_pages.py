"""The reference Main module's notification page (issue 4, item 3), over real HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
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
    with run_asgi(create_app(jwt_secret=SECRET, clock=lambda: START)) as url:
        yield url


@pytest.fixture
async def client(main_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=main_url, timeout=10) as http:
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
    sent = await client.post("/notify", data={"to": "alice", "to_other": "", "text": "Exam at 10"})
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
    sent = await client.post(
        "/notify", data={"to": "alice", "to_other": " github:1001 ", "text": "Hi"}
    )
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
    refused = await client.post("/notify", data=form)
    assert refused.status_code == 400 and 'id="error"' in refused.text
    assert await notifications_of(client, "alice") == []


async def test_what_was_sent_is_escaped(client: httpx.AsyncClient) -> None:
    await client.post(
        "/notify", data={"to": "alice", "to_other": "<b>x</b>", "text": "<script>alert(1)</script>"}
    )
    page = await client.get("/notify")
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "<b>x</b>" not in page.text


async def test_an_unknown_sent_id_shows_no_confirmation(client: httpx.AsyncClient) -> None:
    page = await client.get("/notify", params={"sent": "<nope>"})
    assert page.status_code == 200 and 'id="sent"' not in page.text
