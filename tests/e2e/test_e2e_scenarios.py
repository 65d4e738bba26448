"""Every scenario of docs/scenarios.md through the whole topology, driven only through the fake
Telegram: Telegram → Telegram Client → nginx → Bot Logic replicas → Redis + reference modules."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.e2e.driver import Person, Telegram, logic_counter

from tggate_sandbox.topology import Topology

TEXTS = {
    "en": {
        "no_such": "No such command",
        "not_logged_in": "You are not logged in.",
        "not_finished": "Your login is not finished yet.",
        "logged_in": "You are logged in.",
        "failed": "Login failed.",
        "already": "You are already logged in.",
        "ended": "Session ended.",
        "ended_all": "Session ended on all devices.",
        "forbidden": "Not enough rights for this action.",
    },
    "ru": {
        "no_such": "Нет такой команды",
        "not_logged_in": "Вы не залогинены.",
        "not_finished": "Вход ещё не завершён.",
        "logged_in": "Успешная авторизация.",
        "failed": "Неудачная авторизация.",
        "already": "Вы уже авторизованы.",
        "ended": "Сеанс завершён.",
        "ended_all": "Сеанс завершён на всех устройствах.",
        "forbidden": "Недостаточно прав для этого действия.",
    },
}


def resolve(topology: Topology, chat_id: int, decision: str, **extra: Any) -> None:
    """What the person does on the Authorization module's page (Yes / No)."""
    body = {"chat_id": chat_id, "decision": decision, "identity": "alice", **extra}
    response = httpx.post(
        topology.auth_url + "/test/logins/resolve",
        json=body,
        headers=topology.test_api_headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text


def log_in(person: Person, topology: Topology, **extra: Any) -> None:
    person.say("/login code")
    person.read(1)
    resolve(topology, person.chat_id, "granted", **extra)
    # L: the login-check timer tells the person, without them writing anything.
    assert person.read(1)[0]["text"] == TEXTS[person.language]["logged_in"]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_first_contact_login_granted_action_and_logout(
    topology: Topology, telegram: Telegram, chat_id: int, language: str
) -> None:
    t = TEXTS[language]
    person = telegram.person(chat_id, language)
    assert person.ask_one("hello there") == t["no_such"]  # C5
    # U1: not logged in, with the three ways to log in as buttons.
    person.say("/courses")
    (message,) = person.read(1)
    assert message["text"].startswith(t["not_logged_in"])
    buttons = [
        b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert buttons == ["/login github", "/login yandex", "/login code"]
    # U2 through the button: the callback query becomes "/login code".
    person.press(message, "/login code")
    (prompt,) = person.read(1)
    pending = httpx.get(
        topology.auth_url + "/test/pending", headers=topology.test_api_headers, timeout=10
    ).json()
    code = next(p["code"] for p in pending if p["chat_id"] == chat_id)
    assert code in prompt["text"]
    # A2→A6: a command before the person confirmed.
    assert person.ask_one("/me").startswith(t["not_finished"])
    # The person presses Yes; A5 on the next command: logged in, then the command's answer.
    resolve(topology, chat_id, "granted", name="Alice")
    replies = person.ask("/me", 2)
    assert replies[0] == t["logged_in"]
    assert "Alice" in replies[1]
    # Z1, Z4/Z5, Z6, Z2.
    assert person.ask_one("/login github") == t["already"]
    assert "py101" in person.ask_one("/courses")
    assert person.ask_one("/students py101") == t["forbidden"]
    assert person.ask_one("/logout") == t["ended"]
    assert person.ask_one("/me").startswith(t["not_logged_in"])


@pytest.mark.parametrize("language", ["ru", "en"])
def test_login_denied(topology: Topology, telegram: Telegram, chat_id: int, language: str) -> None:
    person = telegram.person(chat_id, language)
    person.say("/login yandex")
    (prompt,) = person.read(1)
    url = prompt["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.startswith(topology.auth_url)
    resolve(topology, chat_id, "denied")
    # L: the timer reports the failure by itself (A4 if the person wrote first).
    assert person.read(1)[0]["text"] == TEXTS[language]["failed"]
    assert person.ask_one("/me").startswith(TEXTS[language]["not_logged_in"])


@pytest.mark.parametrize("language", ["ru", "en"])
def test_expired_access_token_is_refreshed(
    topology: Topology, telegram: Telegram, chat_id: int, language: str
) -> None:
    person = telegram.person(chat_id, language)
    log_in(person, topology, access_ttl_s=-10, name="Alice")
    stats_url = topology.auth_url + "/test/stats"
    refreshes = httpx.get(stats_url, headers=topology.test_api_headers, timeout=10).json()[
        "refresh"
    ]
    assert "Alice" in person.ask_one("/me")  # Z7 → Z9 → Z4
    after = httpx.get(stats_url, headers=topology.test_api_headers, timeout=10).json()["refresh"]
    assert after == refreshes + 1


@pytest.mark.parametrize("language", ["ru", "en"])
def test_expired_refresh_token_ends_the_session(
    topology: Topology, telegram: Telegram, chat_id: int, language: str
) -> None:
    person = telegram.person(chat_id, language)
    log_in(person, topology, access_ttl_s=-10, refresh_ttl_s=-10)
    assert person.ask_one("/courses").startswith(TEXTS[language]["not_logged_in"])  # Z8


@pytest.mark.parametrize("language", ["ru", "en"])
def test_logout_all_ends_every_device(
    topology: Topology, telegram: Telegram, chat_id: int, language: str
) -> None:
    phone = telegram.person(chat_id, language)
    laptop = telegram.person(chat_id + 500_000, language)
    log_in(phone, topology, identity="dora")
    log_in(laptop, topology, identity="dora", access_ttl_s=-10)
    assert phone.ask_one("/logout all") == TEXTS[language]["ended_all"]  # Z3
    assert laptop.ask_one("/me").startswith(TEXTS[language]["not_logged_in"])  # revoked: Z8


def test_unknown_text_is_answered_by_the_client_alone(
    topology: Topology, telegram: Telegram, chat_id: int
) -> None:
    person = telegram.person(chat_id, "ru")
    before = logic_counter(topology)
    for text in ("привет", "/nosuchcommand", "🙂", "login code"):
        assert person.ask_one(text) == "Нет такой команды"
    assert logic_counter(topology) == before, "Bot Logic saw a request"


def test_notification_reaches_the_chat(
    topology: Topology, telegram: Telegram, chat_id: int
) -> None:
    person = telegram.person(chat_id, "en")
    log_in(person, topology, identity=f"n{chat_id}")
    created = httpx.post(
        topology.main_url + "/notifications",
        json={"to": f"n{chat_id}", "text": "Your task was graded"},
        headers=topology.admin_headers,
        timeout=10,
    )
    assert created.status_code == 201
    assert person.read(1, timeout=10)[0]["text"] == "🔔 Your task was graded"
    person.nothing_more(wait=1.5)


def test_the_command_menu_is_published_in_both_languages(topology: Topology) -> None:
    deadline = time.monotonic() + 20
    menus: dict[str, list[dict[str, str]]] = {}
    while time.monotonic() < deadline and len(menus) < 3:
        stats = httpx.get(
            topology.telegram_url + "/_test/stats", headers=topology.test_api_headers, timeout=10
        ).json()
        menus = stats["commands"].get("default", {})
        time.sleep(0.2)
    described = {
        lang: {c["command"]: c["description"] for c in menu} for lang, menu in menus.items()
    }
    assert described["ru"]["courses"] == "Мои курсы"
    assert described[""]["courses"] == "Мои курсы"  # Russian is the default
    assert described["en"]["courses"] == "My courses"
    for menu in described.values():
        assert {"start", "help", "login", "logout", "me", "course", "grades"} <= set(menu)


def test_no_secret_appears_in_any_log(topology: Topology, telegram: Telegram, chat_id: int) -> None:
    person = telegram.person(chat_id, "en")
    log_in(person, topology, access_ttl_s=-10)
    person.ask_one("/me")
    logs = topology.logs()
    assert logs, "the components logged something"
    secrets = (topology.bot_token, topology.internal_token, topology.jwt_secret)
    more = (topology.test_api_secret, topology.admin_secret)
    assert topology.redis is not None
    more += (topology.redis.password,)  # in TGGATE_REDIS_URL (issue 9)
    for secret in (*secrets, topology.session_key, topology.oauth_secret, *more):
        assert secret not in logs
    assert "eyJ" not in logs, "a JWT reached a log"
