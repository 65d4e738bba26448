"""An update as it waits in its chat's queue (tggate.intake.entries): what the forwarder needs,
back as it went in."""

from __future__ import annotations

import pytest

from tggate.client.base import CallbackPress, IncomingMessage
from tggate.intake.entries import decode, entry_of


@pytest.mark.parametrize(
    "update",
    [
        IncomingMessage(update_id=7, chat_id=42, text="/course py101", language="en", date=123),
        IncomingMessage(update_id=8, chat_id=-100, text=None, language="ru", date=0),
        IncomingMessage(update_id=9, chat_id=1, text="Привет ⚡", language="ru", date=5),
        CallbackPress(
            update_id=10, chat_id=42, callback_id="4000", data="/login code", language="en"
        ),
        CallbackPress(update_id=11, chat_id=42, callback_id="4001", data=None, language="ru"),
    ],
)
def test_an_entry_decodes_to_the_update(update: IncomingMessage | CallbackPress) -> None:
    entry = entry_of(update)
    assert (entry.chat_id, entry.update_id) == (update.chat_id, update.update_id)
    decoded = decode(entry.payload)
    assert decoded == update
    if isinstance(update, IncomingMessage):
        assert isinstance(decoded, IncomingMessage) and decoded.date == update.date


@pytest.mark.parametrize("payload", ["", "[]", '{"u": 1}', "not json"])
def test_what_is_not_an_entry_is_a_value_error(payload: str) -> None:
    with pytest.raises(ValueError, match="not a queue entry"):
        decode(payload)
