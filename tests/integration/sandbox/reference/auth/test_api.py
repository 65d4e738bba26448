"""The reference Authorization module over real HTTP (uvicorn on loopback): the calls of
docs/openapi/auth.yaml and the test API."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from tests.support.clock import FakeClock
from tests.support.sandbox import TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi
from tests.support.waiting import eventually

from tggate_sandbox.reference.auth import create_app

SECRET = "reference-auth-test-secret-0123456789abcdef"
PUBLIC_URL = "http://auth.example"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_url(clock: FakeClock) -> Iterator[str]:
    app = create_app(
        jwt_secret=SECRET,
        public_url=PUBLIC_URL,
        grace_s=10.0,
        clock=clock,
        test_api_secret=TEST_API_SECRET,
    )
    with run_asgi(app) as url:
        yield url


@pytest.fixture
def client(auth_url: str) -> Iterator[httpx.Client]:
    # Bot Logic's calls and the test API's from one client: the test API secret on every call.
    with httpx.Client(base_url=auth_url, headers=TEST_API, timeout=10) as http:
        yield http


def start_login(
    client: httpx.Client, token: str, *, chat_id: int = 42, type: str = "code"
) -> dict[str, Any]:
    answer = client.post("/login", json={"login_token": token, "type": type, "chat_id": chat_id})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def check(client: httpx.Client, token: str) -> dict[str, Any]:
    answer = client.post("/login/check", json={"login_token": token})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def resolve(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/test/logins/resolve", json=body)


def mint(client: httpx.Client, identity: str = "alice", **extra: Any) -> dict[str, str]:
    answer = client.post("/test/tokens", json={"identity": identity, **extra})
    assert answer.status_code == 200, answer.text
    pair: dict[str, str] = answer.json()
    return pair


def refresh(client: httpx.Client, refresh_token: str) -> httpx.Response:
    return client.post("/refresh", json={"refresh_token": refresh_token})


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    return decoded


# ---- POST /login ----


def test_code_login_shows_a_short_code_and_where_to_enter_it(client: httpx.Client) -> None:
    body = start_login(client, "login-token-code-1", type="code")

    assert re.fullmatch(r"\d{3}-\d{3}", body["code"])
    assert body["url"] is None
    assert f"{PUBLIC_URL}/code" in body["text"] and body["code"] in body["text"]
    assert body["expires_in"] == 600
    assert "login-token-code-1" not in str(body)


@pytest.mark.parametrize("provider", ["github", "yandex"])
def test_oauth_login_shows_a_link_with_a_fresh_reference_not_the_token(
    client: httpx.Client, provider: str
) -> None:
    first = start_login(client, "login-token-oauth-1", type=provider)
    second = start_login(client, "login-token-oauth-2", type=provider)

    prefix = f"{PUBLIC_URL}/oauth/{provider}/start?ref="
    assert first["url"].startswith(prefix) and second["url"].startswith(prefix)
    assert first["url"] != second["url"]
    assert first["code"] is None
    assert "login-token-oauth-1" not in str(first)


def test_login_text_speaks_english_when_asked(client: httpx.Client) -> None:
    answer = client.post(
        "/login",
        json={"login_token": "tok-en", "type": "code", "chat_id": 1, "language": "en"},
    )

    assert answer.json()["text"].startswith("Open ")


def test_codes_are_unique_among_pending_logins(client: httpx.Client) -> None:
    codes = [start_login(client, f"token-{i}", chat_id=i)["code"] for i in range(60)]

    assert len(set(codes)) == len(codes)


def test_repeating_a_login_request_returns_the_same_login(client: httpx.Client) -> None:
    first = start_login(client, "retried-token")
    again = start_login(client, "retried-token")

    assert again["code"] == first["code"]


def test_a_login_token_cannot_be_taken_over_by_another_chat(client: httpx.Client) -> None:
    start_login(client, "taken-token", chat_id=1)

    answer = client.post(
        "/login", json={"login_token": "taken-token", "type": "code", "chat_id": 2}
    )

    assert answer.status_code == 409
    assert answer.json()["detail"]


def test_a_new_login_leaves_the_chats_earlier_login_alone(client: httpx.Client) -> None:
    start_login(client, "older", chat_id=7)
    start_login(client, "newer", chat_id=7, type="github")

    assert check(client, "older") == {"status": "pending"}
    assert check(client, "newer") == {"status": "pending"}


# ---- POST /login/check ----


def test_a_grant_is_handed_out_once(client: httpx.Client, clock: FakeClock) -> None:
    start_login(client, "grant-once")
    assert check(client, "grant-once") == {"status": "pending"}

    assert resolve(client, chat_id=42, decision="granted", identity="alice").status_code == 200
    granted = check(client, "grant-once")

    assert granted["status"] == "granted"
    access, refresh_token = claims(granted["access_token"]), claims(granted["refresh_token"])
    assert access["sub"] == refresh_token["sub"] == "alice"
    assert check(client, "grant-once") == {"status": "unknown"}


def test_tokens_carry_the_agreed_claims(client: httpx.Client, clock: FakeClock) -> None:
    start_login(client, "claims")
    resolve(client, chat_id=42, decision="granted", identity="alice", name="Алиса")
    granted = check(client, "claims")

    for token, typ, ttl in (
        (granted["access_token"], "access", 300),
        (granted["refresh_token"], "refresh", 30 * 24 * 3600),
    ):
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        payload = claims(token)
        assert payload["iss"] == "tggate-reference-auth"
        assert payload["typ"] == typ
        assert payload["name"] == "Алиса"
        assert payload["iat"] == int(START)
        assert payload["exp"] == int(START) + ttl
        assert re.fullmatch(r"[0-9a-f]{32}", payload["jti"])


def test_a_denial_is_reported_then_forgotten(client: httpx.Client) -> None:
    start_login(client, "denied")
    resolve(client, chat_id=42, decision="denied")

    assert check(client, "denied") == {"status": "denied"}
    assert check(client, "denied") == {"status": "unknown"}


def test_an_unknown_login_token(client: httpx.Client) -> None:
    assert check(client, "never-started") == {"status": "unknown"}


def test_a_login_nobody_finished_expires(client: httpx.Client, clock: FakeClock) -> None:
    start_login(client, "slowpoke")
    clock.advance(601)

    assert check(client, "slowpoke") == {"status": "expired"}
    assert resolve(client, chat_id=42, decision="granted", identity="alice").status_code == 404


def test_an_expired_login_is_forgotten_eventually(client: httpx.Client, clock: FakeClock) -> None:
    start_login(client, "long-gone")
    clock.advance(2 * 600 + 1)

    assert check(client, "long-gone") == {"status": "unknown"}


# ---- the test API that plays the person ----


def test_resolving_a_chat_picks_its_most_recent_login(client: httpx.Client) -> None:
    start_login(client, "first", chat_id=5)
    start_login(client, "second", chat_id=5)

    answer = resolve(client, chat_id=5, decision="granted", identity="alice")

    assert answer.status_code == 200
    assert check(client, "second")["status"] == "granted"
    assert check(client, "first") == {"status": "pending"}


def test_resolving_by_code(client: httpx.Client) -> None:
    code = start_login(client, "by-code")["code"]

    answer = resolve(client, code=code, decision="granted", identity="bob", name="Bob")

    assert answer.json() == {"chat_id": 42, "type": "code", "code": code, "decision": "granted"}
    assert claims(check(client, "by-code")["access_token"])["name"] == "Bob"


def test_resolving_without_a_pending_login_is_404(client: httpx.Client) -> None:
    answer = resolve(client, chat_id=999, decision="granted", identity="alice")

    assert answer.status_code == 404
    assert "999" in answer.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "granted", "identity": "alice"},  # no selector
        {"chat_id": 42, "code": "123-456", "decision": "granted", "identity": "alice"},
        {"chat_id": 42, "decision": "granted"},  # no identity
        {"chat_id": 42, "decision": "maybe", "identity": "alice"},
    ],
)
def test_resolve_rejects_inconsistent_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    start_login(client, "inconsistent")

    assert resolve(client, **body).status_code == 422


def test_pending_lists_logins_without_their_tokens(client: httpx.Client) -> None:
    code = start_login(client, "secret-login-token-a", chat_id=1)["code"]
    start_login(client, "secret-login-token-b", chat_id=2, type="github")

    answer = client.get("/test/pending")

    assert answer.json() == [
        {"chat_id": 1, "type": "code", "code": code, "expires_in": 600, "telegram_user": None},
        {"chat_id": 2, "type": "github", "code": None, "expires_in": 600, "telegram_user": None},
    ]
    assert "secret-login-token" not in answer.text


def test_a_resolved_login_is_no_longer_pending(client: httpx.Client) -> None:
    start_login(client, "resolved")
    resolve(client, chat_id=42, decision="denied")

    assert client.get("/test/pending").json() == []


# ---- POST /refresh ----


def test_refresh_rotates_the_pair(client: httpx.Client, clock: FakeClock) -> None:
    pair = mint(client)
    clock.advance(60)

    answer = refresh(client, pair["refresh_token"])

    assert answer.status_code == 200
    fresh = answer.json()
    assert set(fresh) == {"access_token", "refresh_token"}
    assert fresh["refresh_token"] != pair["refresh_token"]
    assert claims(fresh["access_token"])["sub"] == "alice"
    assert claims(fresh["access_token"])["iat"] == int(START + 60)
    clock.advance(11)  # past the grace window
    assert refresh(client, fresh["refresh_token"]).status_code == 200


def test_the_old_refresh_token_returns_the_same_pair_within_grace(
    client: httpx.Client, clock: FakeClock
) -> None:
    pair = mint(client)

    first = refresh(client, pair["refresh_token"]).json()
    clock.advance(9)
    second = refresh(client, pair["refresh_token"]).json()

    assert second == first


async def test_concurrent_refreshes_all_get_the_identical_pair(auth_url: str) -> None:
    async with httpx.AsyncClient(base_url=auth_url, headers=TEST_API, timeout=10) as client:
        pair = (await client.post("/test/tokens", json={"identity": "alice"})).json()
        # All eight held at the module's door, then let in at once: they overlap for sure.
        await client.post("/test/delay", json={"seconds": 600})

        body = {"refresh_token": pair["refresh_token"]}
        calls = asyncio.gather(*(client.post("/refresh", json=body) for _ in range(8)))

        async def all_arrived() -> bool:
            return bool((await client.get("/test/stats")).json()["refresh"] == 8)

        await eventually(all_arrived, what="eight /refresh calls")
        await client.post("/test/delay", json={"seconds": 0})
        answers = await calls

    assert {a.status_code for a in answers} == {200}
    assert len({(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}) == 1


def test_reuse_after_the_grace_window_revokes_the_family(
    client: httpx.Client, clock: FakeClock
) -> None:
    pair = mint(client)
    successor = refresh(client, pair["refresh_token"]).json()
    clock.advance(11)

    reused = refresh(client, pair["refresh_token"])

    assert reused.status_code == 401
    assert refresh(client, successor["refresh_token"]).status_code == 401


def test_an_expired_refresh_token_is_refused_and_forgotten(
    client: httpx.Client, clock: FakeClock
) -> None:
    pair = mint(client, refresh_ttl_s=60)
    clock.advance(60)

    answer = refresh(client, pair["refresh_token"])

    assert answer.status_code == 401
    assert answer.json() == {"detail": "refresh token expired"}


def test_a_grant_can_carry_short_lifetimes(client: httpx.Client, clock: FakeClock) -> None:
    start_login(client, "short")
    resolve(
        client,
        chat_id=42,
        decision="granted",
        identity="alice",
        access_ttl_s=-10,
        refresh_ttl_s=30,
    )
    granted = check(client, "short")

    assert claims(granted["access_token"])["exp"] == int(START) - 10
    fresh = refresh(client, granted["refresh_token"]).json()  # the successor gets the defaults
    assert claims(fresh["access_token"])["exp"] == int(START) + 300
    clock.advance(31)
    assert refresh(client, fresh["refresh_token"]).status_code == 200


def other_secret_token(typ: str = "refresh") -> str:
    now = int(START)
    payload = {
        "iss": "tggate-reference-auth",
        "sub": "alice",
        "typ": typ,
        "iat": now,
        "exp": now + 3600,
        "jti": "0" * 32,
    }
    return jwt.encode(payload, "another-secret-that-is-long-enough-0123", algorithm="HS256")


@pytest.mark.parametrize(
    "token", ["not-a-jwt", "a.b.c", other_secret_token()], ids=["garbage", "dots", "other-secret"]
)
def test_a_refresh_token_we_did_not_issue_is_refused(client: httpx.Client, token: str) -> None:
    answer = refresh(client, token)

    assert answer.status_code == 401
    assert answer.json()["detail"]


def test_an_access_token_is_not_a_refresh_token(client: httpx.Client) -> None:
    pair = mint(client)

    assert refresh(client, pair["access_token"]).status_code == 401


# ---- POST /logout ----


def test_logout_revokes_every_refresh_token_of_the_person(
    client: httpx.Client, clock: FakeClock
) -> None:
    phone = mint(client, "alice")
    laptop = mint(client, "alice")
    rotated = refresh(client, laptop["refresh_token"]).json()  # the old one is in its grace
    bob = mint(client, "bob")

    answer = client.post("/logout", json={"refresh_token": phone["refresh_token"]})

    assert answer.status_code == 200
    assert answer.json() == {"revoked": 3}
    for token in (phone["refresh_token"], laptop["refresh_token"], rotated["refresh_token"]):
        assert refresh(client, token).status_code == 401
    assert refresh(client, bob["refresh_token"]).status_code == 200


@pytest.mark.parametrize("token", ["not-a-jwt", other_secret_token()], ids=["garbage", "foreign"])
def test_logout_with_a_token_that_does_not_work_revokes_nothing(
    client: httpx.Client, token: str
) -> None:
    mint(client, "alice")

    answer = client.post("/logout", json={"refresh_token": token})

    assert answer.status_code == 200
    assert answer.json() == {"revoked": 0}


def test_logout_is_idempotent(client: httpx.Client) -> None:
    pair = mint(client)

    first = client.post("/logout", json={"refresh_token": pair["refresh_token"]})
    second = client.post("/logout", json={"refresh_token": pair["refresh_token"]})

    assert first.json() == {"revoked": 1}
    assert second.status_code == 200 and second.json() == {"revoked": 0}


# ---- bad input is a 4xx with a detail, never a 5xx ----


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/login", {}),
        ("/login", {"login_token": "t", "type": "vk", "chat_id": 1}),
        ("/login", {"login_token": "t", "type": "code", "chat_id": "forty-two"}),
        ("/login", {"login_token": "", "type": "code", "chat_id": 1}),
        ("/login", {"login_token": "t" * 5000, "type": "code", "chat_id": 1}),
        ("/login", {"login_token": 5, "type": "code", "chat_id": 1}),
        ("/login", {"login_token": "t", "type": "code", "chat_id": 1, "language": "de"}),
        ("/login", [1, 2, 3]),
        ("/login/check", {}),
        ("/login/check", {"login_token": None}),
        ("/refresh", {"refresh_token": ["x"]}),
        ("/logout", {}),
        ("/test/delay", {"seconds": -1}),
        ("/test/tokens", {"identity": ""}),
    ],
)
def test_bad_bodies_get_a_4xx_with_a_detail(client: httpx.Client, path: str, body: object) -> None:
    answer = client.post(path, json=body)

    assert answer.status_code == 422
    assert answer.json()["detail"]


@pytest.mark.parametrize("path", ["/login", "/login/check", "/refresh", "/logout"])
def test_a_body_that_is_not_json_gets_a_4xx(client: httpx.Client, path: str) -> None:
    answer = client.post(path, content=b"{not json", headers={"content-type": "application/json"})

    assert 400 <= answer.status_code < 500
    assert answer.json()["detail"]


# ---- instruments ----


def test_stats_count_calls_per_endpoint_and_reset(client: httpx.Client) -> None:
    start_login(client, "counted")
    check(client, "counted")
    check(client, "counted")
    refresh(client, "nope")
    client.post("/logout", json={})  # a bad call is still a call

    assert client.get("/test/stats").json() == {
        "login": 1,
        "login/check": 2,
        "refresh": 1,
        "logout": 1,
    }
    client.post("/test/stats/reset")
    assert client.get("/test/stats").json() == {
        "login": 0,
        "login/check": 0,
        "refresh": 0,
        "logout": 0,
    }


def test_delay_slows_the_module_endpoints(client: httpx.Client) -> None:
    assert client.post("/test/delay", json={"seconds": 0.3}).json() == {"seconds": 0.3}

    started = time.monotonic()
    check(client, "slow")

    # It waited its delay: the requirement itself, a lower bound no busy machine breaks.
    assert time.monotonic() - started >= 0.3


async def test_a_delayed_call_waits_until_the_delay_is_set_again_and_the_test_api_does_not(
    auth_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=auth_url, headers=TEST_API, timeout=60) as client:
        await client.post("/test/delay", json={"seconds": 600})
        call = asyncio.create_task(client.post("/login/check", json={"login_token": "held"}))

        async def arrived() -> bool:
            # The test API answers while the module call waits out its delay.
            return bool((await client.get("/test/stats")).json()["login/check"] == 1)

        await eventually(arrived, what="the delayed /login/check")
        assert not call.done()
        await client.post("/test/delay", json={"seconds": 0})
        answer = await call  # let go by the new delay, not after 600 s

    assert answer.status_code == 200 and answer.json() == {"status": "unknown"}


async def test_a_delay_for_one_endpoint_holds_that_endpoint_only(auth_url: str) -> None:
    async with httpx.AsyncClient(base_url=auth_url, headers=TEST_API, timeout=60) as client:
        # The endpoint as /test/stats names it, the same word as the Main module's route.
        await client.post("/test/delay", json={"seconds": 600, "route": "refresh"})
        held = asyncio.create_task(client.post("/refresh", json={"refresh_token": "held"}))

        async def arrived() -> bool:
            return bool((await client.get("/test/stats")).json()["refresh"] == 1)

        await eventually(arrived, what="the held /refresh")
        check = await client.post("/login/check", json={"login_token": "free"})  # not held
        assert check.status_code == 200 and not held.done()
        await client.post("/test/delay", json={"seconds": 0})
        assert (await held).status_code == 401


def test_without_the_test_api_secret_there_is_no_test_api() -> None:
    app = create_app(jwt_secret=SECRET)
    with run_asgi(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/test/stats").status_code == 404
        assert client.post("/test/tokens", json={"identity": "alice"}).status_code == 404
        assert client.post("/login/check", json={"login_token": "x"}).status_code == 200


# ---- the browser side (the pages themselves: test_login_pages.py, test_oauth.py) ----


def test_a_provider_without_an_oauth_app_links_to_a_not_configured_page(
    client: httpx.Client,
) -> None:
    # With the test API on, the link is still given so that the test API can decide the login.
    url = start_login(client, "link", type="github")["url"]
    page = client.get(url.removeprefix(PUBLIC_URL))
    assert page.status_code == 503 and 'data-reason="not-configured"' in page.text
    assert resolve(client, chat_id=42, decision="granted", identity="alice").status_code == 200


@pytest.mark.parametrize("provider", ["github", "yandex"])
def test_without_the_test_api_an_unconfigured_provider_is_refused_in_text(provider: str) -> None:
    app = create_app(jwt_secret=SECRET, public_url=PUBLIC_URL)
    with run_asgi(app) as url, httpx.Client(base_url=url) as client:
        body = start_login(client, "no-provider", type=provider)
        assert body["url"] is None and body["code"] is None
        assert "/login code" in body["text"]
        assert check(client, "no-provider") == {"status": "unknown"}


# ---- configuration and secrets ----


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        create_app(jwt_secret="short")


def test_tokens_never_reach_the_log(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    start_login(client, "login-token-that-must-stay-secret")
    resolve(client, chat_id=42, decision="granted", identity="alice")
    granted = check(client, "login-token-that-must-stay-secret")
    fresh = refresh(client, granted["refresh_token"]).json()
    client.post("/logout", json={"refresh_token": fresh["refresh_token"]})

    assert any(r.name == "tggate_sandbox.reference.auth" for r in caplog.records)
    for secret in (
        "login-token-that-must-stay-secret",
        granted["access_token"],
        granted["refresh_token"],
        fresh["refresh_token"],
    ):
        assert secret not in caplog.text
