"""The Authorization module's API from configuration (adapters/auth_api.py): the bundled default
is the contract, a team's file is laid over it key by key, and a bad one is one line naming the
key (docs/integrate.md#the-authorization-modules-api)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tggate.adapters.auth_api import AuthApiError, default_auth_api, load_auth_api, parse_auth_api
from tggate.adapters.json_pointer import JsonPointer, JsonPointerError
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


def test_the_default_calls_the_contracts_paths_and_builds_its_bodies_byte_for_byte() -> None:
    api = default_auth_api()
    for call, operation in (
        (api.login, START_LOGIN),
        (api.login_check, CHECK_LOGIN),
        (api.refresh, REFRESH),
        (api.logout, LOGOUT),
    ):
        assert (call.method, call.path) == (operation.method, operation.path)
    login = LoginRequest(login_token="tök", type="code", chat_id=-100, language="en")
    assert api.login.body(login.model_dump()) == login.model_dump_json().encode()
    for model, call in (
        (LoginCheckRequest(login_token="t"), api.login_check),
        (RefreshRequest(refresh_token="r"), api.refresh),
        (LogoutRequest(refresh_token="r"), api.logout),
    ):
        assert call.body(model.model_dump()) == model.model_dump_json().encode()
    assert api.login_types == {"github": "github", "yandex": "yandex", "code": "code"}
    assert api.source == "docs/openapi/auth.yaml"


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"status": "pending"}, "pending"),
        (200, {"status": "granted", "access_token": "a"}, "granted"),
        (200, {"status": "maybe"}, None),
        (200, ["pending"], None),
        (201, {"status": "pending"}, None),
        (500, {"status": "pending"}, None),
    ],
)
def test_the_default_login_check_outcomes(status: int, body: object, outcome: str | None) -> None:
    assert default_auth_api().login_check.outcome(status, body) == outcome


def test_the_default_refresh_and_logout_outcomes() -> None:
    api = default_auth_api()
    assert [api.refresh.outcome(s, None) for s in (200, 400, 401, 403, 404, 500)] == [
        "refreshed",
        "refused",
        "refused",
        "refused",
        None,
        None,
    ]
    assert [api.logout.outcome(s, None) for s in (200, 204, 302, 401, 404, 500, 503)] == [
        "done"
    ] * 5 + [None, None]


TEAM = """
[login]
path = "/auth/login"
[login.request]
login_token = "/nonce"
language = false
[login.response]
text = "/prompt/message"

[login_check.outcomes]
pending = { status = [202] }
unknown = { status = [404] }
expired = { status = [404], at = "/reason", value = "expired" }
denied = false

