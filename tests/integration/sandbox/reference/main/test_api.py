"""The reference Main module over real HTTP (uvicorn on loopback): docs/openapi/main.yaml, roles,
the admin API (issue 9: creating notifications takes the admin secret) and the test API."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from tests.support.clock import FakeClock
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi
from tests.support.waiting import eventually

from tggate.core.commands import load_command_table
from tggate_sandbox.reference.auth import create_app as create_auth_app
from tggate_sandbox.reference.main import create_app

SECRET = "reference-main-test-secret-" + "0123456789abcdef" * 4  # 64+ bytes: HS512 too
START = 1_700_000_000.0


def access_token(
    sub: str | None = "alice",
    *,
    name: str | None = None,
    ttl_s: int = 300,
    secret: str = SECRET,
    algorithm: str = "HS256",
    **overrides: Any,
) -> str:
    """A token shaped like the reference Authorization module's (tokens.py), minted here."""
    now = int(START)
    payload: dict[str, Any] = {
        "iss": "tggate-reference-auth",
        "sub": sub,
        "typ": "access",
        "iat": now,
        "exp": now + ttl_s,
        "jti": "f" * 32,
        "name": name or sub,
    }
    payload.update(overrides)
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None}, secret, algorithm=algorithm
    )


def unsigned_token(sub: str = "alice") -> str:
    """alg "none": a token anyone can forge, which a resource server must refuse."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(START)
    claims = {"sub": sub, "typ": "access", "iat": now, "exp": now + 300}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def signed_token(header: dict[str, Any], claims: str) -> str:
    """A token signed with the module's key by HMAC-SHA256 whatever `header` says, over claims
    given as JSON text (so they may hold what json.dumps writes and JSON has not: NaN)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(claims.encode())}"
    signature = hmac.digest(SECRET.encode(), signing_input.encode(), "sha256")
    return f"{signing_input}.{part(signature)}"


def claims_json(**overrides: Any) -> str:
    now = int(START)
    claims = {"sub": "alice", "typ": "access", "iat": now, "exp": now + 300, **overrides}
    return json.dumps(claims)


def respelled(token: str) -> str:
    """The same token with its signature's last character changed in the bits base64 leaves
    over: it decodes to the same bytes, but is not the signature's spelling."""
    head, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    return f"{head}.{signature[:-1]}{alphabet[last ^ 1]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def main_url(clock: FakeClock) -> Iterator[str]:
    app = create_app(
        jwt_secret=SECRET,
        teachers=("bob",),
        admin_secret=ADMIN_SECRET,
        test_api_secret=TEST_API_SECRET,
        clock=clock,
    )
    with run_asgi(app) as url:
        yield url


@pytest.fixture
def client(main_url: str) -> Iterator[httpx.Client]:
    """Everyone's calls from one client: the admin and test API secrets on every call."""
    with httpx.Client(base_url=main_url, headers={**ADMIN, **TEST_API}, timeout=10) as http:
        yield http


@pytest.fixture
def alice(client: httpx.Client) -> dict[str, str]:
    return bearer(access_token("alice", name="Алиса"))


@pytest.fixture
def bob(client: httpx.Client) -> dict[str, str]:
    return bearer(access_token("bob", name="Борис"))


def get(client: httpx.Client, path: str, headers: dict[str, str]) -> Any:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def notify(client: httpx.Client, to: str, text: str) -> str:
    answer = client.post("/notifications", json={"to": to, "text": text})
    assert answer.status_code == 201, answer.text
    note_id: str = answer.json()["id"]
    return note_id


def delete_notifications(client: httpx.Client, headers: dict[str, str], ids: list[str]) -> int:
    return client.request("DELETE", "/notification", json={"ids": ids}, headers=headers).status_code


# ---- actions, per role ----


