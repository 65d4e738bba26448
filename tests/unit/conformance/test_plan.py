"""The conformance plan (conformance/plan.py): the bundled one fits the bundled table, and a plan
that cannot run stops the check with one line naming the key."""

from __future__ import annotations

import pytest

from tggate.conformance.plan import PlanError, load_plan, parse_plan
from tggate.core.commands import load_command_table, parse_command_table

TABLE = parse_command_table(
    """
[[actions]]
command = "orders"
path = "/orders"
[[actions]]
command = "order"
path = "/orders/{id}"
[[actions.args]]
name = "id"
pattern = "^[0-9]+$"
[[actions]]
command = "cancel"
method = "DELETE"
path = "/orders/{id}"
[[actions.args]]
name = "id"
pattern = "^[0-9]+$"
"""
)

GOOD = """
[arguments]
id = "42"
[[people]]
identity = "ann"
can = ["orders", "order"]
[skip]
cancel = "it cancels a real order"
"""


def test_the_bundled_plan_fits_the_bundled_table() -> None:
    plan = load_plan(None, load_command_table())
    assert [p.identity for p in plan.people] == ["alice", "bob"]
    assert plan.login_with == "code" and plan.notify is not None
    assert plan.args_of(load_command_table().actions["course"]) == {"course_id": "py101"}


def test_a_plan_with_defaults_and_a_skip() -> None:
    plan = parse_plan(GOOD, TABLE, source="p.toml")
    assert plan.login_types == ("github", "yandex", "code")
    assert plan.people[0].role == "ann" and plan.people[0].cannot == ()
    assert plan.skip == {"cancel": "it cancels a real order"}
    assert plan.notify is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[skip]\ncancel", "[skip]\n#"), "people: nobody can run 'cancel'"),
        (('id = "42"', 'id = "x"'), "arguments.id: 'x' does not match ^[0-9]+$"),
        (('id = "42"', "#"), "arguments.id: 'order' needs a value for it"),
        (('can = ["orders", "order"]', 'can = ["orders", "ordr"]'), "people[0].can: 'ordr' is not"),
        (("[[people]]", "[[peeple]]"), "peeple: unknown key"),
        (('identity = "ann"', 'identity = ""'), "people[0].identity: expected who logs in"),
        (
            ('can = ["orders", "order"]', 'can = ["orders", "order"]\ncannot = ["order"]'),
            "people[0]: 'order' is in both can and cannot",
        ),
        (("[arguments]", 'login_types = ["sms"]\n[arguments]'), "login_types: expected a list"),
        (
            ("[arguments]", 'login_with = "github"\nlogin_types = ["code"]\n[arguments]'),
            "login_with:",
        ),
        (("[skip]", "[notify]\npath = 'x'\n[skip]"), "notify.path: expected a path"),
        (("[skip]", "[notify]\npath = '/n'\nmethod = 'GET'\n[skip]"), "notify.method"),
        (("[skip]\ncancel", "[skip]\nrefund = 'x'\ncancel"), "skip.refund: not an action"),
    ],
)
def test_a_plan_that_cannot_run_is_one_line_naming_the_key(
    change: tuple[str, str], message: str
) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(PlanError) as raised:
        parse_plan(text, TABLE, source="p.toml")
    line = str(raised.value)
    assert "\n" not in line and line.startswith("p.toml: ")
    assert message in line, line


def test_a_plan_without_people_is_refused() -> None:
    with pytest.raises(PlanError, match="people: name at least one person"):
        parse_plan('[arguments]\nid = "1"', TABLE, source="p.toml")


def test_notify_fills_the_identity_and_the_text() -> None:
    plan = load_plan(None, load_command_table())
    assert plan.notify is not None
    assert plan.notify.fill(identity="alice", text="hi") == {"to": "alice", "text": "hi"}