[refresh]
path = "/token/refresh"
[refresh.request]
refresh_token = "/token"
[refresh.constants]
"/grant_type" = "refresh_token"
[refresh.outcomes]
refused = { status = [400], at = "/error", value = "invalid_grant" }
"""


def test_a_teams_file_changes_only_what_it_names() -> None:
    api = parse_auth_api(TEAM, source="team.toml")

    assert (api.login.method, api.login.path) == ("POST", "/auth/login")
    body = json.loads(
        api.login.body({"login_token": "t", "type": "code", "chat_id": 1, "language": "en"})
    )
    assert body == {"nonce": "t", "type": "code", "chat_id": 1}  # language left out
    assert api.login.read({"prompt": {"message": "Hi"}, "url": "u"}) == {"text": "Hi", "url": "u"}
    assert api.login_check.path == "/login/check"  # untouched
    check = api.login_check
    assert check.outcome(202, None) == "pending"
    assert check.outcome(404, {"reason": "expired"}) == "expired"  # a field before a bare status
    assert check.outcome(404, {}) == "unknown"
    assert check.outcome(200, {"status": "denied"}) is None  # left out with false
    assert check.outcome(200, {"status": "granted"}) == "granted"  # the default's, kept
    assert json.loads(api.refresh.body({"refresh_token": "r"})) == {
        "token": "r",
        "grant_type": "refresh_token",
    }
    assert api.refresh.outcome(400, {"error": "invalid_grant"}) == "refused"
    assert api.refresh.outcome(401, {}) is None  # the outcome was replaced whole
    assert api.source == "team.toml"


def test_a_value_is_matched_as_json_true_is_not_one() -> None:
    api = parse_auth_api(
        '[refresh.outcomes]\nrefused = { status = 200, at = "/ok", value = false }',
        source="t",
    )
    assert api.refresh.outcome(200, {"ok": False}) == "refused"  # tried before a bare 200
    assert api.refresh.outcome(200, {"ok": 0}) == "refreshed"
    assert api.refresh.outcome(200, {}) == "refreshed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[signin]\npath = '/x'", "[signin]: not a call of the module"),
        ("[login]\npaht = '/x'", "login.paht: unknown key"),
        ("[login]\nmethod = 'GET'", "login.method: expected one of POST, PUT, PATCH, DELETE"),
        ("[login]\npath = 'login'", "login.path: expected a path starting with '/'"),
        ("[login.request]\nlogin_token = false", "login.request.login_token: required"),
        (
            "[login.request]\nlogin_token = 'nonce'",
            "login.request.login_token: 'nonce' is not a JSON pointer",
        ),
        ("[login.request]\nlogin_token = '/a~2'", "login.request.login_token: '/a~2': '~' must be"),
        ("[login.request]\ntoken = '/t'", "login.request.token: not a value of this call"),
        ("[login.request]\nlogin_token = ''", "login.request: '' names the whole body"),
        ("[login.request]\ntype = '/a'\nchat_id = '/a/b'", "login.request: /a and /a/b overlap"),
        ("[refresh.response]\naccess_token = false", "refresh.response.access_token: required"),
        ("[refresh.outcomes]\nrefused = false", "refresh.outcomes.refused: required"),
        (
            "[refresh.outcomes]\nrefused = { status = 99 }",
            "refresh.outcomes.refused.status: 99 is not",
        ),
        (
            "[refresh.outcomes]\nrefused = { status = '4XX' }",
            "refresh.outcomes.refused.status: '4XX'",
        ),
        (
            "[refresh.outcomes]\nrefused = { status = [] }",
            "refresh.outcomes.refused.status: name at",
        ),
        (
            "[refresh.outcomes]\nrefused = { value = 'no' }",
            "refresh.outcomes.refused.value: say where",
        ),
        (
            "[refresh.outcomes]\nrefused = { stat = 401 }",
            "refresh.outcomes.refused.stat: unknown key",
        ),
        (
            "[refresh.outcomes]\nrevoked = { status = 401 }",
            "refresh.outcomes.revoked: not an outcome",
        ),
        ("[refresh.constants]\n'/when' = 1979-05-27", "refresh.constants.'/when': a date"),
        ("[login.types]\ngithub = ''", "login.types.github: expected the module's word"),
        ("[login.types]\ngitlab = 'gl'", "login.types.gitlab: not a login type"),
        ("[refresh.types]\ngithub = 'gh'", "refresh.types: only [login.types]"),
        ("login = 3", "login: expected a table"),
        ("[login", "team.toml: "),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(AuthApiError) as raised:
        parse_auth_api(text, source="team.toml")
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith("team.toml: ")
    assert message in line, line


def test_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(AuthApiError, match=r"nope\.toml: No such file"):
        load_auth_api(tmp_path / "nope.toml")
    assert load_auth_api(None) is default_auth_api()


@pytest.mark.parametrize(
    ("pointer", "document", "found"),
    [
        ("", {"a": 1}, (True, {"a": 1})),
        ("/a/b", {"a": {"b": None}}, (True, None)),
        ("/a~1b/c~0d", {"a/b": {"c~d": 3}}, (True, 3)),
        ("/list/1", {"list": [5, 6]}, (True, 6)),
        ("/list/01", {"list": [5, 6]}, (False, None)),
        ("/list/2", {"list": [5, 6]}, (False, None)),
        ("/a/b", {"a": "text"}, (False, None)),
        ("/a", None, (False, None)),
    ],
)
def test_json_pointers_read_as_rfc_6901_says(
    pointer: str, document: object, found: tuple[bool, object]
) -> None:
    assert JsonPointer.parse(pointer).find(document) == found


def test_json_pointers_write_objects_on_the_way() -> None:
    body: dict[str, object] = {"a": {"x": 1}}
    JsonPointer.parse("/a/b/c").put(body, 2)
    assert body == {"a": {"x": 1, "b": {"c": 2}}}
    with pytest.raises(JsonPointerError):
        JsonPointer.parse("/a/x/y").put(body, 3)
    with pytest.raises(JsonPointerError):
        JsonPointer.parse("no-slash")