def test_me_tells_who_and_what_role(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    assert get(client, "/api/me", alice) == {"id": "alice", "name": "Алиса", "role": "student"}
    assert get(client, "/api/me", bob) == {"id": "bob", "name": "Борис", "role": "teacher"}


def test_a_student_has_the_open_courses_a_teacher_all(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    student = get(client, "/api/courses", alice)
    teacher = get(client, "/api/courses", bob)

    assert [c["id"] for c in student] == ["py101", "db201"]
    assert [c["id"] for c in teacher] == ["py101", "db201", "ml301"]
    assert set(student[0]) == {"id", "title", "teacher"}


def test_course_details(client: httpx.Client, alice: dict[str, str]) -> None:
    course = get(client, "/api/courses/py101", alice)

    assert set(course) == {"id", "title", "description", "teacher", "students"}
    assert course["id"] == "py101"
    assert course["students"] >= 1  # alice herself, at least


@pytest.mark.parametrize("course_id", ["ml301", "zz999"])
def test_a_course_that_is_not_the_persons_is_not_found(
    client: httpx.Client, alice: dict[str, str], course_id: str
) -> None:
    for path in (f"/api/courses/{course_id}", f"/api/courses/{course_id}/tasks"):
        answer = client.get(path, headers=alice)
        assert answer.status_code == 404
        assert answer.json() == {"detail": "course not found"}


def test_tasks_of_a_course(client: httpx.Client, alice: dict[str, str]) -> None:
    tasks = get(client, "/api/courses/db201/tasks", alice)

    assert tasks and all(set(t) == {"id", "title", "due"} for t in tasks)


def test_students_are_for_teachers_only(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    refused = client.get("/api/courses/py101/students", headers=alice)
    newcomer = bearer(access_token("zoe", name="Зоя"))
    get(client, "/api/me", newcomer)  # shows up once, so is known from now on

    students = get(client, "/api/courses/py101/students", bob)

    assert refused.status_code == 403
    assert refused.json() == {"detail": "teachers only"}
    assert {"id": "alice", "name": "Алиса"} in students
    assert {"id": "zoe", "name": "Зоя"} in students
    assert all(s["id"] != "bob" for s in students)
    assert get(client, "/api/courses/ml301/students", bob) == []
    assert client.get("/api/courses/zz999/students", headers=bob).status_code == 404


def test_grades_are_for_students_only(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    grades = get(client, "/api/grades", alice)
    refused = client.get("/api/grades", headers=bob)

    assert grades
    assert all({"course", "task", "grade"} <= set(g) for g in grades)
    assert all(3 <= g["grade"] <= 5 for g in grades)
    assert {g["course"] for g in grades} <= {"py101", "db201"}
    assert get(client, "/api/grades", alice) == grades  # stable
    assert refused.status_code == 403


def test_teachers_are_configurable() -> None:
    app = create_app(jwt_secret=SECRET, teachers=("alice",), clock=FakeClock())
    with run_asgi(app) as url, httpx.Client(base_url=url) as client:
        me = client.get("/api/me", headers=bearer(access_token("alice"))).json()
        bob = client.get("/api/me", headers=bearer(access_token("bob"))).json()

    assert me["role"] == "teacher"
    assert bob["role"] == "student"


# ---- 401: the token ----


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "expected an Authorization: Bearer token"),
        ({"Authorization": "Bearer"}, "expected an Authorization: Bearer token"),
        (bearer("not-a-jwt"), "invalid access token"),
        (
            bearer(access_token(secret="another-secret-that-is-long-enough-0123")),
            "invalid access token",
        ),
        (bearer(unsigned_token()), "invalid access token"),
        (bearer(access_token(algorithm="HS512")), "invalid access token"),
        (bearer(access_token(typ="refresh")), "invalid access token"),
        (bearer(access_token(sub=None)), "invalid access token"),
        (bearer(access_token(exp=None)), "invalid access token"),
        (bearer(access_token(iat=None)), "invalid access token"),
        (bearer(access_token(iss="somebody-else")), "invalid access token"),
        (bearer(access_token(ttl_s=-1)), "access token expired"),
        (bearer(access_token(aud="somebody-else")), "invalid access token"),
        (bearer(access_token(jti=5)), "invalid access token"),
        (
            bearer(signed_token({"alg": "HS512", "typ": "JWT"}, claims_json())),
            "invalid access token",
        ),
        (
            bearer(signed_token({"alg": "HS256", "crit": ["b64"]}, claims_json())),
            "invalid access token",
        ),
        (bearer(signed_token({"alg": "HS256", "kid": 5}, claims_json())), "invalid access token"),
        (
            bearer(signed_token({"alg": "HS256"}, claims_json(exp=float("nan")))),
            "invalid access token",
        ),
        (bearer(respelled(access_token())), "invalid access token"),
    ],
    ids=[
        "missing",
        "basic",
        "empty-bearer",
        "garbage",
        "other-secret",
        "alg-none",
        "alg-hs512",
        "refresh-typ",
        "no-sub",
        "no-exp",
        "no-iat",
        "wrong-iss",
        "expired",
        "audience",
        "jti-not-text",
        "alg-mislabelled",
        "critical-extension",
        "kid-not-text",
        "exp-nan",
        "signature-respelled",
    ],
)
def test_no_usable_token_is_401(client: httpx.Client, headers: dict[str, str], detail: str) -> None:
    for method, path in (
        ("GET", "/api/me"),
        ("GET", "/api/courses/py101"),
        ("GET", "/notification"),
    ):
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"detail": detail}
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_the_refused_tokens_above_differ_only_in_what_is_refused(client: httpx.Client) -> None:
    """The hand-made tokens of the 401 cases are good ones but for the one thing refused."""
    good = signed_token({"alg": "HS256", "typ": "JWT"}, claims_json())
    token = access_token()
    same_signature = [
        base64.urlsafe_b64decode(t.rpartition(".")[2] + "=") for t in (token, respelled(token))
    ]

    assert client.get("/api/me", headers=bearer(good)).status_code == 200
    assert respelled(token) != token
    assert same_signature[0] == same_signature[1]


