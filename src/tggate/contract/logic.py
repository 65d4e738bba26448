"""Bot Logic's internal HTTP API (docs/contract.md#bot-logic, docs/state-machine.md), defined once
for both sides.

Bot Logic's app (`tggate.logic.app`) validates requests with these, declares its answers with
them (FastAPI derives Bot Logic's OpenAPI from them) and writes the answers through them; the
Telegram Client's adapter (`tggate.client.logic_api`) writes its requests and reads the answers
through the same ones.

- Requests are pydantic models: strict (an unknown field is a 422), with their defaults and
  checks, validated where they arrive.
- Answers are typed dicts with one `TypeAdapter` each, built here once: Bot Logic writes them
  and the client reads them straight between bytes and plain values, with no model object per
  reply or message on either hot path (bench/README.md). Fields they do not know are ignored, so
  a newer Bot Logic may add some without breaking an older client.

`replies_answer`, `messages_answer`, `chat_reply_of` and `message_of` translate between these
and the core's `Reply`, `ChatReply` and `OutboxMessage`. `read_replies` reads a command's answer
by hand, as strictly as `REPLIES_ANSWER` in strict mode: the client reads one per command.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Final, NotRequired

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from typing_extensions import TypedDict

from tggate.contract.auth import TelegramUserJson
from tggate.core.commands import MAX_TEXT
from tggate.core.ports import OutboxKind, OutboxMessage
from tggate.core.replies import Button, ChatReply, Keyboard, Reply

__all__ = [
    "ACK_ANSWER",
    "LEASE_ANSWER",
    "MESSAGES_ANSWER",
    "REPLIES_ANSWER",
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
    "chat_reply_of",
    "message_of",
    "messages_answer",
    "read_replies",
    "replies_answer",
]

# Telegram's chat ids fit in 52 bits; JSON numbers beyond 2**53 would lose precision anyway.
_MAX_ID = 2**53


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    telegram_user: TelegramUserJson | None = Field(
        default=None,
        description="Who sent it, as Telegram names them: passed on to the Authorization "
        "module's /login for its confirmation page.",
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


class ButtonJson(TypedDict):
    """An inline button: `url` (it opens a page) or `command` (sent back as a callback query
    when pressed), never both."""

    text: str
    url: NotRequired[str]
    command: NotRequired[str]


class ReplyJson(TypedDict):
    """A message to send to the chat."""

    chat_id: int
    text: str
    buttons: NotRequired[Annotated[list[list[ButtonJson]], Field(description="Rows of buttons.")]]


class RepliesAnswer(TypedDict):
    """The answer to a command: its replies, in order. A repeated update_id gets the first
    answer again."""

    replies: list[ReplyJson]
    retry: NotRequired[
        Annotated[
            bool,
            Field(
                description="True: the command was not done (Bot Logic's store is unavailable) "
                "and nothing was recorded for its update_id; offer the update again later. The "
                "replies then only say so, for a reader that does not know this field. Left "
                "out when false."
            ),
        ]
    ]


class MessageJson(TypedDict):
    """A message from the durable outbox; it is handed out again until acknowledged."""

    id: Annotated[str, Field(description="Unique; acknowledge it with POST /v1/messages/ack.")]
    chat_id: int
    kind: Annotated[OutboxKind, Field(description="The timer cycle that hands it out.")]
    text: str
    buttons: NotRequired[Annotated[list[list[ButtonJson]], Field(description="Rows of buttons.")]]


class MessagesAnswer(TypedDict):
    """Every undelivered message of the cycle's kind in the shard (L3, N3), each chat's in the
    order they were produced."""

    messages: list[MessageJson]


class AckAnswer(TypedDict):
    acknowledged: Annotated[int, Field(description="How many of the ids were undelivered.")]


class LeaseAnswer(TypedDict):
    granted: Annotated[bool, Field(description="True: the asking instance holds the lease now.")]


class ProbeAnswer(TypedDict):
    status: str


class Problem(TypedDict):
    """An error: what went wrong, in a sentence (never a trace)."""

    detail: str


class FieldProblem(TypedDict):
    loc: Annotated[
        list[str | int], Field(description="Where in the request, e.g. ['body', 'chat_id'].")
    ]
    msg: str


class ValidationProblem(TypedDict):
    """A request that does not match its schema (the first ten problems)."""

    detail: list[FieldProblem]


REPLIES_ANSWER: Final = TypeAdapter(RepliesAnswer)
MESSAGES_ANSWER: Final = TypeAdapter(MessagesAnswer)
ACK_ANSWER: Final = TypeAdapter(AckAnswer)
LEASE_ANSWER: Final = TypeAdapter(LeaseAnswer)


# ---- between the core's values and their JSON ----


def _button_json(button: Button) -> ButtonJson:
    if button.url is not None:
        return {"text": button.text, "url": button.url}
    return {"text": button.text, "command": button.command or ""}


def _buttons_json(buttons: Keyboard) -> list[list[ButtonJson]]:
    return [[_button_json(button) for button in row] for row in buttons]


def replies_answer(chat_id: int, replies: Iterable[Reply], *, retry: bool = False) -> RepliesAnswer:
    """The answer to a command of `chat_id`; `retry`: it was not done, offer it again."""
    answer: RepliesAnswer = {
        "replies": [
            {"chat_id": chat_id, "text": reply.text, "buttons": _buttons_json(reply.buttons)}
            for reply in replies
        ]
    }
    if retry:
        answer["retry"] = True  # omitted when false: most answers stay as small as before
    return answer


def messages_answer(messages: Iterable[OutboxMessage]) -> MessagesAnswer:
    return {
        "messages": [
            {
                "id": message.id,
                "chat_id": message.chat_id,
                "kind": message.kind,
                "text": message.reply.text,
                "buttons": _buttons_json(message.reply.buttons),
            }
            for message in messages
        ]
    }


def _keyboard(rows: list[list[ButtonJson]]) -> Keyboard:
    return tuple(
        tuple(Button(b["text"], url=b.get("url"), command=b.get("command")) for b in row)
        for row in rows
    )


def chat_reply_of(answer: ReplyJson) -> ChatReply:
    reply = Reply(answer["text"], _keyboard(answer.get("buttons", [])))
    return ChatReply(answer["chat_id"], reply)


def message_of(answer: MessageJson) -> OutboxMessage:
    reply = Reply(answer["text"], _keyboard(answer.get("buttons", [])))
    return OutboxMessage(answer["id"], answer["chat_id"], answer["kind"], reply)


def read_replies(raw: bytes) -> tuple[list[ChatReply], bool]:
    """A `RepliesAnswer` body as the core's replies, and its `retry`; ValueError for any other
    body. As `REPLIES_ANSWER.validate_json(raw, strict=True)` then `chat_reply_of` (a test holds
    them to it), by hand: that pair was ~5% of the Telegram Client's CPU, which reads one such
    answer per command (bench/README.md, "Profiles")."""
    try:
        answer = orjson.loads(raw)
        replies, retry = answer["replies"], answer.get("retry", False)
        if type(replies) is not list or type(retry) is not bool:
            raise ValueError("not a RepliesAnswer")
        return [_chat_reply(reply) for reply in replies], retry
    except (KeyError, TypeError, AttributeError):
        raise ValueError("not a RepliesAnswer") from None


def _chat_reply(reply: dict[str, object]) -> ChatReply:
    chat_id, text = reply["chat_id"], reply["text"]
    if type(chat_id) is not int or type(text) is not str:
        raise ValueError("not a reply")
    rows = reply.get("buttons", [])
    if type(rows) is not list:
        raise ValueError("not rows of buttons")
    return ChatReply(chat_id, Reply(text, tuple(_buttons(row) for row in rows)))


def _buttons(row: object) -> tuple[Button, ...]:
    if type(row) is not list:
        raise ValueError("not a row of buttons")
    found = []
    for button in row:
        text, url, command = button["text"], button.get("url"), button.get("command")
        if (
            type(text) is not str
            or ("url" in button and type(url) is not str)
            or ("command" in button and type(command) is not str)
        ):
            raise ValueError("not a button")
        found.append(Button(text, url=url, command=command))
    return tuple(found)
