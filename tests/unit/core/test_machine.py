"""The pure state machine, step by step (SPEC §3), with plain values: no I/O at all."""

from __future__ import annotations

from collections.abc import Sequence

from tggate.core.commands import ActionSpec, CommandTable, Localized, ReplySpec
from tggate.core.machine import (
    KEEP,
    CallAction,
    CheckLogin,
    Command,
    LogoutEverywhere,
    Outcome,
    RefreshTokens,
    Request,
    StartLogin,
    decide,
    decide_login_check,
)
from tggate.core.ports import (
    ActionDone,
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    ModuleUnavailable,
    Refreshed,
    RefreshRejected,
)
from tggate.core.session import Anonymous, Authorized, LoginPrompt, Session

PROFILE = ActionSpec(
    command="me",
    description=Localized("Профиль", "Profile"),
    method="GET",
    path="/api/me",
    reply=ReplySpec(template=Localized("Имя: {name}", "Name: {name}")),
)
TABLE = CommandTable(actions={"me": PROFILE})
PROMPT = LoginPrompt(text="Open the link", url="https://auth.example/o/ref")
ANON = Anonymous(login_token="old-token", login_type="github", prompt=PROMPT)
AUTHED = Authorized(access_token="a1", refresh_token="r1")


def run(
    session: Session | None, name: str, args: dict[str, str] | None = None, *answers: object
) -> tuple[list[Request], Outcome]:
    """Drive the machine with scripted answers; return the requests it made and its outcome."""
    command = Command(chat_id=42, name=name, args=args or {}, language="en")
    requests: list[Request] = []
    given: list[object] = []
    script = list(answers)
    while True:
        step = decide(session, command, given, table=TABLE, fresh_login_token="new-token")
        if isinstance(step, Outcome):
            assert not script, f"unused answers: {script}"
            return requests, step
        requests.append(step)
        given.append(script.pop(0))


def texts(outcome: Outcome) -> Sequence[str]:
    return [reply.text for reply in outcome.replies]


def test_U1_login_without_type_offers_the_three_ways() -> None:
    requests, outcome = run(None, "login")
    assert requests == []
    assert outcome.session is KEEP
    assert "not logged in" in texts(outcome)[0]
    commands = [b.command for row in outcome.replies[0].buttons for b in row]
    assert commands == ["/login github", "/login yandex", "/login code"]


def test_U1_any_other_command_offers_login() -> None:
    requests, outcome = run(None, "me")
    assert requests == [] and outcome.session is KEEP
    assert "not logged in" in texts(outcome)[0]


def test_U2_login_with_type_stores_anonymous_and_relays_the_link() -> None:
    started = LoginStarted(prompt=PROMPT, expires_in=600)
    requests, outcome = run(None, "login", {"type": "github"}, started)
    assert requests == [StartLogin(login_token="new-token", login_type="github")]
    assert outcome.session == Anonymous("new-token", "github", PROMPT, language="en")
    assert outcome.ttl_s == 600
    assert outcome.replies[0].buttons[0][0].url == PROMPT.url
    assert "new-token" not in texts(outcome)[0]


def test_U2_auth_module_down_keeps_unknown() -> None:
    _, outcome = run(None, "login", {"type": "code"}, ModuleUnavailable("auth"))
    assert outcome.session is KEEP
    assert "temporarily unavailable" in texts(outcome)[0]


def test_A1_login_with_type_replaces_the_login_token() -> None:
    code = LoginStarted(prompt=LoginPrompt(text="Enter code", code="123-456"), expires_in=300)
    requests, outcome = run(ANON, "login", {"type": "code"}, code)
    assert requests == [StartLogin(login_token="new-token", login_type="code")]
    assert isinstance(outcome.session, Anonymous)
    assert outcome.session.login_token == "new-token"
    assert "123-456" in texts(outcome)[0]


def test_A2_other_command_checks_the_stored_login_token() -> None:
    requests, _ = run(ANON, "me", None, LoginPending())
    assert requests == [CheckLogin(login_token="old-token")]


def test_A3_unknown_or_expired_token_deletes_the_session() -> None:
    _, outcome = run(ANON, "login", None, LoginGone("expired"))
    assert outcome.session is None
    assert "not logged in" in texts(outcome)[0]


