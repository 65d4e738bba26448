"""The reference modules keep the contract (docs/contract.md), over real HTTP (uvicorn on loopback).

Each request is sent as tggate's adapters send it (the contract models, serialized); each answer
must have a status docs/openapi/{auth,main}.yaml documents for that operation and fit the schema
documented for it. Then tggate's adapters themselves run against the modules. A reference module
that drifts from the contract, or a document that drifts from the modules, fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from tests.support.module_http import ModuleHttp
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.adapters.auth_http import HttpAuthModule
from tggate.adapters.main_http import HttpMainModule
from tggate.contract.auth import (
    CHECK_LOGIN,
    LOGOUT,
    REFRESH,
    START_LOGIN,
    LoginCheckRequest,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
)
from tggate.contract.main import DELETE_NOTIFICATIONS, NOTIFICATIONS, NotificationIds
from tggate.contract.operations import Operation
from tggate.core.commands import load_command_table
from tggate.core.ports import (
    ActionDone,
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    Refreshed,
    RefreshRejected,
)
from tggate_sandbox.reference.auth import create_app as create_auth_app
from tggate_sandbox.reference.main import create_app as create_main_app

ROOT = Path(__file__).resolve().parents[3]
JWT_SECRET = "contract-test-jwt-secret-0123456789abcdef0123456789"
JSON = {"Content-Type": "application/json"}


class Contract:
    """One document of docs/openapi/: is an answer documented, and does it fit its schema?"""

    def __init__(self, name: str) -> None:
        self.name = name
        self.document: dict[str, Any] = yaml.safe_load(
            (ROOT / "docs" / "openapi" / name).read_text("utf-8")
        )
        self._uri = f"urn:tggate:{name}"
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(self._uri, resource)

    def check(self, method: str, path: str, answer: httpx.Response) -> None:
        """`path` is the documented one (with its {placeholders})."""
        operation = self.document["paths"][path][method.lower()]
        status = str(answer.status_code)
        assert status in operation["responses"], (
            f"{method} {path} answered {status}, which docs/openapi/{self.name} does not "
            f"document: {answer.text[:200]}"
        )
        pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
        response = operation["responses"][status]
        if "$ref" in response:
            pointer = response["$ref"].removeprefix("#")
            response = self._resolve(pointer)
        if "content" not in response:
            return  # tggate does not read this body
        assert answer.headers["content-type"].startswith("application/json"), answer.headers
        schema = {"$ref": f"{self._uri}#{pointer}/content/application~1json/schema"}
        validator = Draft202012Validator(
            schema, registry=self._registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        problems = [
            f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer.json())
        ]
        assert not problems, (
            f"{method} {path} {status} misfits docs/openapi/{self.name}: {problems}"
        )

    def _resolve(self, pointer: str) -> dict[str, Any]:
        node: Any = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        resolved: dict[str, Any] = node
        return resolved


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


AUTH = Contract("auth.yaml")
MAIN = Contract("main.yaml")


def send(
    client: httpx.Client,
    contract: Contract,
    operation: Operation,
    body: BaseModel | None = None,
    *,
    token: str | None = None,
) -> httpx.Response:
    """Call `operation` as tggate's adapter does, and check the answer against `contract`."""
    headers = dict(JSON) if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    answer = client.request(
        operation.method,
        operation.path,
        content=body.model_dump_json() if body is not None else None,
        headers=headers,
    )
    contract.check(operation.method, operation.path, answer)
    return answer


# ---- the modules, and the person's side (their test APIs) ----


@pytest.fixture(scope="module")
def auth_url() -> Iterator[str]:
    app = create_auth_app(
        jwt_secret=JWT_SECRET,
        public_url="http://auth.example",
        grace_s=10.0,
        test_api_secret=TEST_API_SECRET,
    )
    with run_asgi(app) as url:
        yield url


@pytest.fixture(scope="module")
def main_url() -> Iterator[str]:
    with run_asgi(create_main_app(jwt_secret=JWT_SECRET, admin_secret=ADMIN_SECRET)) as url:
        yield url


@pytest.fixture
def auth(auth_url: str) -> Iterator[httpx.Client]:
    """Bot Logic's calls and the test API's (it carries the test API secret; issue 9)."""
    with httpx.Client(base_url=auth_url, headers=TEST_API, timeout=10) as client:
        yield client


@pytest.fixture
def main(main_url: str) -> Iterator[httpx.Client]:
    """Bot Logic's calls and the admin API's (notifications take the admin secret; issue 9)."""
    with httpx.Client(base_url=main_url, headers=ADMIN, timeout=10) as client:
        yield client


def person_decides(
    auth: httpx.Client, chat_id: int, decision: str, identity: str = "alice"
) -> None:
    """What the person does in the browser, through the reference module's test API."""
    body = {"chat_id": chat_id, "decision": decision, "identity": identity}
    answer = auth.post("/test/logins/resolve", json=body)
    assert answer.status_code == 200, answer.text


