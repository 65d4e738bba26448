"""A web chat served by the fake Telegram (docs/contract.md#reference, issue 4): talk to the bot
without Telegram.

`GET /` is the page: plain HTML, CSS and JS from `static/`, no build step. A newcomer creates a
person (name, language → a chat id), writes messages and commands, and presses the bot's inline
buttons. Everything the page sends goes through the fake's own `inject` and `press`, so the bot
gets the very updates `/_test/inject` and `/_test/press` make.

The web chat is the person's Telegram app, so it needs no test API secret; and like a Telegram
app it reaches one person's own chats only (issue 9). Creating a person makes a random key, their
session: the browser keeps it (localStorage, with the people it created) and sends it as
`X-Webchat-Key` with every call about that person's chat; 401 without it, 403 with another
person's. Whatever reaches across chats (inject as anyone, read any chat, list the chats, stats)
is the test API (`app.py`), behind its secret.

JSON endpoints; bad input is a 4xx with `{"detail": ...}`:

- `GET  /webchat/api/bot` → the bot (`getMe`'s user), for the page's title.
- `POST /webchat/api/people` `{name, language: "ru"|"en"}` → `{chat_id, name, language, key}`: a
  new person at a chat id derived from the name and language (the next free one when taken), so
  the same person gets the same id after a restart. `{…, chat_id, key}` registers the person again
  under that id (a reload, or a restarted fake): refused (403) when the id is someone else's.
- `GET  /webchat/api/chats/{chat_id}/messages?after=0&revision=&timeout=0` → `{chat_id, revision,
  messages, commands}`, messages newer than `after`. A long poll of up to `timeout` seconds: with
  `revision` it waits for any change to the chat (new, edited or deleted messages); without, for
  a message newer than `after`.
- `POST /webchat/api/chats/{chat_id}/messages` `{text}` → `{update_id, message_id, queued}`.
- `POST /webchat/api/chats/{chat_id}/press` `{message_id, data}` → `{update_id, callback_query_id,
  queued}`: a callback query, as if the person pressed the inline button.
- `GET  /webchat/api/chats/{chat_id}/commands` → `{"commands": [...]}`: the bot's menu for the
  person, resolved like Telegram does (chat, all private chats, default; language first).
- `GET  /webchat/api/chats/{chat_id}/callbacks/{callback_query_id}?timeout=10` → `{answered,
  text?, show_alert?, url?}` once the bot answered the query (or the timeout passed).

Element ids and attributes the page keeps stable for browser tests:

- picker: `#people-panel`, `#people-list` with `button.person[data-chat-id]` (the people this
  browser created), `#person-name`, `#person-language` (a select, `ru`/`en`), `#person-create`;
  `#people-toggle` opens the picker.
- chat: `#chat-title`, `#status` (`data-state` = `idle` | `connecting` | `online` | `offline`),
  `#messages` with `.message.bot` / `.message.person` (`data-message-id`, `.text`, `.edited`,
  `time`), under a bot message `.keyboard button[data-callback]` (callback buttons) and
  `.keyboard a[data-url]` (URL buttons, `target=_blank`, `rel="noopener noreferrer"`); links in
  text are `.text a[href]`, commands in bot text `.text button.command-link[data-command]`.
- input: `#commands` with `button.command[data-command]`, `#message-input` (Enter sends, Shift+Enter
  is a new line), `#send`; `#toast` shows errors and the bot's callback answers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tggate_sandbox.fakes.telegram.disconnect import unless_disconnected
from tggate_sandbox.fakes.telegram.errors import ApiError
from tggate_sandbox.fakes.telegram.state import FakeTelegram, InjectedMessage, TestApiError

__all__ = ["KEY_HEADER", "Visitor", "WebChat", "webchat_router"]

Language = Literal["ru", "en"]

MAX_POLL_S = 50.0
MAX_TEXT_LENGTH = 4096
MAX_NAME_LENGTH = 64  # Telegram's limit for a first name
# Ids the page keeps as JavaScript numbers must stay exact there (2**53), like Telegram's own.
MAX_CHAT_ID = 2**52
ChatId = Annotated[int, Path(gt=0, le=MAX_CHAT_ID)]
KEY_HEADER = "X-Webchat-Key"
# A person's key is `secrets.token_urlsafe(32)`: 43 characters of [A-Za-z0-9_-].
Key = Annotated[str, Field(min_length=32, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
_DERIVED_IDS_FROM = 1_000_000_000
_DERIVED_IDS_SPAN = 1_000_000_000

_ASSETS = {
    "webchat.css": "text/css; charset=utf-8",
    "webchat.js": "text/javascript; charset=utf-8",
}
# The page builds every node with textContent, and the policy makes sure nothing else runs.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Visitor:
    """Someone talking to the bot from the web chat; the chat id is their Telegram user id, the
    key their session (only their own browser has it)."""

    chat_id: int
    name: str
    language: str
    key: str = field(repr=False)

    def json(self) -> dict[str, object]:
        """For the browser that created the person or presented the key: the key included."""
        return {
            "chat_id": self.chat_id,
            "name": self.name,
            "language": self.language,
            "key": self.key,
        }


class PersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    language: Language
    chat_id: int | None = Field(default=None, gt=0, le=MAX_CHAT_ID)
    key: Key | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("the name must not be blank")
        return name.strip()

    @model_validator(mode="after")
    def _chat_id_with_its_key(self) -> Self:
        if (self.chat_id is None) != (self.key is None):
            raise ValueError("give chat_id and key together (a person registered again)")
        return self


class TextBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        # Telegram apps do not send blank messages, and Telegram trims what they send.
        if not text.strip():
            raise ValueError("the message must not be blank")
        return text.strip()


class WebPressBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(gt=0)
    data: str = Field(min_length=1)


class WebChat:
    """The people of the web chat, on top of the fake's chats."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self._people: dict[int, Visitor] = {}

    def _taken(self, chat_id: int) -> bool:
        """A person of the web chat, or a chat the fake knows from elsewhere (the test API)."""
        return chat_id in self._people or self.telegram.knows_chat(chat_id)

    def create(self, name: str, language: str) -> Visitor:
        """A new person with a fresh key, at the first free id derived from name and language."""
        for attempt in range(1_000):
            candidate = _derived_chat_id(name, language, attempt)
            if not self._taken(candidate):
                person = Visitor(candidate, name, language, secrets.token_urlsafe(32))
                self._people[candidate] = person
                return person
        raise TestApiError(409, "could not find a free chat id for this person")

    def register_again(self, name: str, language: str, chat_id: int, key: str) -> Visitor:
        """The person the browser remembers: theirs if the key matches, or a free id again."""
        known = self._people.get(chat_id)
        if known is not None:
            if not secrets.compare_digest(known.key.encode(), key.encode()):
                raise TestApiError(403, f"chat {chat_id} belongs to someone else")
            return known
        if self.telegram.knows_chat(chat_id):
            raise TestApiError(403, f"chat {chat_id} belongs to someone else")
        person = Visitor(chat_id, name, language, key)
        self._people[chat_id] = person
        return person

    def owned(self, chat_id: int, key: str | None) -> Visitor:
        """The person behind `chat_id`, if `key` is theirs: 404, 401 or 403 otherwise."""
        person = self._people.get(chat_id)
        if person is None:
            raise TestApiError(404, f"no person with chat id {chat_id}; create one first")
        if not key:
            raise TestApiError(401, f"the web chat needs the person's {KEY_HEADER} header")
        if not secrets.compare_digest(person.key.encode(), key.encode()):
            raise TestApiError(403, f"chat {chat_id} belongs to someone else")
        return person

    async def send(self, person: Visitor, text: str) -> dict[str, object]:
        [result] = await self.telegram.inject(
            [
                InjectedMessage(
                    chat_id=person.chat_id,
                    text=text,
                    first_name=person.name,
                    language_code=person.language or None,
                )
            ]
        )
        return result

    def view(self, chat_id: int, *, after: int = 0) -> tuple[str, list[dict[str, object]]]:
        """The chat's revision (changes with any message change) and its messages after `after`."""
        views = [_message_view(m) for m in self.telegram.messages(chat_id) if not m["deleted"]]
        encoded = json.dumps(views, sort_keys=True, separators=(",", ":")).encode()
        revision = hashlib.sha256(encoded).hexdigest()[:16]
        return revision, [v for v in views if _int(v["message_id"]) > after]

    async def wait(
        self, chat_id: int, *, after: int, revision: str | None, timeout_s: float
    ) -> None:
        def ready() -> bool:
            current, newer = self.view(chat_id, after=after)
            return current != revision if revision is not None else bool(newer)

        await self.telegram.wait_until(ready, timeout_s=timeout_s)

    async def commands(self, person: Visitor) -> list[dict[str, str]]:
        """The bot's menu as Telegram shows it in a private chat (Bot API, "Determining list")."""
        scopes: Sequence[Mapping[str, object] | None] = (
            {"type": "chat", "chat_id": person.chat_id},
            {"type": "all_private_chats"},
            None,
        )
        for scope in scopes:
            for language in dict.fromkeys((person.language, "")):
                params: dict[str, object] = {"language_code": language}
                if scope is not None:
                    params["scope"] = scope
                try:
                    found = await self.telegram.get_my_commands(params)
                except ApiError:
                    continue  # the chat scope of a person who has not written yet
                if isinstance(found, list) and found:
                    return [
                        {"command": str(c["command"]), "description": str(c["description"])}
                        for c in found
                    ]
        return []

    async def wait_for_answer(
        self, chat_id: int, query_id: str, *, timeout_s: float
    ) -> dict[str, object]:
        def query() -> dict[str, object] | None:
            for candidate in self.telegram.callback_queries():
                if candidate["callback_query_id"] == query_id and candidate["chat_id"] == chat_id:
                    return candidate
            return None

        if query() is None:
            raise TestApiError(404, f"no callback query {query_id} in chat {chat_id}")
        await self.telegram.wait_until(
            lambda: bool((query() or {}).get("answered")), timeout_s=timeout_s
        )
        found = query() or {}
        return {
            key: found[key] for key in ("answered", "text", "show_alert", "url") if key in found
        }


