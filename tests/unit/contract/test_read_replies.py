"""`read_replies` reads a command's answer by hand (the client reads one per command): it must
read exactly what `REPLIES_ANSWER` reads in strict mode, into what `chat_reply_of` makes of it,
and refuse exactly what that refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tggate.contract.logic import REPLIES_ANSWER, chat_reply_of, read_replies, replies_answer
from tggate.core.replies import Button, ChatReply, Reply

# Values of every JSON kind, so that each field meets the wrong ones too.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_any_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes any JSON value at all."""
    return st.one_of(value, value, value, _any_json)


_button = st.fixed_dictionaries(
    {"text": _maybe(st.text(max_size=8))},
    optional={"url": _maybe(st.text(max_size=8)), "command": _maybe(st.text(max_size=8))},
)
_reply = st.fixed_dictionaries(
    {"chat_id": _maybe(st.integers(-(2**52), 2**52)), "text": _maybe(st.text(max_size=20))},
    optional={
        "buttons": _maybe(st.lists(_maybe(st.lists(_maybe(_button), max_size=3)), max_size=3)),
        "extra": _any_json,
    },
)
_answer = st.one_of(
    st.fixed_dictionaries(
        {"replies": _maybe(st.lists(_maybe(_reply), max_size=3))},
        optional={"retry": _maybe(st.booleans()), "later": _any_json},
    ),
    _any_json,
)


def _by_models(raw: bytes) -> tuple[list[ChatReply], bool] | None:
    try:
        answer = REPLIES_ANSWER.validate_json(raw, strict=True)
    except ValidationError:
        return None
    return [chat_reply_of(reply) for reply in answer["replies"]], answer.get("retry", False)


@settings(max_examples=600)
@given(_answer)
def test_it_reads_and_refuses_what_the_strict_type_adapter_does(answer: Any) -> None:
    raw = orjson.dumps(answer)
    expected = _by_models(raw)
    if expected is None:
        with pytest.raises(ValueError):
            read_replies(raw)
    else:
        assert read_replies(raw) == expected


def test_it_reads_what_bot_logic_writes() -> None:
    replies = [
        Reply("first"),
        Reply(
            "second", ((Button("Site", url="https://example.org"), Button("Me", command="/me")),)
        ),
    ]
    raw = orjson.dumps(replies_answer(42, replies, retry=True))
    assert read_replies(raw) == ([ChatReply(42, reply) for reply in replies], True)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"replies": null}', b"\xff"])
def test_a_body_that_is_no_answer_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        read_replies(raw)


def _answer_with(path: tuple[object, ...], value: object) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "replies": [
            {
                "chat_id": 7,
                "text": "hi",
                "buttons": [[{"text": "a", "url": "https://a"}, {"text": "b", "command": "/b"}]],
            }
        ],
        "retry": False,
    }
    here: Any = answer
    for step in path[:-1]:
        here = here[step]
    here[path[-1]] = value
    return answer


# Each field given each wrong kind of value the strict models refuse.
_WRONG = [
    (("replies",), {}),
    (("replies",), None),
    (("retry",), 1),
    (("retry",), "true"),
    (("replies", 0), []),
    (("replies", 0, "chat_id"), True),
    (("replies", 0, "chat_id"), 7.0),
    (("replies", 0, "chat_id"), "7"),
    (("replies", 0, "text"), 5),
    (("replies", 0, "text"), None),
    (("replies", 0, "buttons"), None),
    (("replies", 0, "buttons"), {}),  # iterable, and empty: a list in all but kind
    (("replies", 0, "buttons"), ""),
    (("replies", 0, "buttons", 0), {}),
    (("replies", 0, "buttons", 0), ""),
    (("replies", 0, "buttons", 0), None),
    (("replies", 0, "buttons", 0, 0), "a"),
    (("replies", 0, "buttons", 0, 0, "text"), 1),
    (("replies", 0, "buttons", 0, 0, "url"), 5),
    (("replies", 0, "buttons", 0, 0, "url"), None),
    (("replies", 0, "buttons", 0, 1, "command"), False),
]


@pytest.mark.parametrize(("path", "value"), _WRONG)
def test_each_field_of_the_wrong_kind_is_refused_as_the_models_refuse_it(
    path: tuple[object, ...], value: object
) -> None:
    raw = orjson.dumps(_answer_with(path, value))
    assert _by_models(raw) is None
    with pytest.raises(ValueError):
        read_replies(raw)