def expire_logins(auth: httpx.Client, chat_id: int) -> None:
    answer = auth.post("/test/logins/expire", json={"chat_id": chat_id})
    assert answer.status_code == 200, answer.text


def token_pair(auth: httpx.Client, identity: str) -> dict[str, str]:
    answer = auth.post("/test/tokens", json={"identity": identity})
    assert answer.status_code == 200, answer.text
    pair: dict[str, str] = answer.json()
    return pair


def notify(main: httpx.Client, identity: str, text: str) -> None:
    answer = main.post("/notifications", json={"to": identity, "text": text})
    assert answer.status_code == 201, answer.text


def start_login(auth: httpx.Client, token: str, chat_id: int, login_type: str) -> dict[str, Any]:
    fields = {"login_token": token, "type": login_type, "chat_id": chat_id, "language": "en"}
    body = LoginRequest.model_validate(fields)
    answer = send(auth, AUTH, START_LOGIN, body)
    assert answer.status_code == 200
    started: dict[str, Any] = answer.json()
    return started


def check(auth: httpx.Client, token: str) -> dict[str, Any]:
    answer = send(auth, AUTH, CHECK_LOGIN, LoginCheckRequest(login_token=token))
    assert answer.status_code == 200
    state: dict[str, Any] = answer.json()
    return state


# ---- the Authorization module (docs/openapi/auth.yaml) ----


def test_a_code_login_is_pending_then_granted_once(auth: httpx.Client) -> None:
    started = start_login(auth, "contract-login-token-code-0001", 9001, "code")
    assert started["code"] and started["code"] in started["text"]

    assert check(auth, "contract-login-token-code-0001") == {"status": "pending"}  # A6
    person_decides(auth, 9001, "granted")
    granted = check(auth, "contract-login-token-code-0001")  # A5
    assert granted["status"] == "granted"
    assert {"access_token", "refresh_token"} <= granted.keys()
    assert check(auth, "contract-login-token-code-0001") == {"status": "unknown"}  # handed out once


@pytest.mark.parametrize("login_type", ["github", "yandex"])
def test_a_provider_login_gives_a_link_and_can_be_denied(
    auth: httpx.Client, login_type: str
) -> None:
    token = f"contract-login-token-{login_type}-0002"
    chat_id = 9002 if login_type == "github" else 9003
    started = start_login(auth, token, chat_id, login_type)
    assert started["url"]

    person_decides(auth, chat_id, "denied")
    assert check(auth, token) == {"status": "denied"}  # A4


def test_an_expired_login_says_so(auth: httpx.Client) -> None:
    start_login(auth, "contract-login-token-expiring-03", 9004, "code")
    expire_logins(auth, 9004)

    assert check(auth, "contract-login-token-expiring-03")["status"] in ("expired", "unknown")  # A3


def test_refresh_rotates_with_a_grace_window_and_logout_revokes(auth: httpx.Client) -> None:
    first = token_pair(auth, "alice")

    rotated = send(auth, AUTH, REFRESH, RefreshRequest(refresh_token=first["refresh_token"]))
    assert rotated.status_code == 200  # Z9
    again = send(auth, AUTH, REFRESH, RefreshRequest(refresh_token=first["refresh_token"]))
    assert again.status_code == 200 and again.json() == rotated.json()  # within the grace window

    newest = rotated.json()["refresh_token"]
    ended = send(auth, AUTH, LOGOUT, LogoutRequest(refresh_token=newest))
    assert ended.status_code == 200  # Z3
    refused = send(auth, AUTH, REFRESH, RefreshRequest(refresh_token=newest))
    assert refused.status_code == 401  # Z8


def test_an_unknown_refresh_token_is_refused(auth: httpx.Client) -> None:
    answer = send(auth, AUTH, REFRESH, RefreshRequest(refresh_token="not.a.token"))

    assert answer.status_code == 401


# ---- the Main module (docs/openapi/main.yaml) ----


def test_notifications_are_listed_and_deleted_by_exact_ids(
    auth: httpx.Client, main: httpx.Client
) -> None:
    token = token_pair(auth, "dima")["access_token"]
    assert send(main, MAIN, NOTIFICATIONS, token=token).json() == []
    for text in ("first", "second", "third"):
        notify(main, "dima", text)

    listed = send(main, MAIN, NOTIFICATIONS, token=token).json()
    assert [n["text"] for n in listed] == ["first", "second", "third"]
    taken = NotificationIds(ids=[listed[0]["id"], listed[2]["id"]])
    assert send(main, MAIN, DELETE_NOTIFICATIONS, taken, token=token).status_code == 204

    assert [n["text"] for n in send(main, MAIN, NOTIFICATIONS, token=token).json()] == ["second"]