def test_an_access_token_expires_on_the_modules_clock(
    client: httpx.Client, alice: dict[str, str], clock: FakeClock
) -> None:
    assert client.get("/api/me", headers=alice).status_code == 200

    clock.advance(300)

    assert client.get("/api/me", headers=alice).json() == {"detail": "access token expired"}


def test_tokens_of_the_reference_auth_module_are_accepted() -> None:
    auth = create_auth_app(
        jwt_secret=SECRET, public_url="http://auth.example", test_api_secret=TEST_API_SECRET
    )
    main = create_app(jwt_secret=SECRET)
    with (
        run_asgi(auth) as auth_url,
        run_asgi(main) as main_url,
        httpx.Client(base_url=auth_url, headers=TEST_API) as auth_client,
        httpx.Client(base_url=main_url) as main_client,
    ):
        auth_client.post("/login", json={"login_token": "t-1", "type": "code", "chat_id": 42})
        auth_client.post(
            "/test/logins/resolve",
            json={"chat_id": 42, "decision": "granted", "identity": "alice", "name": "Alice"},
        )
        granted = auth_client.post("/login/check", json={"login_token": "t-1"}).json()

        me = main_client.get("/api/me", headers=bearer(granted["access_token"]))
        as_refresh = main_client.get("/api/me", headers=bearer(granted["refresh_token"]))

    assert me.json() == {"id": "alice", "name": "Alice", "role": "student"}
    assert as_refresh.status_code == 401


# ---- notifications (docs/contract.md#the-main-module) ----


def test_notifications_are_read_oldest_first(
    client: httpx.Client, alice: dict[str, str], clock: FakeClock
) -> None:
    first = notify(client, "alice", "Новая оценка")
    clock.advance(5)
    second = notify(client, "alice", "Новое задание")
    notify(client, "bob", "not alice's")

    notes = get(client, "/notification", alice)

    assert [n["id"] for n in notes] == [first, second]
    assert notes[0] == {
        "id": first,
        "text": "Новая оценка",
        "created_at": "2023-11-14T22:13:20+00:00",
    }


def test_delete_removes_exactly_the_given_ids(client: httpx.Client, alice: dict[str, str]) -> None:
    notify(client, "alice", "one")
    notify(client, "alice", "two")
    read = [n["id"] for n in get(client, "/notification", alice)]
    late = notify(client, "alice", "arrived between the read and the delete")

    assert delete_notifications(client, alice, read) == 204

    assert [n["id"] for n in get(client, "/notification", alice)] == [late]


