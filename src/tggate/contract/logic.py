"""Bot Logic's internal HTTP API (SPEC §5.1, docs/state-machine.md), as pydantic models.

Both sides use these: Bot Logic's app (`tggate.logic.app`) validates requests and declares its
answers with them, and FastAPI derives Bot Logic's OpenAPI from them; the Telegram Client's
adapter (`tggate.client.logic_api`) sends the requests and reads the answers with them.

Requests are strict (an unknown field is a 422); answers ignore fields they do not know, so a
newer Bot Logic may add some without breaking an older client. The `*_json` / `*_of` functions
translate between these and the core's `Reply` and `OutboxMessage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tggate.core.commands import MAX_TEXT
from tggate.core.ports import OutboxKind, OutboxMessage
from tggate.core.replies import Button, ChatReply, Reply

__all__ = [
    "AckAnswer",
    "AckRequest",
    "ButtonJson",
    "CommandRequest",
    "CycleRequest",
    "FieldProblem",
    "LeaseAnswer",
    "LeaseRequest",
    "MessageJson",
    "MessagesAnswer",
    "ProbeAnswer",
    "Problem",
    "RepliesAnswer",
    "ReplyJson",
    "ValidationProblem",
    "message_json",
    "message_of",
    "replies_answer",
    "reply_of",
]

# Telegram's chat ids fit in 52 bits; JSON numbers beyond 2**53 would lose precision anyway.
_MAX_ID = 2**53


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# ---- requests ----


class CommandRequest(_Request):
    """One recognised command (C6): POST /v1/commands."""

    update_id: int = Field(
        ge=0, le=_MAX_ID, description="Telegram's update id: the request's idempotency key."
    )
    chat_id: int = Field(ge=-_MAX_ID, le=_MAX_ID)
    command: str = Field(
        min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", description="Without '/'."
    )
    args: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="Arguments by name, as the person typed them: `/login github` → "
        '{"type": "github"}, `/logout all` → {"all": "true"}.',
    )
    text: str = Field(default="", max_length=MAX_TEXT, description="The message as sent.")
    language: str = Field(
        default="ru", max_length=16, description="Telegram's language_code of the person."
    )

    @field_validator("args")
    @classmethod
    def _short_args(cls, args: dict[str, str]) -> dict[str, str]:
        for name, value in args.items():
            if len(name) > 32 or len(value) > 1024:
                raise ValueError(f"argument '{name[:32]}' is too long")
        return args


class CycleRequest(_Request):
    """One timer tick (L1, N1), optionally one shard of the chats: POST /v1/cycles/…"""

    shard: int = Field(default=0, ge=0, description="Chats whose chat_id % shards == shard.")
    shards: int = Field(default=1, ge=1, le=1024)

    @model_validator(mode="after")
    def _shard_in_range(self) -> CycleRequest:
        if self.shard >= self.shards:
            raise ValueError("shard must be less than shards")
        return self


class AckRequest(_Request):
    """Messages the client has delivered: POST /v1/messages/ack."""

    ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=10_000)


class LeaseRequest(_Request):
    """Ask for (or renew) the poller lease: POST /v1/poller/lease."""

    instance: str = Field(min_length=1, max_length=200, description="The asking client's id.")
    ttl_s: float = Field(default=15.0, ge=1, le=300)


# ---- answers ----


class ButtonJson(_Answer):
    """An inline button: exactly one of `url` (opens a page) and `command` (sent back when
    pressed, as a callback query)."""

    text: str
    url: str | None = None
    command: str | None = None


class ReplyJson(_Answer):
    """A message to send to the chat."""

    chat_id: int
    text: str
    buttons: list[list[ButtonJson]] = Field(default_factory=list, description="Rows of buttons.")


class RepliesAnswer(_Answer):
    """The answer to a command: its replies, in order. A repeated update_id gets the first
    answer again."""

    replies: list[ReplyJson]


class MessageJson(_Answer):
    """A message from the durable outbox; it is handed out again until acknowledged."""

    id: str = Field(description="Unique; acknowledge it with POST /v1/messages/ack.")
    chat_id: int
    kind: OutboxKind = Field(description="The timer cycle that hands it out.")
    text: str
    buttons: list[list[ButtonJson]] = Field(default_factory=list, description="Rows of buttons.")


class MessagesAnswer(_Answer):
    """Every undelivered message of the cycle's kind in the shard (L3, N3), each chat's in the
    order they were produced."""

    messages: list[MessageJson]


class AckAnswer(_Answer):
    acknowledged: int = Field(description="How many of the ids were still undelivered.")


class LeaseAnswer(_Answer):
    granted: bool = Field(description="True: the asking instance holds the lease now.")


class ProbeAnswer(_Answer):
    status: str


class Problem(_Answer):
    """An error: what went wrong, in a sentence (never a trace)."""

    detail: str


class FieldProblem(_Answer):
    loc: list[str | int] = Field(description="Where in the request, e.g. ['body', 'chat_id'].")
    msg: str


class ValidationProblem(_Answer):
    """A request that does not match its schema (the first ten problems)."""

    detail: list[FieldProblem]


# ---- between the core's values and their JSON ----


def _button_json(button: Button) -> ButtonJson:
    # model_construct: the core's values need no validation, and this runs for every reply.
    if button.url is not None:
        return ButtonJson.model_construct(text=button.text, url=button.url)
    return ButtonJson.model_construct(text=button.text, command=button.command or "")


def _buttons_json(reply: Reply) -> list[list[ButtonJson]]:
    return [[_button_json(button) for button in row] for row in reply.buttons]


def _reply_json(chat_id: int, reply: Reply) -> ReplyJson:
    return ReplyJson.model_construct(chat_id=chat_id, text=reply.text, buttons=_buttons_json(reply))


def replies_answer(chat_id: int, replies: Iterable[Reply]) -> RepliesAnswer:
    """The answer to a command of `chat_id`; serialise it with `exclude_none=True`."""
    return RepliesAnswer.model_construct(replies=[_reply_json(chat_id, r) for r in replies])


def message_json(message: OutboxMessage) -> MessageJson:
    return MessageJson.model_construct(
        id=message.id,
        chat_id=message.chat_id,
        kind=message.kind,
        text=message.reply.text,
        buttons=_buttons_json(message.reply),
    )


def _keyboard(rows: list[list[ButtonJson]]) -> tuple[tuple[Button, ...], ...]:
    return tuple(
        tuple(Button(text=b.text, url=b.url, command=b.command) for b in row) for row in rows
    )


def reply_of(answer: ReplyJson) -> ChatReply:
    return ChatReply(answer.chat_id, Reply(text=answer.text, buttons=_keyboard(answer.buttons)))


def message_of(answer: MessageJson) -> OutboxMessage:
    return OutboxMessage(
        id=answer.id,
        chat_id=answer.chat_id,
        kind=answer.kind,
        reply=Reply(text=answer.text, buttons=_keyboard(answer.buttons)),
    )
