"""The reference Main module's notification feed (GET /notifications, the bulk mode of
docs/openapi/main.yaml) over real HTTP: the service token, the cursor, pages."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.integration.sandbox.reference.main.test_api import SECRET, access_token, bearer, notify
from tests.support.clock import FakeClock
from tests.support.sandbox import ADMIN, ADMIN_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.reference.main import create_app

SERVICE_TOKEN = "reference-main-service-token-0123456789"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    app = create_app(
        jwt_secret=SECRET,
        admin_secret=ADMIN_SECRET,
        service_token=SERVICE_TOKEN,
        clock=FakeClock(),  # the tokens of test_api are minted at its start
    )
    with run_asgi(app) as url, httpx.Client(base_url=url, headers=ADMIN, timeout=10) as http:
        yield http


def read(client: httpx.Client, **params: str | int) -> dict[str, object]:
    answer = client.get("/notifications", params=params, headers=bearer(SERVICE_TOKEN))
    assert answer.status_code == 200, answer.text
    page: dict[str, object] = answer.json()
    return page


def subjects_and_texts(page: dict[str, object]) -> list[tuple[str, str]]:
    items = page["notifications"]
    assert isinstance(items, list)
    return [(item["subject"], item["text"]) for item in items]


def test_the_feed_lists_everybodys_notifications_in_order_page_by_page(
    client: httpx.Client,
) -> None:
    for to, text in (("alice", "a1"), ("bob", "b1"), ("alice", "a2")):
        notify(client, to, text)
    first = read(client, limit=2)
    assert subjects_and_texts(first) == [("alice", "a1"), ("bob", "b1")]
    second = read(client, limit=2, after=str(first["cursor"]))
    assert subjects_and_texts(second) == [("alice", "a2")]
    empty = read(client, limit=2, after=str(second["cursor"]))
    assert empty == {"notifications": [], "cursor": second["cursor"]}
    # Reading deletes nothing: the person's own endpoint still lists theirs.
    mine = client.get("/notification", headers=bearer(access_token("alice"))).json()
    assert [n["text"] for n in mine] == ["a1", "a2"]


def test_a_notification_deleted_by_its_person_is_not_listed(client: httpx.Client) -> None:
    kept, gone = notify(client, "alice", "kept"), notify(client, "alice", "gone")
    alice = bearer(access_token("alice"))
    deleted = client.request("DELETE", "/notification", json={"ids": [gone]}, headers=alice)
    assert deleted.status_code == 204
    page = read(client, limit=10)
    assert [item["id"] for item in page["notifications"]] == [kept]  # type: ignore[index, union-attr]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-" + SERVICE_TOKEN), bearer(access_token("alice"))],
    ids=["missing", "wrong", "a-persons-token"],
)
def test_the_feed_refuses_anyone_without_the_service_token(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    notify(client, "alice", "secret")
    answer = client.get("/notifications", params={"limit": 10}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "secret" not in answer.text


@pytest.mark.parametrize("params", [{}, {"limit": 0}, {"limit": 1001}, {"limit": 1, "after": "x"}])
def test_bad_parameters_get_a_422(client: httpx.Client, params: dict[str, object]) -> None:
    answer = client.get("/notifications", params=params, headers=bearer(SERVICE_TOKEN))
    assert answer.status_code == 422
    assert answer.json()["detail"]


def test_without_a_service_token_there_is_no_feed() -> None:
    app = create_app(jwt_secret=SECRET, admin_secret=ADMIN_SECRET)
    with run_asgi(app) as url, httpx.Client(base_url=url, headers=ADMIN, timeout=10) as http:
        notify(http, "alice", "not for the feed")
        answer = http.get("/notifications", params={"limit": 10}, headers=bearer(SERVICE_TOKEN))
        # Only POST /notifications (the admin API) is there.
        assert answer.status_code == 405
        assert "not for the feed" not in answer.text


def test_a_short_service_token_is_refused() -> None:
    with pytest.raises(ValueError, match="service token"):
        create_app(jwt_secret=SECRET, service_token="short")
