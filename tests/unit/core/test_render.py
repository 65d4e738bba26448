"""Reply templates (Z5, docs/scenarios.md#z5): a template split once fills as the safe formatter
does, for every template, odd ones included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tggate.core.render import _FORMATTER, _Fields, _fill

DATA: dict[str, Any] = {
    "name": "Alice",
    "id": 7,
    "roles": ["admin", "user"],
    "nested": {"deep": "secret"},
    "quote": "it's",
}


def _by_the_formatter(template: str, data: Any) -> str:
    """What `_fill` gave before templates were split once: the formatter on every call."""
    fields = _Fields(data) if isinstance(data, dict) else _Fields(value=data)
    try:
        return _FORMATTER.vformat(template, (), fields)
    except (ValueError, IndexError, KeyError):
        return template


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("👤 {name}\nLogin: {id}", "👤 Alice\nLogin: 7"),
        ("Role: {role}", "Role: —"),  # absent: a dash
        ("{roles}", "admin, user"),  # a list: joined
        ("{name!r}", "'Alice'"),
        ("{quote!a}", '"it\'s"'),
        ("{name:>10}", "Alice"),  # the format spec is ignored
        ("{{literal}} {name}", "{literal} Alice"),
        ("{nested.deep}", "—"),  # no attribute access into the data
        ("{nested[deep]}", "—"),  # nor indexing
        ("{} {0}", "{} {0}"),  # positional fields: the template as it is
        ("{", "{"),  # malformed: the template as it is
        ("{name!x}", "{name!x}"),  # an unknown conversion likewise
        ("{name:{id}}", "Alice"),
        ("no fields", "no fields"),
        ("", ""),
    ],
)
def test_a_template_fills_as_the_formatter_does(template: str, expected: str) -> None:
    assert _fill(template, DATA) == expected
    assert _fill(template, DATA) == _by_the_formatter(template, DATA)


def test_data_that_is_not_an_object_is_the_value_field() -> None:
    assert _fill("• {value}", "plain") == "• plain"
    assert _fill("• {value}", ["a", "b"]) == "• a, b"


@given(
    template=st.text(alphabet="{}!:ars0 .[]xnameid", max_size=24),
    data=st.dictionaries(st.sampled_from(["name", "id", "x"]), st.text(max_size=5)),
)
def test_any_template_fills_as_the_formatter_does(template: str, data: dict[str, str]) -> None:
    assert _fill(template, data) == _by_the_formatter(template, data)
    assert _fill(template, data) == _by_the_formatter(template, data)  # split once, then kept