def test_delete_ignores_other_peoples_and_unknown_ids(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    alices = notify(client, "alice", "for alice")

    assert delete_notifications(client, bob, [alices, "no-such-id"]) == 204

    assert [n["id"] for n in get(client, "/notification", alice)] == [alices]


def test_delete_needs_a_token(client: httpx.Client) -> None:
    assert client.request("DELETE", "/notification", json={"ids": []}).status_code == 401


def test_broadcast_reaches_everyone_known(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    newcomer = bearer(access_token("zoe"))
    get(client, "/api/me", newcomer)

    answer = client.post("/notifications/broadcast", json={"text": "Занятия переносятся"})

    assert answer.status_code == 201
    assert len(answer.json()["ids"]) >= 3
    for person in (alice, bob, newcomer):
        assert [n["text"] for n in get(client, "/notification", person)] == ["Занятия переносятся"]


# ---- bad input is a 4xx, never a 5xx ----


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/notifications", {}),
        ("POST", "/notifications", {"to": "", "text": "x"}),
        ("POST", "/notifications", {"to": "alice", "text": ""}),
        ("POST", "/notifications", {"to": "alice", "text": "x" * 10_001}),
        ("POST", "/notifications", {"to": ["alice"], "text": "x"}),
        ("POST", "/notifications", [1]),
        ("POST", "/notifications/broadcast", {}),
        ("DELETE", "/notification", {}),
        ("DELETE", "/notification", {"ids": "abc"}),
        ("DELETE", "/notification", {"ids": [1, 2]}),
        ("DELETE", "/notification", None),
        ("POST", "/test/delay", {"seconds": "soon"}),
    ],
)
def test_bad_bodies_get_a_422_with_a_detail(
    client: httpx.Client, alice: dict[str, str], method: str, path: str, body: object
) -> None:
    answer = client.request(method, path, json=body, headers=alice)

    assert answer.status_code == 422
    assert answer.json()["detail"]


def test_a_body_that_is_not_json_gets_a_4xx(client: httpx.Client, alice: dict[str, str]) -> None:
    headers = {**alice, "content-type": "application/json"}
    for method, path in (("POST", "/notifications"), ("DELETE", "/notification")):
        answer = client.request(method, path, content=b"{oops", headers=headers)
        assert 400 <= answer.status_code < 500


def test_unknown_paths_are_404(client: httpx.Client, alice: dict[str, str]) -> None:
    assert client.get("/api/nothing", headers=alice).status_code == 404


# ---- instruments ----


