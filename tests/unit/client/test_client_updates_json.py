"""getUpdates is read as JSON (bench/README.md: validating every update into aiogram's models
was the client's hot spot); these pin `incoming_from_json` to aiogram's own reading of the same
updates (`to_incoming` below, what the client did with aiogram's `Update` model)."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Update

from tggate.client.base import CallbackPress, Incoming, IncomingMessage, OtherUpdate
from tggate.client.telegram import incoming_from_json
from tggate.core.texts import language_of


def to_incoming(update: Update) -> Incoming:
    """An update as aiogram's models read it: the reference for `incoming_from_json`."""
    if update.message is not None:
        message = update.message
        user = message.from_user
        return IncomingMessage(
            update_id=update.update_id,
            chat_id=message.chat.id,
            text=message.text,
            language=language_of(user.language_code if user else None),
            date=int(message.date.timestamp()),
        )
    if update.callback_query is not None:
        query = update.callback_query
        return CallbackPress(
            update_id=update.update_id,
            chat_id=query.message.chat.id if query.message else query.from_user.id,
            callback_id=query.id,
            data=query.data,
            language=language_of(query.from_user.language_code),
        )
    return OtherUpdate(update_id=update.update_id)


USER = {"id": 7, "is_bot": False, "first_name": "A", "language_code": "en-GB"}
CHAT = {"id": 7, "type": "private", "first_name": "A"}

UPDATES: list[dict[str, Any]] = [
    {
        "update_id": 3,
        "message": {"message_id": 1, "date": 1700000000, "chat": CHAT, "from": USER, "text": "/me"},
    },
    {"update_id": 4, "message": {"message_id": 1, "date": 5, "chat": CHAT}},
    {
        "update_id": 5,
        "callback_query": {
            "id": "cb9",
            "from": USER,
            "chat_instance": "x",
            "data": "/login code",
            "message": {"message_id": 2, "date": 0, "chat": CHAT, "text": "offer"},
        },
    },
    {
        "update_id": 6,
        "callback_query": {"id": "cb10", "from": {**USER, "id": 8}, "chat_instance": "x"},
    },
    {"update_id": 7, "edited_message": {"message_id": 1, "date": 0, "chat": CHAT, "text": "x"}},
]


@pytest.mark.parametrize("raw", UPDATES, ids=lambda raw: str(raw["update_id"]))
def test_json_updates_read_as_aiogram_reads_them(raw: dict[str, Any]) -> None:
    expected = to_incoming(Update.model_validate(raw))
    found = incoming_from_json(raw)
    assert found == expected
    assert getattr(found, "date", None) == getattr(expected, "date", None)


@pytest.mark.parametrize(
    "raw",
    [
        {"message": {"chat": CHAT, "date": 0}},
        {"update_id": "1", "message": {"chat": CHAT, "date": 0}},
        {"update_id": 1, "message": {"date": 0}},
        {"update_id": 1, "message": {"chat": CHAT, "date": 0, "text": 5}},
        {"update_id": 1, "callback_query": {"from": USER}},
    ],
)
def test_a_malformed_update_is_a_value_error(raw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="malformed update"):
        incoming_from_json(raw)
