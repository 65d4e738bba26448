"""What the bot says to a chat: a `Reply` (text and inline buttons), the one vocabulary of the
core, Bot Logic and the Telegram Client (its JSON form is `tggate.contract.logic`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Button", "ChatReply", "Keyboard", "Reply"]


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: it opens `url`, or sends `command` back to the bot when pressed.

    Exactly one of the two is set; the client drops a button that has neither."""

    text: str
    url: str | None = None
    command: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: Keyboard = ()


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A reply addressed to a chat, as Bot Logic answers a command (docs/contract.md#bot-logic)."""

    chat_id: int
    reply: Reply