def test_stats_count_calls_per_route_template(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    client.get("/api/me", headers=alice)
    client.get("/api/me", headers={})  # refused calls count too
    client.get("/api/courses/py101", headers=alice)
    client.get("/api/courses/ml301", headers=alice)
    client.get("/api/courses/py101/students", headers=bob)
    client.get("/notification", headers=alice)
    delete_notifications(client, alice, [])

    assert client.get("/test/stats").json() == {
        "GET /api/me": 2,
        "GET /api/courses/{course_id}": 2,
        "GET /api/courses/{course_id}/students": 1,
        "GET /notification": 1,
        "DELETE /notification": 1,
    }
    client.post("/test/stats/reset")
    assert client.get("/test/stats").json() == {}


def test_delay_slows_every_endpoint(client: httpx.Client, alice: dict[str, str]) -> None:
    client.post("/test/delay", json={"seconds": 0.3})

    started = time.monotonic()
    client.get("/api/me", headers=alice)

    # It waited its delay: the requirement itself, a lower bound no busy machine breaks.
    assert time.monotonic() - started >= 0.3


async def test_a_delayed_call_waits_until_the_delay_is_set_again_and_the_test_api_does_not(
    main_url: str,
) -> None:
    headers = {**ADMIN, **TEST_API}
    alice = bearer(access_token("alice"))
    async with httpx.AsyncClient(base_url=main_url, headers=headers, timeout=60) as client:
        await client.post("/test/delay", json={"seconds": 600})
        call = asyncio.create_task(client.get("/api/me", headers=alice))

        async def arrived() -> bool:
            # The test API answers while the action waits out its delay.
            return bool((await client.get("/test/stats")).json().get("GET /api/me") == 1)

        await eventually(arrived, what="the delayed GET /api/me")
        assert not call.done()
        assert (await client.get("/test/answers")).json() == {}  # not answered yet
        await client.post("/test/delay", json={"seconds": 0})
        answer = await call  # let go by the new delay, not after 600 s
        answers = (await client.get("/test/answers")).json()

    assert answer.status_code == 200
    assert answers == {"GET /api/me": {"200": 1}}


async def test_a_delay_for_one_route_holds_that_route_only(
    main_url: str, alice: dict[str, str]
) -> None:
    async with httpx.AsyncClient(
        base_url=main_url, headers={**ADMIN, **TEST_API}, timeout=60
    ) as client:
        held = {"seconds": 600, "route": "DELETE /notification"}
        await client.post("/test/delay", json=held)
        delete = asyncio.create_task(
            client.request("DELETE", "/notification", json={"ids": []}, headers=alice)
        )

        async def arrived() -> bool:
            return bool((await client.get("/test/stats")).json().get("DELETE /notification"))

        await eventually(arrived, what="the held DELETE /notification")
        read = await client.get("/notification", headers=alice)  # not held
        assert read.status_code == 200 and not delete.done()
        await client.post("/test/delay", json={"seconds": 0})
        assert (await delete).status_code == 204


def test_answers_are_counted_by_route_and_status(
    client: httpx.Client, alice: dict[str, str]
) -> None:
    client.get("/api/me", headers=alice)
    client.get("/api/me")  # no token: 401
    client.get("/api/courses/nope", headers=alice)  # 404
    assert client.get("/test/answers").json() == {
        "GET /api/me": {"200": 1, "401": 1},
        "GET /api/courses/{course_id}": {"404": 1},
    }
    client.post("/test/stats/reset")
    assert client.get("/test/answers").json() == {}


def test_without_the_test_api_secret_there_is_no_test_api() -> None:
    with run_asgi(create_app(jwt_secret=SECRET)) as url:
        assert httpx.get(f"{url}/test/stats", headers=TEST_API).status_code == 404


# ---- the admin API (issue 9: a notification is a message pushed into someone's Telegram) ----


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/notifications", {"to": "alice", "text": "Pay here: http://evil.example"}),
        ("/notifications/broadcast", {"text": "Pay here: http://evil.example"}),
    ],
)
def test_creating_notifications_takes_the_admin_secret(
    main_url: str, alice: dict[str, str], path: str, body: dict[str, str]
) -> None:
    with httpx.Client(base_url=main_url, timeout=10) as stranger:
        missing = stranger.post(path, json=body)
        wrong = stranger.post(path, json=body, headers={"X-Admin-Secret": "x" * 40})
        test_api = stranger.post(path, json=body, headers=TEST_API)  # not the admin's secret
        assert (missing.status_code, wrong.status_code, test_api.status_code) == (401, 403, 401)
        assert "X-Admin-Secret" in missing.json()["detail"]
        assert stranger.get("/notification", headers=alice).json() == []
        assert stranger.post(path, json=body, headers=ADMIN).status_code == 201


def test_without_an_admin_secret_notifications_cannot_be_created() -> None:
    with run_asgi(create_app(jwt_secret=SECRET)) as url:
        for path in ("/notifications", "/notifications/broadcast"):
            body = {"to": "alice", "text": "x"}
            refused = httpx.post(f"{url}{path}", json=body, headers=ADMIN)
            assert refused.status_code == 503
            assert "TGGATE_REFERENCE_ADMIN_SECRET" in refused.json()["detail"]


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        create_app(jwt_secret="short")


# ---- the bundled command table fits this module ----


def test_every_bundled_action_renders_from_a_real_answer(
    client: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    table = load_command_table()
    # Who may run what: students has no answer for a student, grades none for a teacher.
    runner = {"students": bob, "grades": alice}

    assert set(table.actions) == {"me", "courses", "course", "tasks", "students", "grades"}
    for action in table.actions.values():
        path = action.path.format(course_id="py101")
        answer = client.request(action.method, path, headers=runner.get(action.command, alice))
        assert answer.status_code == 200, (action.command, answer.text)
        data = answer.json()
        reply = action.reply
        for language in ("ru", "en"):
            if reply.template is not None:
                assert reply.template.get(language).format(**data)
            else:
                assert reply.items == "." and reply.item is not None
                assert isinstance(data, list) and data
                for element in data:
                    assert reply.item.get(language).format(**element)