def test_A4_denied_deletes_the_session_and_says_login_failed() -> None:
    _, outcome = run(ANON, "me", None, LoginDenied())
    assert outcome.session is None
    assert texts(outcome) == ["Login failed."]


def test_A5_granted_stores_tokens_and_runs_the_command_as_authorized() -> None:
    requests, outcome = run(
        ANON,
        "me",
        None,
        LoginGranted("a1", "r1"),
        ActionDone(200, {"name": "Alice"}),
    )
    assert requests[1] == CallAction(action=PROFILE, args={}, access_token="a1")
    assert outcome.session == Authorized("a1", "r1", language="en")
    assert texts(outcome) == ["You are logged in.", "Name: Alice"]


def test_A6_pending_keeps_state_and_repeats_the_link() -> None:
    _, outcome = run(ANON, "me", None, LoginPending())
    assert outcome.session is KEEP
    assert "not finished" in texts(outcome)[0]
    assert outcome.replies[0].buttons[0][0].url == PROMPT.url


def test_Z1_login_when_authorized_says_already_logged_in() -> None:
    for args in ({}, {"type": "github"}):
        requests, outcome = run(AUTHED, "login", args)
        assert requests == [] and outcome.session is KEEP
        assert texts(outcome) == ["You are already logged in."]


def test_Z2_logout_deletes_the_session() -> None:
    requests, outcome = run(AUTHED, "logout")
    assert requests == [] and outcome.session is None
    assert texts(outcome) == ["Session ended."]


def test_Z3_logout_all_revokes_at_the_auth_module() -> None:
    requests, outcome = run(AUTHED, "logout", {"all": "true"}, None)
    assert requests == [LogoutEverywhere(refresh_token="r1")]
    assert outcome.session is None
    assert texts(outcome) == ["Session ended on all devices."]


def test_Z3_logout_all_with_auth_down_keeps_the_session() -> None:
    _, outcome = run(AUTHED, "logout", {"all": "true"}, ModuleUnavailable("auth"))
    assert outcome.session is KEEP


def test_Z4_Z5_action_is_called_with_the_access_token_and_rendered() -> None:
    requests, outcome = run(AUTHED, "me", None, ActionDone(200, {"name": "Bob"}))
    assert requests == [CallAction(action=PROFILE, args={}, access_token="a1")]
    assert texts(outcome) == ["Name: Bob"] and outcome.session is KEEP


def test_Z6_forbidden_says_not_enough_rights() -> None:
    _, outcome = run(AUTHED, "me", None, ActionDone(403, {"detail": "no"}))
    assert texts(outcome) == ["Not enough rights for this action."]


def test_Z7_Z9_expired_access_token_is_refreshed_and_the_command_retried() -> None:
    requests, outcome = run(
        AUTHED,
        "me",
        None,
        ActionDone(401),
        Refreshed("a2", "r2"),
        ActionDone(200, {"name": "Carol"}),
    )
    assert requests == [
        CallAction(action=PROFILE, args={}, access_token="a1"),
        RefreshTokens(refresh_token="r1"),
        CallAction(action=PROFILE, args={}, access_token="a2"),
    ]
    assert texts(outcome) == ["Name: Carol"]


def test_Z8_refresh_rejected_deletes_the_session_and_offers_login() -> None:
    _, outcome = run(AUTHED, "me", None, ActionDone(401), RefreshRejected())
    assert outcome.session is None
    assert "not logged in" in texts(outcome)[0]


def test_L2_login_check_outcomes() -> None:
    assert decide_login_check(ANON, LoginGone()).session is None
    assert decide_login_check(ANON, LoginGone()).message is None
    denied = decide_login_check(ANON, LoginDenied())
    assert denied.session is None and denied.message == "Неудачная авторизация."
    granted = decide_login_check(ANON, LoginGranted("a", "r"))
    assert granted.session == Authorized("a", "r") and granted.message == "Успешная авторизация."
    assert decide_login_check(ANON, LoginPending()).session is KEEP
    assert decide_login_check(ANON, ModuleUnavailable("auth")).session is KEEP


def test_replies_are_russian_by_default() -> None:
    command = Command(chat_id=1, name="logout", args={})
    outcome = decide(AUTHED, command, [], table=TABLE, fresh_login_token="t")
    assert isinstance(outcome, Outcome)
    assert outcome.replies[0].text == "Сеанс завершён."