def test_notifications_without_a_valid_token_are_refused(main: httpx.Client) -> None:
    assert send(main, MAIN, NOTIFICATIONS).status_code == 401
    assert send(main, MAIN, NOTIFICATIONS, token="a.b.c").status_code == 401
    assert send(main, MAIN, DELETE_NOTIFICATIONS, NotificationIds(ids=["x"])).status_code == 401


@pytest.mark.parametrize("identity", ["alice", "bob"])  # a student, a teacher
@pytest.mark.parametrize("course_id", ["py101", "nosuch1"])
def test_every_bundled_action_answers_what_its_reply_reads(
    auth: httpx.Client, main: httpx.Client, identity: str, course_id: str
) -> None:
    token = token_pair(auth, identity)["access_token"]
    statuses = {}
    for spec in load_command_table().actions.values():
        path = spec.path.format_map({arg.name: course_id for arg in spec.args})
        answer = main.get(path, headers={"Authorization": f"Bearer {token}"})
        MAIN.check(spec.method, spec.path, answer)
        statuses[spec.command] = answer.status_code
        if answer.status_code == 200:
            _has_every_field_the_reply_reads(spec.path, answer.json())
        without_token = main.get(path)
        MAIN.check(spec.method, spec.path, without_token)
        assert without_token.status_code == 401
    assert 200 in statuses.values(), statuses


def _has_every_field_the_reply_reads(path: str, body: Any) -> None:
    """Stricter than the document, which lets a field be absent (shown as "—"): the reference
    module serves every field the bundled table reads."""
    schema = MAIN.document["paths"][path]["get"]["responses"]["200"]["content"]
    schema = schema["application/json"]["schema"]
    items = body if schema.get("type") == "array" else [body]
    fields = (
        schema["items"]["properties"] if schema.get("type") == "array" else schema["properties"]
    )
    for item in items:
        missing = set(fields) - set(item)
        assert not missing, f"{path}: the reply reads {sorted(missing)}, which the module omits"


# ---- tggate's adapters against the reference modules ----


@pytest.fixture
async def http_session() -> AsyncIterator[ModuleHttp]:
    found = ModuleHttp()
    yield found
    await found.aclose()


def _adapters(
    session: ModuleHttp, auth_url: str, main_url: str
) -> tuple[HttpAuthModule, HttpMainModule]:
    return (
        HttpAuthModule(session.json_http(auth_url, "auth")),
        HttpMainModule(session.json_http(main_url, "main")),
    )


async def test_the_auth_adapter_reads_every_answer_of_the_reference_module(
    http_session: ModuleHttp, auth_url: str, main_url: str, auth: httpx.Client
) -> None:
    module, _ = _adapters(http_session, auth_url, main_url)

    started = await module.start_login(
        login_token="contract-adapter-token-0005", login_type="code", chat_id=9005, language="en"
    )
    assert isinstance(started, LoginStarted) and started.prompt.code
    assert 0 < started.expires_in <= 600
    assert isinstance(
        await module.check_login(login_token="contract-adapter-token-0005"), LoginPending
    )
    person_decides(auth, 9005, "granted")
    granted = await module.check_login(login_token="contract-adapter-token-0005")
    assert isinstance(granted, LoginGranted)
    gone = await module.check_login(login_token="contract-adapter-token-0005")
    assert gone == LoginGone(reason="unknown")

    await module.start_login(
        login_token="contract-adapter-token-0006", login_type="github", chat_id=9006
    )
    person_decides(auth, 9006, "denied")
    assert isinstance(
        await module.check_login(login_token="contract-adapter-token-0006"), LoginDenied
    )

    refreshed = await module.refresh(refresh_token=granted.refresh_token)
    assert isinstance(refreshed, Refreshed)
    assert await module.logout_everywhere(refresh_token=refreshed.refresh_token) is None
    assert isinstance(await module.refresh(refresh_token=refreshed.refresh_token), RefreshRejected)


async def test_the_main_adapter_reads_every_answer_of_the_reference_module(
    http_session: ModuleHttp,
    auth_url: str,
    main_url: str,
    auth: httpx.Client,
    main: httpx.Client,
) -> None:
    _, module = _adapters(http_session, auth_url, main_url)
    token = token_pair(auth, "bob")["access_token"]
    notify(main, "bob", "the adapter's notification")

    found = await module.notifications(access_token=token)
    assert isinstance(found, list) and [n.text for n in found] == ["the adapter's notification"]
    assert found[0].created_at
    assert await module.delete_notifications(access_token=token, ids=[found[0].id]) is None
    assert await module.notifications(access_token=token) == []
    refused = await module.notifications(access_token="a.b.c")
    assert isinstance(refused, ActionDone) and refused.status == 401  # Z7 follows

    me = await module.call(method="GET", path="/api/me", access_token=token)
    assert isinstance(me, ActionDone) and me.status == 200
    assert me.data["id"] == "bob" and me.data["role"] == "teacher"
    forbidden = await module.call(method="GET", path="/api/grades", access_token=token)
    assert isinstance(forbidden, ActionDone) and forbidden.status == 403  # Z6
