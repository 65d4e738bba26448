"""An update as it waits in its chat's queue: what the Telegram Client's forwarder needs of it
(`IncomingMessage` or `CallbackPress`), as compact JSON. Telegram's whole update is not kept:
the rest of it (the person's name, entities, the message a button belongs to) is never read.
"""

from __future__ import annotations

import json
from typing import Any

from tggate.client.base import CallbackPress, IncomingMessage
from tggate.core.texts import language_of

from .base import Entry

__all__ = ["decode", "entry_of"]

Handled = IncomingMessage | CallbackPress


def entry_of(update: Handled) -> Entry:
    """The queue entry of an update."""
    fields: dict[str, Any]
    if isinstance(update, IncomingMessage):
        fields = {"m": update.text, "d": update.date}
    else:
        fields = {"q": update.callback_id, "b": update.data}
    fields |= {"u": update.update_id, "c": update.chat_id, "l": update.language}
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return Entry(chat_id=update.chat_id, update_id=update.update_id, payload=payload)


def decode(payload: str) -> Handled:
    """The update of a queue entry; ValueError if it is not one `entry_of` wrote."""
    try:
        fields = json.loads(payload)
        update_id, chat_id, language = fields["u"], fields["c"], language_of(fields["l"])
        if "q" in fields:
            return CallbackPress(
                update_id=update_id,
                chat_id=chat_id,
                callback_id=fields["q"],
                data=fields["b"],
                language=language,
            )
        return IncomingMessage(
            update_id=update_id,
            chat_id=chat_id,
            text=fields["m"],
            language=language,
            date=fields["d"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a queue entry: {type(error).__name__}") from None
