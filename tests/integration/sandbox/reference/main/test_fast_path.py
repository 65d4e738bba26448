"""The fast path answers exactly what the declared routes answer (issue 11: the module made lean
without changing what it says): the same requests, over real HTTP, to the module with its fast
path and to the module served by FastAPI's routes alone, compared answer by answer — status,
headers and body bytes — and in what the instrument records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from tests.integration.sandbox.reference.main.test_api import SECRET, access_token, unsigned_token
from tests.support.clock import FakeClock
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.reference.main import create_app

# Set by the server for every answer, whichever path made it.
_PER_CONNECTION = {"date", "server"}

ALICE = access_token("alice", name="Алиса")
BOB = access_token("bob", name='Борис "the teacher"')
TOKENS = {
    "alice": ALICE,
    "bob": BOB,
    "expired": access_token("alice", ttl_s=-1),
    "other-secret": access_token(secret="another-secret-that-is-long-enough-0123"),
    "alg-none": unsigned_token(),
    "refresh": access_token(typ="refresh"),
    "audience": access_token(aud="somebody-else"),
    "no-iat": access_token(iat=None),
    "garbage": "not-a-jwt",
}
AUTHORIZATIONS: dict[str, dict[str, str]] = {
    "none": {},
    "basic": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    "empty-bearer": {"Authorization": "Bearer"},
    **{name: {"Authorization": f"Bearer {token}"} for name, token in TOKENS.items()},
}
PATHS = [
    "/api/me",
    "/api/courses",
    "/api/courses/py101",
    "/api/courses/ml301",
    "/api/courses/zz999",
    "/api/courses/py101/tasks",
    "/api/courses/zz999/tasks",
    "/api/courses/py101/students",
    "/api/courses/ml301/students",
    "/api/courses/",
    "/api/courses/py101/",
    "/api/courses/py101/tasks/",
    "/api/courses/py101/nothing",
    "/api/courses/py101/tasks/t1",
    "/api/grades",
    "/api/me?x=1",
    "/notification",
    "/notification/",
]


@pytest.fixture
def urls() -> Iterator[tuple[str, str]]:
    """The module with its fast path and without, on one clock."""
    clock = FakeClock()
    with ExitStack() as stack:
        fast, slow = (
            stack.enter_context(
                run_asgi(
                    create_app(
                        jwt_secret=SECRET,
                        admin_secret=ADMIN_SECRET,
                        test_api_secret=TEST_API_SECRET,
                        clock=clock,
                        fast_path=fast_path,
                    )
                )
            )
            for fast_path in (True, False)
        )
        yield fast, slow


@pytest.fixture
def clients(urls: tuple[str, str]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with ExitStack() as stack:
        fast, slow = (
            stack.enter_context(
                httpx.Client(base_url=url, headers={**ADMIN, **TEST_API}, timeout=10)
            )
            for url in urls
        )
        yield fast, slow


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    origin = str(response.request.url.copy_with(path="/", query=None)).rstrip("/")
    headers = sorted(
        (k, v.replace(origin, "<origin>"))  # a redirect names the server it came from
        for k, v in response.headers.multi_items()
        if k not in _PER_CONNECTION
    )
    return response.status_code, headers, response.content


def _both(
    clients: tuple[httpx.Client, httpx.Client], method: str, path: str, **request: Any
) -> httpx.Response:
    """The same request to both; the fast path's answer, once it is the routes' own."""
    fast, slow = (client.request(method, path, **request) for client in clients)
    assert _answer(fast) == _answer(slow), f"{method} {path} {request}"
    return fast


def _notify(urls: tuple[str, str], to: str, text: str) -> None:
    for url in urls:
        created = httpx.post(f"{url}/notifications", json={"to": to, "text": text}, headers=ADMIN)
        assert created.status_code == 201


def test_every_action_and_refusal_is_answered_alike(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    for headers in AUTHORIZATIONS.values():
        for path in PATHS:
            _both(clients, "GET", path, headers=headers)
    for path in PATHS:  # methods the routes do not have
        for method in ("HEAD", "POST", "PUT"):
            _both(clients, method, path, headers=AUTHORIZATIONS["alice"])

    stats = [client.get("/test/stats").json() for client in clients]
    answers = [client.get("/test/answers").json() for client in clients]
    assert stats[0] == stats[1]
    assert answers[0] == answers[1]
    # Two paths of /api/me: alice and bob answered, the other ten refused.
    assert answers[0]["GET /api/me"] == {"200": 4, "401": 20}


def test_notifications_are_read_and_deleted_alike(
    urls: tuple[str, str], clients: tuple[httpx.Client, httpx.Client]
) -> None:
    alice = {"Authorization": f"Bearer {ALICE}"}
    _notify(urls, "alice", 'Новая оценка: "5"\n\t\\ \u2028 🎉')
    _notify(urls, "alice", "second")

    # The ids are each module's own (random): same shape, same texts.
    read = [httpx.get(f"{url}/notification", headers=alice) for url in urls]
    assert [r.status_code for r in read] == [200, 200]
    assert [[{**n, "id": "…"} for n in r.json()] for r in read] == [
        [{**n, "id": "…"} for n in read[1].json()]
    ] * 2
    assert read[0].headers["content-length"] == read[1].headers["content-length"]
    first_ids = [r.json()[0]["id"] for r in read]

    for body in (
        None,
        b"",
        b"{oops",
        b"[]",
        b'{"ids": "abc"}',
        b'{"ids": [1, 2]}',
        b'{"ids": [""]}',
        b'{"ids": ["x"], "extra": 1}',
        b'{"ids": NaN}',
    ):
        for content_type in ("application/json", "text/plain", None):
            headers = {**alice} if content_type is None else {**alice, "content-type": content_type}
            _both(clients, "DELETE", "/notification", content=body, headers=headers)
    for who in ("none", "expired", "garbage"):
        _both(clients, "DELETE", "/notification", json={"ids": []}, headers=AUTHORIZATIONS[who])

    # Each deletes its own first notification: the same answer, the same one left.
    deleted = []
    for url, note_id in zip(urls, first_ids, strict=True):
        with httpx.Client(base_url=url) as client:
            deleted.append(
                client.request("DELETE", "/notification", json={"ids": [note_id]}, headers=alice)
            )
    assert _answer(deleted[0]) == _answer(deleted[1])
    assert deleted[0].status_code == 204
    left = [httpx.get(f"{url}/notification", headers=alice).json() for url in urls]
    assert [[n["text"] for n in notes] for notes in left] == [["second"], ["second"]]

    answers = [client.get("/test/answers").json() for client in clients]
    assert answers[0] == answers[1]