def webchat_router(telegram: FakeTelegram) -> APIRouter:
    """The page at `/` and its JSON API under `/webchat/api` (see the module docstring)."""
    webchat = WebChat(telegram)
    static = resources.files(__package__).joinpath("static")
    page = static.joinpath("webchat.html").read_text(encoding="utf-8")
    assets = {name: static.joinpath(name).read_text(encoding="utf-8") for name in _ASSETS}
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    @router.get("/webchat", include_in_schema=False)
    async def webchat_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    @router.get("/webchat/static/{name}", include_in_schema=False)
    async def webchat_asset(name: str) -> Response:
        if name not in assets:
            return JSONResponse({"detail": f"no asset {name!r}"}, status_code=404)
        return Response(assets[name], media_type=_ASSETS[name], headers=_PAGE_HEADERS)

    async def owner(
        chat_id: ChatId, key: Annotated[str | None, Header(alias=KEY_HEADER)] = None
    ) -> Visitor:
        return webchat.owned(chat_id, key)

    # `Depends(owner)` as a default, not in an Annotated alias: with postponed annotations
    # FastAPI resolves names in the module, where a local alias does not exist.
    is_owner = Depends(owner)

    @router.get("/webchat/api/bot")
    async def bot() -> JSONResponse:
        return JSONResponse(telegram.bot_user())

    @router.post("/webchat/api/people")
    async def create_person(body: PersonBody) -> JSONResponse:
        if body.chat_id is not None and body.key is not None:
            person = webchat.register_again(body.name, body.language, body.chat_id, body.key)
        else:
            person = webchat.create(body.name, body.language)
        return JSONResponse(person.json(), status_code=201)

    @router.get("/webchat/api/chats/{chat_id}/messages")
    async def messages(
        request: Request,
        person: Visitor = is_owner,
        after: int = Query(default=0, ge=0),
        revision: str | None = Query(default=None, min_length=1, max_length=64),
        timeout_s: float = Query(default=0.0, ge=0, le=MAX_POLL_S, alias="timeout"),
    ) -> JSONResponse:
        chat_id = person.chat_id
        if timeout_s > 0:
            await unless_disconnected(
                request.receive,
                webchat.wait(chat_id, after=after, revision=revision, timeout_s=timeout_s),
            )
        current, newer = webchat.view(chat_id, after=after)
        return JSONResponse(
            {
                "chat_id": chat_id,
                "revision": current,
                "messages": newer,
                "commands": await webchat.commands(person),
            }
        )

    @router.post("/webchat/api/chats/{chat_id}/messages")
    async def send(body: TextBody, person: Visitor = is_owner) -> JSONResponse:
        return JSONResponse(await webchat.send(person, body.text))

    @router.post("/webchat/api/chats/{chat_id}/press")
    async def press(body: WebPressBody, person: Visitor = is_owner) -> JSONResponse:
        return JSONResponse(await telegram.press(person.chat_id, body.message_id, body.data))

    @router.get("/webchat/api/chats/{chat_id}/commands")
    async def commands(person: Visitor = is_owner) -> JSONResponse:
        return JSONResponse({"commands": await webchat.commands(person)})

    @router.get("/webchat/api/chats/{chat_id}/callbacks/{callback_query_id}")
    async def callback_answer(
        request: Request,
        person: Visitor = is_owner,
        callback_query_id: str = Path(min_length=1, max_length=64),
        timeout_s: float = Query(default=10.0, ge=0, le=MAX_POLL_S, alias="timeout"),
    ) -> JSONResponse:
        answer = await unless_disconnected(
            request.receive,
            webchat.wait_for_answer(person.chat_id, callback_query_id, timeout_s=timeout_s),
        )
        return JSONResponse(answer if answer is not None else {"answered": False})

    return router


def _message_view(message: Mapping[str, Any]) -> dict[str, object]:
    markup = message.get("reply_markup") or {}
    rows = (markup.get("inline_keyboard") or []) if isinstance(markup, dict) else []
    return {
        "message_id": message["message_id"],
        "from": "bot" if message["from_bot"] else "person",
        "text": message["text"],
        "entities": message["entities"],
        "date": message["date"],
        "edited": message["edited"],
        "keyboard": [[_button_view(button) for button in row] for row in rows],
    }


def _button_view(button: Mapping[str, Any]) -> dict[str, object]:
    view: dict[str, object] = {"text": str(button.get("text", ""))}
    if "callback_data" in button:
        view |= {"kind": "callback", "data": button["callback_data"]}
    elif "url" in button:
        view |= {"kind": "url", "url": button["url"]}
    else:
        view["kind"] = "other"  # login, web app, inline query, game, pay: not in a browser
    return view


def _derived_chat_id(name: str, language: str, attempt: int) -> int:
    digest = hashlib.sha256(f"{name}\n{language}\n{attempt}".encode()).digest()
    return _DERIVED_IDS_FROM + int.from_bytes(digest[:8], "big") % _DERIVED_IDS_SPAN


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an int, got {value!r}")
    return value
