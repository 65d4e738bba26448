"""A whole session through an Authorization module of another shape (issue 12): login, an
action, a refresh, a notification and logout everywhere, through the fake Telegram, the
Telegram Client, nginx and Bot Logic — which reach the module through TGGATE_AUTH_API_FILE alone
(the second worked example of docs/integrate.md)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from tests.e2e.conftest import start_topology
from tests.e2e.driver import Telegram, create_notification
from tests.support.second_auth import API_DOCS_ANCHOR, create_second_auth, example_toml
from tests.support.servers import run_asgi

from tggate_sandbox.topology import Topology

JWT_SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def second() -> Iterator[tuple[str, list[str]]]:
    app = create_second_auth(jwt_secret=JWT_SECRET)
    with run_asgi(app) as url:
        yield url, app.state.calls


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory, second: tuple[str, list[str]]
) -> Iterator[Topology]:
    workdir = tmp_path_factory.mktemp("second-auth")
    api_file = workdir / "auth-api.toml"
    api_file.write_text(example_toml(API_DOCS_ANCHOR), "utf-8")
    topology = start_topology(
        workdir,
        jwt_secret=JWT_SECRET,  # the reference Main module verifies the second module's tokens
        extra_env={"TGGATE_AUTH_URL": second[0], "TGGATE_AUTH_API_FILE": str(api_file)},
    )
    try:
        yield topology
    finally:
        topology.stop()


def test_login_action_refresh_notification_logout_through_a_module_of_another_shape(
    topology: Topology, telegram: Telegram, second: tuple[str, list[str]]
) -> None:
    url, calls = second
    person = telegram.person(52_001, "en")

    # U2: the prompt is the second module's, read from /prompt/message of a 201.
    prompt = person.ask_one("/login code")
    assert prompt.startswith("Your one-time code: ")
    # The person confirms; the access token is issued already expired, so the first action
    # must refresh (Z7-Z9) through /token/refresh.
    resolved = httpx.post(
        url + "/test/logins/resolve",
        json={"chat_id": 52_001, "decision": "granted", "identity": "alice", "access_ttl_s": 0},
        timeout=10,
    )
    assert resolved.status_code == 200, resolved.text
    # L2: the timer reads the grant from a 200 {"state": "approved", "tokens": {…}}.
    assert person.read(1)[0]["text"] == "You are logged in."

    assert person.ask_one("/me") == "👤 alice\nLogin: alice\nRole: student"
    assert calls.count("/token/refresh") == 1

    create_notification(topology, "alice", "Grade posted: py101 t1")
    assert person.read(1, timeout=20)[0]["text"] == "🔔 Grade posted: py101 t1"

    assert person.ask_one("/logout all") == "Session ended on all devices."
    assert calls.count("/token/revoke") == 1
    assert person.ask_one("/me").startswith("You are not logged in.")
    # Every call went to the second module's own paths, none to the contract's.
    assert set(calls) <= {
        "/v2/sessions",
        "/v2/sessions/poll",
        "/token/refresh",
        "/token/revoke",
        "/test/logins/resolve",
    }, calls
