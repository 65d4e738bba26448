"""Everything the fake Telegram knows, in memory, behind one asyncio lock.

The lock is an `asyncio.Condition`: every change notifies it, so a long-polling `getUpdates` and a
test's `/_test/wait` wake up as soon as there is something for them, without sleep-polling.
`stats()["waiting"]` counts the requests waiting so right now: a test that must know a long poll
has started waits for that count instead of sleeping (issue 9).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tggate.core.ports import Clock
from tggate_sandbox.fakes.telegram.errors import (
    bad_request,
    conflict,
    forbidden,
    too_many_requests,
)
from tggate_sandbox.fakes.telegram.formatting import (
    EntityParseError,
    UnsupportedParseMode,
    parse_entities,
    utf16_length,
)
from tggate_sandbox.fakes.telegram.ratelimit import RateLimiter

if TYPE_CHECKING:
    from tggate_sandbox.fakes.telegram.webhook import WebhookDelivery

__all__ = [
    "FakeTelegram",
    "FakeTelegramConfig",
    "InjectedMessage",
    "TestApiError",
]

MAX_TEXT_LENGTH = 4096
LONG_POLL_MAX_TIMEOUT_S = 50  # the real server's LONG_POLL_MAX_TIMEOUT
MAX_COMMANDS = 100
# Update kinds a bot gets when it never said otherwise (Bot API, getUpdates.allowed_updates).
NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_BOT_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_PORTS = (None, 80, 88, 443, 8443)
DEFAULT_MAX_CONNECTIONS = 40  # the Bot API server's default_max_webhook_connections
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
_TERMINATED = (
    "terminated by other getUpdates request; make sure that only one bot instance is running"
)
_WEBHOOK_ACTIVE = (
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
    "webhook first"
)
_FIRST_CALLBACK_QUERY_ID = 4_000_000_000_000_000_000


class TestApiError(Exception):
    """A request to the `/_test` API that cannot be served (HTTP `status`, `detail`)."""

    __test__ = False  # not a pytest test class

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FakeTelegramConfig:
    rate_limits: bool = False
    per_chat_per_s: float = 1.0
    global_per_s: float = 30.0  # free messages
    group_per_minute: int = 20
    paid_per_s: float = 1000.0  # messages of either kind, with paid broadcasts


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """How the fake delivers webhooks (webhook.py). `local`: like the Bot API server started
    with --local, any URL (plain http, any port, a loopback address) may be a webhook."""

    local: bool = False
    timeout_s: float = 60.0
    time_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class InjectedMessage:
    """A person's text message, as `/_test/inject` receives it. In a private chat the person's
    id is the chat id; a negative chat id is a group (Telegram numbers groups so), where the
    person is `user_id` (by default the group's id without its sign)."""

    chat_id: int
    text: str
    first_name: str = "Tester"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    user_id: int | None = None


@dataclass(slots=True)
class StoredMessage:
    message_id: int
    from_bot: bool
    date: int
    text: str
    entities: list[dict[str, object]]
    reply_markup: dict[str, Any] | None = None
    edit_date: int | None = None
    deleted: bool = False
    # When the message was stored, on the host's monotonic clock (CLOCK_MONOTONIC, shared by
    # every process on the machine): benchmarks measure injection-to-reply latency with it.
    monotonic: float = field(default_factory=time.monotonic)

    @property
    def inline_markup(self) -> dict[str, Any] | None:
        """Only inline keyboards belong to a message; reply keyboards live in the person's app."""
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None


@dataclass(slots=True)
class Chat:
    """A private chat (its id is the person's user id), or a group (a negative id; the person
    is the last one who wrote in it)."""

    chat_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    user_id: int = 0  # 0: the chat id
    blocked: bool = False
    messages: list[StoredMessage] = field(default_factory=list)
    by_id: dict[int, StoredMessage] = field(default_factory=dict)
    last_message_id: int = 0
    bot_messages: int = 0

    @property
    def is_group(self) -> bool:
        return self.chat_id < 0

    def user_json(self) -> dict[str, object]:
        user: dict[str, object] = {
            "id": self.user_id or self.chat_id,
            "is_bot": False,
            "first_name": self.first_name,
        }
        _put(user, "last_name", self.last_name)
        _put(user, "username", self.username)
        _put(user, "language_code", self.language_code)
        return user

    def chat_json(self) -> dict[str, object]:
        if self.is_group:
            return {"id": self.chat_id, "type": "group", "title": f"Group {-self.chat_id}"}
        chat: dict[str, object] = {"id": self.chat_id, "first_name": self.first_name}
        _put(chat, "last_name", self.last_name)
        _put(chat, "username", self.username)
        chat["type"] = "private"
        return chat

    def add(self, message: StoredMessage) -> None:
        self.messages.append(message)
        self.by_id[message.message_id] = message
        if message.from_bot:
            self.bot_messages += 1


@dataclass(slots=True)
class CallbackQuery:
    query_id: str
    chat_id: int
    message_id: int
    data: str
    answered: bool = False
    answer: dict[str, object] = field(default_factory=dict)


class FakeTelegram:
    """The Bot API's behaviour for one bot, plus the controls tests need."""

    def __init__(
        self,
        *,
        token: str,
        bot_username: str,
        update_kinds: Iterable[str],
        config: FakeTelegramConfig,
        clock: Callable[[], float],
        wall_clock: Clock = time.time,
        webhook: WebhookOptions | None = None,
        first_update_id: int = 1,
    ) -> None:
        self.token = token
        self._first_update_id = first_update_id
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 1
        self.bot_username = bot_username
        self._update_kinds = frozenset(update_kinds)
        self._initial_config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._changed = asyncio.Condition()
        self._poll_generation = 0
        self._waiting = 0
        self._webhook_options = webhook or WebhookOptions()
        self._delivery: WebhookDelivery | None = None
        self._reset()

    def _reset(self) -> None:
        self.config = self._initial_config
        self._limiter = RateLimiter(
            per_chat_per_s=self.config.per_chat_per_s,
            global_per_s=self.config.global_per_s,
            group_per_minute=self.config.group_per_minute,
            paid_per_s=self.config.paid_per_s,
            clock=self._clock,
        )
        self._chats: dict[int, Chat] = {}
        # Pending updates by update_id, in the order they were made (ids only grow).
        self._updates: dict[int, dict[str, Any]] = {}
        self._next_update_id = self._first_update_id
        self._allowed_updates = self._update_kinds - NOT_DELIVERED_BY_DEFAULT
        self._webhook_url: str | None = None
        self._webhook_secret: str | None = None
        self._webhook_max_connections = 0
        self._webhook_errors: tuple[int, str] | None = None  # (date, message) of the last one
        self._commands: dict[str, dict[str, list[dict[str, str]]]] = {}
        self._callbacks: dict[str, CallbackQuery] = {}
        self._next_callback = _FIRST_CALLBACK_QUERY_ID
        self._calls: Counter[str] = Counter()
        self._conflicts = 0  # long polls ended by a newer getUpdates (409)
        self._rate_limited = 0
        self._retry_after_violations = 0
        self._paid_broadcasts = 0

    # ---- the bot's identity ----

    def bot_user(self, *, full: bool = False) -> dict[str, object]:
        user: dict[str, object] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "tggate",
            "username": self.bot_username,
        }
        if full:
            user |= {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        return user

    def count_call(self, method: str) -> None:
        self._calls[method] += 1

    # ---- Bot API: updates ----

    async def get_me(self, params: Mapping[str, Any]) -> object:
        return self.bot_user(full=True)

    async def get_updates(self, params: Mapping[str, Any]) -> object:
        offset: int = params.get("offset", 0)
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        timeout = min(max(int(params.get("timeout", 0)), 0), LONG_POLL_MAX_TIMEOUT_S)
        async with self._changed:
            if self._webhook_url:
                raise conflict(_WEBHOOK_ACTIVE)
            # A newer request always wins: the older one, if still waiting, ends with 409.
            self._poll_generation += 1
            mine = self._poll_generation
            self._changed.notify_all()
            self._confirm(offset)
            if "allowed_updates" in params:
                self._set_allowed_updates(params["allowed_updates"])
            batch = self._batch(limit)
            if batch or timeout == 0:
                return batch
            woken = await self._wait_for(
                lambda: (
                    self._poll_generation != mine or bool(self._webhook_url) or bool(self._updates)
                ),
                timeout_s=timeout,
            )
            if not woken:
                return []
            if self._poll_generation != mine:
                self._conflicts += 1
                raise conflict(_TERMINATED)
            if self._webhook_url:
                raise conflict(_WEBHOOK_ACTIVE)
            return self._batch(limit)

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            for update_id in [u for u in self._updates if u < offset]:
                del self._updates[update_id]
        elif offset < 0:
            for update_id in list(self._updates)[: max(0, len(self._updates) + offset)]:
                del self._updates[update_id]

    def _batch(self, limit: int) -> list[dict[str, Any]]:
        return [update for _, update in zip(range(limit), self._updates.values(), strict=False)]

    def _set_allowed_updates(self, kinds: Sequence[str]) -> None:
        # Like Telegram: an empty list means the default set; it applies to updates made from now.
        chosen = frozenset(kinds) & self._update_kinds
        self._allowed_updates = chosen or (self._update_kinds - NOT_DELIVERED_BY_DEFAULT)

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> tuple[int, bool]:
        update_id = self._next_update_id
        self._next_update_id += 1
        queued = kind in self._allowed_updates
        if queued:
            self._updates[update_id] = {"update_id": update_id, kind: payload}
            if self._delivery is not None:
                self._delivery.add(update_id)
        return update_id, queued

    def _delivered(self, update_id: int) -> None:
        """The webhook answered 2xx for the update: Telegram forgets it."""
        self._updates.pop(update_id, None)

    async def set_webhook(self, params: Mapping[str, Any]) -> object:
        url: str = params.get("url", "")
        if url:
            self._check_webhook_url(url)
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        # As the Bot API server does: out of range is the nearest end, not an error.
        max_connections = min(max(int(params.get("max_connections", 40)), 1), 100)
        async with self._changed:
            previous = self._take_delivery()
        if previous is not None:
            await previous.stop()  # its requests in flight are dropped: those updates stay
        async with self._changed:
            if params.get("drop_pending_updates"):
                self._updates.clear()
            if "allowed_updates" in params:
                self._set_allowed_updates(params["allowed_updates"])
            self._webhook_url = url or None
            self._webhook_secret = secret if url else None
            self._webhook_max_connections = max_connections if url else 0
            self._webhook_errors = None
            if url:
                self._delivery = self._new_delivery(url, secret, max_connections)
                self._delivery.start()
            self._changed.notify_all()  # a waiting getUpdates ends with 409
        return True

    def _check_webhook_url(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme.lower() not in ("https", "http") or not parsed.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if self._webhook_options.local:
            return
        if parsed.scheme.lower() != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if parsed.port not in _WEBHOOK_PORTS:
            raise bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )

    def _new_delivery(self, url: str, secret: str | None, max_connections: int) -> WebhookDelivery:
        # Imported with the first webhook: it brings aiohttp, a third of a CPU-second that a fake
        # serving getUpdates (the demo's) never needs (issue 11, item 7).
        from tggate_sandbox.fakes.telegram.webhook import WebhookDelivery

        options = self._webhook_options
        return WebhookDelivery(
            url=url,
            secret=secret,
            max_connections=max_connections,
            pending=self._updates,
            changed=self._changed,
            delivered=self._delivered,
            clock=self._clock,
            wall_clock=self._wall_clock,
            timeout_s=options.timeout_s,
            time_scale=options.time_scale,
        )

    def _take_delivery(self) -> WebhookDelivery | None:
        delivery, self._delivery = self._delivery, None
        if delivery is not None and delivery.last_error_message is not None:
            self._webhook_errors = (delivery.last_error_date or 0, delivery.last_error_message)
        return delivery

    async def delete_webhook(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            previous = self._take_delivery()
        if previous is not None:
            await previous.stop()
        async with self._changed:
            if params.get("drop_pending_updates"):
                self._updates.clear()
            self._webhook_url = None
            self._webhook_secret = None
            self._webhook_max_connections = 0
            self._changed.notify_all()
        return True

    async def close(self) -> None:
        """Stop delivering webhooks (the server shuts down)."""
        async with self._changed:
            previous = self._take_delivery()
        if previous is not None:
            await previous.stop()

    async def get_webhook_info(self, params: Mapping[str, Any]) -> object:
        info: dict[str, object] = {
            "url": self._webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        delivery = self._delivery
        error = (
            (delivery.last_error_date or 0, delivery.last_error_message)
            if delivery is not None and delivery.last_error_message is not None
            else self._webhook_errors
        )
        if error is not None:
            info["last_error_date"], info["last_error_message"] = error
        if self._webhook_url:
            info["max_connections"] = self._webhook_max_connections
            host = urllib.parse.urlsplit(self._webhook_url).hostname or ""
            info["ip_address"] = host if re.fullmatch(r"[\d.]+", host) else "<unknown>"
        if self._allowed_updates != self._update_kinds - NOT_DELIVERED_BY_DEFAULT:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    def webhook_stats(self) -> dict[str, object]:
        """What the webhook delivery did (the test API's view; not in the Bot API)."""
        delivery = self._delivery
        if delivery is None:
            return {"url": None}
        return {
            "url": delivery.url,
            "max_connections": delivery.max_connections,
            "requests": delivery.requests,
            "peak_in_flight": delivery.peak_in_flight,
            "attempts": {str(k): v for k, v in delivery.attempts.items()},
        }

    async def log_out(self, params: Mapping[str, Any]) -> object:
        return True

    # ---- Bot API: messages ----

    async def send_message(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            chat = self._chat_for_bot(params["chat_id"])
            text, entities = _formatted(params["text"], params)
            self._check_reply(chat, params)
            self._check_flood(chat.chat_id, paid=bool(params.get("allow_paid_broadcast")))
            chat.last_message_id += 1
            message = StoredMessage(
                message_id=chat.last_message_id,
                from_bot=True,
                date=int(self._wall_clock()),
                text=text,
                entities=entities,
                reply_markup=params.get("reply_markup"),
            )
            chat.add(message)
            self._changed.notify_all()
            return self._message_json(chat, message)

    async def edit_message_text(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            chat, message = self._message_to_edit(params)
            text, entities = _formatted(params["text"], params)
            markup = params.get("reply_markup")
            if (text, entities, markup) == (message.text, message.entities, message.inline_markup):
                raise bad_request(_NOT_MODIFIED)
            message.text, message.entities, message.reply_markup = text, entities, markup
            message.edit_date = int(self._wall_clock())
            self._changed.notify_all()
            return self._message_json(chat, message)

    async def edit_message_reply_markup(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            chat, message = self._message_to_edit(params)
            markup = params.get("reply_markup")
            if markup == message.inline_markup:
                raise bad_request(_NOT_MODIFIED)
            message.reply_markup = markup
            message.edit_date = int(self._wall_clock())
            self._changed.notify_all()
            return self._message_json(chat, message)

    async def delete_message(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            chat = self._chat_for_bot(params["chat_id"])
            message = chat.by_id.get(params["message_id"])
            if message is None or message.deleted:
                raise bad_request("message to delete not found")
            message.deleted = True
            self._changed.notify_all()
            return True

    async def send_chat_action(self, params: Mapping[str, Any]) -> object:
        self._chat_for_bot(params["chat_id"])
        return True

    async def answer_callback_query(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            query = self._callbacks.get(params["callback_query_id"])
            if query is None or query.answered:
                raise bad_request(_QUERY_INVALID)
            query.answered = True
            query.answer = {
                key: params[key]
                for key in ("text", "show_alert", "url", "cache_time")
                if key in params
            }
            self._changed.notify_all()
            return True

    def _chat_for_bot(self, chat_id: int | str) -> Chat:
        chat = None
        if isinstance(chat_id, int):
            chat = self._chats.get(chat_id)
        elif re.fullmatch(r"[+-]?\d+", chat_id.strip()):
            chat = self._chats.get(int(chat_id))
        if chat is None:
            # A bot can only write to people who wrote to it first (and @username is for channels).
            raise bad_request("chat not found")
        if chat.blocked:
            raise forbidden("bot was blocked by the user")
        return chat

    def _message_to_edit(self, params: Mapping[str, Any]) -> tuple[Chat, StoredMessage]:
        if "inline_message_id" in params:
            raise bad_request("MESSAGE_ID_INVALID")  # no inline mode in the fake
        if "chat_id" not in params:
            raise bad_request("chat_id is empty")
        if "message_id" not in params:
            raise bad_request("message identifier is not specified")
        chat = self._chat_for_bot(params["chat_id"])
        message = chat.by_id.get(params["message_id"])
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    def _check_reply(self, chat: Chat, params: Mapping[str, Any]) -> None:
        reply = params.get("reply_parameters") or {}
        target = reply.get("message_id", params.get("reply_to_message_id"))
        if target is None:
            return
        tolerant = reply.get(
            "allow_sending_without_reply", params.get("allow_sending_without_reply", False)
        )
        message = chat.by_id.get(target)
        if (message is None or message.deleted) and not tolerant:
            raise bad_request("message to be replied not found")

    def _check_flood(self, chat_id: int, *, paid: bool = False) -> None:
        if not self.config.rate_limits:
            self._paid_broadcasts += paid
            return
        verdict = self._limiter.check(chat_id, paid=paid)
        if verdict.retry_after is None:
            self._paid_broadcasts += verdict.paid
            return
        self._rate_limited += 1
        if verdict.ignored_retry_after:
            self._retry_after_violations += 1
        raise too_many_requests(verdict.retry_after)

    def _message_json(self, chat: Chat, message: StoredMessage) -> dict[str, object]:
        result: dict[str, object] = {
            "message_id": message.message_id,
            "from": self.bot_user() if message.from_bot else chat.user_json(),
            "chat": chat.chat_json(),
            "date": message.date,
        }
        _put(result, "edit_date", message.edit_date)
        result["text"] = message.text
        if message.entities:
            result["entities"] = message.entities
        _put(result, "reply_markup", message.inline_markup)
        return result

    # ---- Bot API: commands ----

    async def set_my_commands(self, params: Mapping[str, Any]) -> object:
        commands: list[dict[str, str]] = params["commands"]
        if len(commands) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        async with self._changed:
            scope = self._scope_key(params.get("scope"))
            language = params.get("language_code", "")
            by_language = self._commands.setdefault(scope, {})
            if commands:
                by_language[language] = [
                    {"command": c["command"], "description": c["description"]} for c in commands
                ]
            else:
                by_language.pop(language, None)
            return True

    async def get_my_commands(self, params: Mapping[str, Any]) -> object:
        scope = self._scope_key(params.get("scope"))
        return self._commands.get(scope, {}).get(params.get("language_code", ""), [])

    async def delete_my_commands(self, params: Mapping[str, Any]) -> object:
        async with self._changed:
            scope = self._scope_key(params.get("scope"))
            self._commands.get(scope, {}).pop(params.get("language_code", ""), None)
            return True

    def _scope_key(self, scope: Mapping[str, Any] | None) -> str:
        if scope is None:
            return "default"
        kind: str = scope["type"]
        if "chat_id" not in scope:
            return kind
        chat_id = self._chat_for_scope(scope["chat_id"])
        if "user_id" in scope:
            return f"{kind}:{chat_id}:{scope['user_id']}"
        return f"{kind}:{chat_id}"

    def _chat_for_scope(self, chat_id: int | str) -> int:
        if isinstance(chat_id, str) and re.fullmatch(r"[+-]?\d+", chat_id.strip()):
            chat_id = int(chat_id)
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise bad_request("chat not found")
        return chat_id

    # ---- test API ----

    async def inject(self, messages: Sequence[InjectedMessage]) -> list[dict[str, object]]:
        async with self._changed:
            results = [self._inject_one(message) for message in messages]
            self._changed.notify_all()
            return results

    def _inject_one(self, injected: InjectedMessage) -> dict[str, object]:
        chat = self._chats.get(injected.chat_id)
        if chat is None:
            chat = self._chats[injected.chat_id] = Chat(injected.chat_id, injected.first_name)
        if chat.is_group:
            chat.user_id = injected.user_id or -chat.chat_id
        chat.first_name = injected.first_name
        chat.last_name = injected.last_name or chat.last_name
        chat.username = injected.username or chat.username
        chat.language_code = injected.language_code or chat.language_code
        chat.last_message_id += 1
        message = StoredMessage(
            message_id=chat.last_message_id,
            from_bot=False,
            date=int(self._wall_clock()),
            text=injected.text,
            entities=_command_entities(injected.text),
        )
        chat.add(message)
        update_id, queued = self._enqueue("message", self._message_json(chat, message))
        return {"update_id": update_id, "message_id": message.message_id, "queued": queued}

    async def press(self, chat_id: int, message_id: int, data: str) -> dict[str, object]:
        async with self._changed:
            chat = self._chats.get(chat_id)
            if chat is None:
                raise TestApiError(404, f"chat {chat_id} not found")
            message = chat.by_id.get(message_id)
            if message is None or message.deleted or not message.from_bot:
                raise TestApiError(404, f"no bot message {message_id} in chat {chat_id}")
            markup = message.inline_markup or {"inline_keyboard": []}
            datas = [
                button.get("callback_data") for row in markup["inline_keyboard"] for button in row
            ]
            if data not in datas:
                raise TestApiError(
                    400, f"message {message_id} has no inline button with callback_data {data!r}"
                )
            query_id = str(self._next_callback)
            self._next_callback += 1
            update_id, queued = self._enqueue(
                "callback_query",
                {
                    "id": query_id,
                    "from": chat.user_json(),
                    "message": self._message_json(chat, message),
                    "chat_instance": str((chat_id * 2_654_435_761 + self.bot_id) % 2**63),
                    "data": data,
                },
            )
            self._callbacks[query_id] = CallbackQuery(query_id, chat_id, message_id, data)
            self._changed.notify_all()
            return {"update_id": update_id, "callback_query_id": query_id, "queued": queued}

    async def block(self, chat_id: int, *, blocked: bool) -> None:
        async with self._changed:
            chat = self._chats.get(chat_id)
            if chat is None:
                raise TestApiError(404, f"chat {chat_id} not found")
            chat.blocked = blocked

    def messages(
        self, chat_id: int, *, bot_only: bool = False, after: int = 0
    ) -> list[dict[str, object]]:
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [
            _test_view(message)
            for message in chat.messages
            if message.message_id > after and (message.from_bot or not bot_only)
        ]

    def knows_chat(self, chat_id: int) -> bool:
        return chat_id in self._chats

    def chats(self) -> list[dict[str, object]]:
        return [
            {
                "chat_id": chat.chat_id,
                "first_name": chat.first_name,
                "username": chat.username,
                "language_code": chat.language_code,
                "blocked": chat.blocked,
                "messages": len(chat.messages),
                "bot_messages": chat.bot_messages,
            }
            for chat in self._chats.values()
        ]

    def callback_queries(self) -> list[dict[str, object]]:
        return [
            {
                "callback_query_id": query.query_id,
                "chat_id": query.chat_id,
                "message_id": query.message_id,
                "data": query.data,
                "answered": query.answered,
                **query.answer,
            }
            for query in self._callbacks.values()
        ]

    async def wait_for_bot_messages(
        self, chat_id: int, *, count: int, timeout_s: float, after: int = 0
    ) -> tuple[list[dict[str, object]], bool]:
        """Bot messages of the chat once there are at least `count` (after message `after`)."""

        def enough() -> bool:
            chat = self._chats.get(chat_id)
            if chat is None:
                return count <= 0
            if after <= 0:
                return chat.bot_messages >= count
            return sum(1 for m in chat.messages if m.from_bot and m.message_id > after) >= count

        async with self._changed:
            enough_now = await self._wait_for(enough, timeout_s=timeout_s)
            return self.messages(chat_id, bot_only=True, after=after), enough_now

    async def wait_until(self, ready: Callable[[], bool], *, timeout_s: float) -> bool:
        """Wait until `ready()` holds (checked under the lock after every change); False on timeout.

        The web chat's long poll uses it to wake up on any change to a chat, edits included.
        """
        async with self._changed:
            return await self._wait_for(ready, timeout_s=timeout_s)

    async def _wait_for(self, ready: Callable[[], bool], *, timeout_s: float) -> bool:
        """Holding the lock: wait until `ready()`; False on timeout. Counted in `waiting` from
        before the lock is let go, so a change made once a test saw the count wakes this wait."""
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout_s):
                await self._changed.wait_for(ready)
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        return True

    def stats(self) -> dict[str, object]:
        return {
            "calls": dict(self._calls),
            "rate_limited": self._rate_limited,
            "retry_after_violations": self._retry_after_violations,
            # sendMessage with allow_paid_broadcast that went (0.1 Telegram Stars each).
            "paid_broadcasts": self._paid_broadcasts,
            "pending_updates": len(self._updates),
            "waiting": self._waiting,
            "poll_conflicts": self._conflicts,
            "webhook_requests": self._delivery.requests if self._delivery is not None else 0,
            "next_update_id": self._next_update_id,
            "webhook_url": self._webhook_url,
            "commands": {scope: dict(by_lang) for scope, by_lang in self._commands.items()},
            "chats": len(self._chats),
            "callback_queries": {
                "issued": len(self._callbacks),
                "answered": sum(1 for q in self._callbacks.values() if q.answered),
            },
            "config": self.config_json(),
        }

    def config_json(self) -> dict[str, object]:
        return {
            "rate_limits": self.config.rate_limits,
            "per_chat_per_s": self.config.per_chat_per_s,
            "global_per_s": self.config.global_per_s,
            "group_per_minute": self.config.group_per_minute,
            "paid_per_s": self.config.paid_per_s,
        }

    async def configure(
        self,
        *,
        rate_limits: bool | None = None,
        per_chat_per_s: float | None = None,
        global_per_s: float | None = None,
        group_per_minute: int | None = None,
        paid_per_s: float | None = None,
    ) -> None:
        async with self._changed:
            config = self.config
            if rate_limits is not None:
                config = replace(config, rate_limits=rate_limits)
            if per_chat_per_s is not None:
                config = replace(config, per_chat_per_s=per_chat_per_s)
            if global_per_s is not None:
                config = replace(config, global_per_s=global_per_s)
            if group_per_minute is not None:
                config = replace(config, group_per_minute=group_per_minute)
            if paid_per_s is not None:
                config = replace(config, paid_per_s=paid_per_s)
            self._limiter.configure(
                per_chat_per_s=config.per_chat_per_s,
                global_per_s=config.global_per_s,
                group_per_minute=config.group_per_minute,
                paid_per_s=config.paid_per_s,
            )
            self.config = config

    async def reset(self) -> None:
        await self.close()
        async with self._changed:
            self._reset()
            self._changed.notify_all()


def _put(target: dict[str, object], key: str, value: object) -> None:
    if value is not None:
        target[key] = value


def _formatted(raw: str, params: Mapping[str, Any]) -> tuple[str, list[dict[str, object]]]:
    """Text and entities as Telegram stores them: parsed, trimmed, and within the limits."""
    if "entities" in params:
        text, entities = raw, list(params["entities"])
    else:
        try:
            text, entities = parse_entities(raw, params.get("parse_mode"))
        except UnsupportedParseMode:
            raise bad_request("unsupported parse_mode") from None
        except EntityParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    text, entities = _trim(text, entities)
    if not text:
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return text, entities


def _trim(text: str, entities: list[dict[str, object]]) -> tuple[str, list[dict[str, object]]]:
    """Telegram drops leading and trailing whitespace, moving the entities with the text."""
    left = text[: len(text) - len(text.lstrip())]
    trimmed = text.strip()
    if not left and len(trimmed) == len(text):
        return text, entities
    shift, end = utf16_length(left), utf16_length(trimmed)
    kept: list[dict[str, object]] = []
    for entity in entities:
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            continue
        start, stop = max(offset - shift, 0), min(offset - shift + length, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return trimmed, kept


def _command_entities(text: str) -> list[dict[str, object]]:
    return [
        {
            "type": "bot_command",
            "offset": utf16_length(text[: match.start()]),
            "length": utf16_length(match.group()),
        }
        for match in _BOT_COMMAND.finditer(text)
    ]


def _test_view(message: StoredMessage) -> dict[str, object]:
    return {
        "message_id": message.message_id,
        "text": message.text,
        "entities": message.entities,
        "reply_markup": message.reply_markup,
        "date": message.date,
        "edited": message.edit_date is not None,
        "deleted": message.deleted,
        "from_bot": message.from_bot,
        "monotonic": message.monotonic,
    }
