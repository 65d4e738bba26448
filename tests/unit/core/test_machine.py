"""The pure state machine, step by step (docs/scenarios.md), with plain values: no I/O at all."""

from __future__ import annotations

from collections.abc import Sequence

from tests.support.commands import TABLE

from tggate.core.machine import (
    KEEP,
    CallAction,
    CheckLogin,
    Command,
    CycleOutcome,
    DeleteNotifications,
    FetchNotifications,
    LogoutEverywhere,
    NotificationMessage,
    NotificationRequest,
    Outcome,
    QueueNotifications,
    RefreshTokens,
    Reply,
    Request,
    StartLogin,
    decide,
    decide_login_check,
    decide_lost_session,
    decide_notifications,
)
from tggate.core.ports import (
    ActionDone,
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    ModuleUnavailable,
    Notification,
    Refreshed,
    RefreshRejected,
)
from tggate.core.session import Anonymous, Authorized, LoginPrompt, LostSession, Session, Status

PROFILE = TABLE.actions["me"]
PROMPT = LoginPrompt(text="Open the link", url="https://auth.example/o/ref")
ANON = Anonymous(login_token="old-token", login_type="github", prompt=PROMPT)
AUTHED = Authorized(access_token="a1", refresh_token="r1")


def run(
    session: Session | LostSession | None,
    name: str,
    args: dict[str, str] | None = None,
    *answers: object,
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
    assert decide_login_check(ANON, LoginGone()) == CycleOutcome(None, None)
    denied = decide_login_check(ANON, LoginDenied())
    assert denied == CycleOutcome(None, Reply("Неудачная авторизация."))
    granted = decide_login_check(ANON, LoginGranted("a", "r"))
    assert granted == CycleOutcome(Authorized("a", "r"), Reply("Успешная авторизация."))
    assert decide_login_check(ANON, LoginPending()) == CycleOutcome(KEEP)
    assert decide_login_check(ANON, ModuleUnavailable("auth")) == CycleOutcome(KEEP)


def test_replies_are_russian_by_default() -> None:
    command = Command(chat_id=1, name="logout", args={})
    outcome = decide(AUTHED, command, [], table=TABLE, fresh_login_token="t")
    assert isinstance(outcome, Outcome)
    assert outcome.replies[0].text == "Сеанс завершён."


# ---- N2: one Authorized chat in the notification timer (401: Z7–Z9) ----


def notify(session: Authorized, *answers: object) -> tuple[list[NotificationRequest], CycleOutcome]:
    """Drive `decide_notifications` with scripted answers, like `run` does `decide`."""
    requests: list[NotificationRequest] = []
    given: list[object] = []
    script = list(answers)
    while True:
        step = decide_notifications(session, given)
        if isinstance(step, CycleOutcome):
            assert not script, f"unused answers: {script}"
            return requests, step
        requests.append(step)
        given.append(script.pop(0))


def next_request(session: Authorized, *answers: object) -> NotificationRequest | CycleOutcome:
    return decide_notifications(session, answers)


DEADLINE = Notification(id="n1", text="Deadline!")
EXAM = Notification(id="n2", text="Exam")


def test_N2_found_notifications_are_queued_then_exactly_those_ids_deleted() -> None:
    requests, outcome = notify(AUTHED, [DEADLINE, EXAM], None, None)
    assert requests == [
        FetchNotifications(access_token="a1"),
        # Into the outbox first: a crash before the delete loses nothing.
        QueueNotifications(
            (
                NotificationMessage("n1", Reply("🔔 Deadline!")),
                NotificationMessage("n2", Reply("🔔 Exam")),
            )
        ),
        DeleteNotifications(access_token="a1", ids=("n1", "n2")),
    ]
    assert outcome == CycleOutcome(KEEP)


def test_N2_no_notifications_queue_and_delete_nothing() -> None:
    requests, outcome = notify(AUTHED, [])
    assert requests == [FetchNotifications(access_token="a1")]
    assert outcome == CycleOutcome(KEEP)


def test_N2_notifications_speak_the_sessions_language() -> None:
    english = Authorized("a1", "r1", language="en")
    requests, _ = notify(english, [DEADLINE], None, None)
    assert requests[1] == QueueNotifications((NotificationMessage("n1", Reply("🔔 Deadline!")),))


def test_N2_Z7_a_401_asks_for_a_refresh() -> None:
    assert next_request(AUTHED, ActionDone(401)) == RefreshTokens(refresh_token="r1")


def test_N2_Z8_refresh_rejected_ends_the_session_with_a_login_offer() -> None:
    requests, outcome = notify(AUTHED, ActionDone(401), RefreshRejected())
    assert requests == [FetchNotifications("a1"), RefreshTokens("r1")]
    assert outcome.session is None
    assert outcome.message is not None
    assert outcome.message.text.startswith("Вы не залогинены.")
    commands = [b.command for row in outcome.message.buttons for b in row]
    assert commands == ["/login github", "/login yandex", "/login code"]


def test_N2_Z9_refreshed_fetches_again_with_the_new_token() -> None:
    requests, outcome = notify(AUTHED, ActionDone(401), Refreshed("a2", "r2"), [EXAM], None, None)
    assert requests == [
        FetchNotifications("a1"),
        RefreshTokens("r1"),
        FetchNotifications("a2"),
        QueueNotifications((NotificationMessage("n2", Reply("🔔 Exam")),)),
        DeleteNotifications(access_token="a2", ids=("n2",)),
    ]
    assert outcome == CycleOutcome(KEEP)


def test_N2_Z7_a_chat_is_fetched_and_refreshed_at_most_twice_a_tick() -> None:
    requests, outcome = notify(
        AUTHED, ActionDone(401), Refreshed("a2", "r2"), ActionDone(401), Refreshed("a3", "r3")
    )
    assert requests == [
        FetchNotifications("a1"),
        RefreshTokens("r1"),
        FetchNotifications("a2"),
        RefreshTokens("r2"),
    ]
    assert outcome == CycleOutcome(KEEP)  # the stored pair is tried next tick


def test_N2_module_unavailable_or_another_answer_keeps_the_session() -> None:
    for answer in (ModuleUnavailable("main"), ActionDone(403), ActionDone(500)):
        requests, outcome = notify(AUTHED, answer)
        assert requests == [FetchNotifications("a1")], answer
        assert outcome == CycleOutcome(KEEP), answer


def test_N2_Z7_auth_module_unavailable_keeps_the_session() -> None:
    _, outcome = notify(AUTHED, ActionDone(401), ModuleUnavailable("auth"))
    assert outcome == CycleOutcome(KEEP)


# ---- lost sessions (docs/state-machine.md#lost-sessions) ----

LOST = LostSession(was=Status.AUTHORIZED, language="en")


def test_a_lost_session_is_deleted_and_the_chat_asked_to_log_in_again() -> None:
    for name, args in (("me", {}), ("logout", {}), ("logout", {"all": "true"}), ("login", {})):
        requests, outcome = run(LOST, name, args)
        assert requests == [], name  # no module is asked anything with tokens that are gone
        assert outcome.session is None, name
        (reply,) = outcome.replies
        assert reply.text.startswith("Your session could not be restored, please log in again.")
        assert [b.command for row in reply.buttons for b in row] == [
            "/login github",
            "/login yandex",
            "/login code",
        ]


def test_a_login_with_a_type_in_a_lost_session_starts_one_at_once() -> None:
    started = LoginStarted(prompt=PROMPT, expires_in=600)
    requests, outcome = run(LOST, "login", {"type": "github"}, started)
    assert requests == [StartLogin(login_token="new-token", login_type="github")]
    assert outcome.session == Anonymous("new-token", "github", PROMPT, language="en")


def test_the_timer_cycles_end_a_lost_session_with_one_message() -> None:
    outcome = decide_lost_session(LostSession(was=Status.ANONYMOUS, language="ru"))
    assert outcome.session is None
    assert outcome.message is not None
    assert outcome.message.text.startswith("Не удалось восстановить ваш сеанс")
