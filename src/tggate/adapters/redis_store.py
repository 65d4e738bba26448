"""The Redis `SessionStore` (docs/scenarios.md: #sessions, #atomic, #idempotency, #outbox, #lease).

Layout (prefix `tggate`; `{42}` is a hash tag, so one chat's keys share a Cluster slot):

    tggate:{42}:session            hash: status, rev, and the session's fields
    tggate:{42}:update:<update_id> "pending" while claimed, "done:<answer JSON>" once finished
    tggate:{42}:lock:<name>        the owner of a short lock (single-flight refresh)
    tggate:index:anonymous         set of chat ids (may hold expired ones: pruned while read)
    tggate:index:authorized        set of chat ids
    tggate:outbox                  hash: message id -> [seq, message JSON (with its kind)]
    tggate:outbox:seq              counter giving outbox messages their order
    tggate:delivered:<id>          "1" while an acked id is remembered
    tggate:lease:<name>            the instance holding a lease

Every multi-key change is one Lua script (see `redis_scripts`). `replace` spans the chat's keys
and the global index/outbox keys, so it needs a single Redis (or Sentinel), not Cluster.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from tggate.adapters import redis_scripts
from tggate.adapters.store_checks import require_positive, require_shard
from tggate.adapters.token_cipher import (
    TokenCipher,
    TokenCipherError,
    open_sealed,
    open_session_fields,
)
from tggate.core.ports import OutboxKind, OutboxMessage
from tggate.core.replies import Button, Reply
from tggate.core.session import (
    Anonymous,
    Authorized,
    LoginPrompt,
    LostSession,
    Session,
    Status,
    StoredSession,
)

if TYPE_CHECKING:
    from tggate.core.ports import SessionStore

__all__ = ["CorruptRecord", "RedisKeys", "RedisSessionStore"]

_PENDING = "pending"
_DONE = "done:"


class CorruptRecord(ValueError):
    """A stored value does not have the shape this store writes."""


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The one place that names keys."""

    prefix: str = "tggate"

    def session(self, chat_id: int) -> str:
        return f"{self.prefix}:{{{chat_id}}}:session"

    def update(self, chat_id: int, update_id: int) -> str:
        return f"{self.prefix}:{{{chat_id}}}:update:{update_id}"

    def lock(self, chat_id: int, name: str) -> str:
        return f"{self.prefix}:{{{chat_id}}}:lock:{name}"

    def index(self, status: Status) -> str:
        return f"{self.prefix}:index:{status.value}"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def outbox_seq(self) -> str:
        return f"{self.prefix}:outbox:seq"

    def delivered(self, message_id: str) -> str:
        return f"{self.prefix}:delivered:{message_id}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"


class RedisSessionStore:
    """Sessions, idempotency records, locks, the outbox and leases in one Redis.

    Works with clients built with or without `decode_responses`.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "tggate",
        delivered_ttl_s: int = 86400,
        ping_timeout_s: float = 2.0,
        scan_count: int = 500,
        cipher: TokenCipher | None = None,
    ) -> None:
        require_positive(delivered_ttl_s=delivered_ttl_s, scan_count=scan_count)
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._delivered_ttl_s = delivered_ttl_s
        self._ping_timeout_s = ping_timeout_s
        self._scan_count = scan_count
        self._cipher = cipher
        self._replace = redis.register_script(redis_scripts.REPLACE_SESSION)
        self._add_outbox = redis.register_script(redis_scripts.ADD_OUTBOX)
        self._ack_outbox = redis.register_script(redis_scripts.ACK_OUTBOX)
        self._claim_update = redis.register_script(redis_scripts.CLAIM_UPDATE)
        self._delete_if_equals = redis.register_script(redis_scripts.DELETE_IF_EQUALS)
        self._lease = redis.register_script(redis_scripts.LEASE)
        self._prune_index = redis.register_script(redis_scripts.PRUNE_INDEX)

    @property
    def keys(self) -> RedisKeys:
        return self._keys

    # -- sessions

    async def load(self, chat_id: int) -> StoredSession | None:
        raw: Mapping[Any, Any] = await self._redis.hgetall(self._keys.session(chat_id))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        try:
            opened = open_session_fields(self._cipher, fields)
        except TokenCipherError:
            return _lost_session(chat_id, fields)
        return _decode_session(chat_id, opened)

    async def replace(
        self,
        chat_id: int,
        session: Session | None,
        *,
        expect: str | None,
        ttl_s: int | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> str | None:
        if ttl_s is not None:
            require_positive(ttl_s=ttl_s)
        revision = "" if session is None else secrets.token_hex(8)
        if session is not None and self._cipher is not None:
            session = self._cipher.seal_session(session)
        fields = [] if session is None else _encode_session(session, revision)
        own, other = (
            (Status.ANONYMOUS, Status.AUTHORIZED)
            if session is None or session.status is Status.ANONYMOUS
            else (Status.AUTHORIZED, Status.ANONYMOUS)
        )
        keys = [
            self._keys.session(chat_id),
            self._keys.index(own),
            self._keys.index(other),
            self._keys.outbox,
            self._keys.outbox_seq,
            *(self._keys.delivered(m.id) for m in outbox),
        ]
        args: list[str | int] = [
            expect or "",
            chat_id,
            0 if ttl_s is None or session is None else ttl_s * 1000,
            len(fields) // 2,
            *fields,
            *_outbox_args(outbox),
        ]
        done = await self._replace(keys=keys, args=args)
        return revision if done else None

    async def chats(self, status: Status, *, shard: int = 0, shards: int = 1) -> AsyncIterator[int]:
        require_shard(shard, shards)
        index = self._keys.index(status)
        seen: set[int] = set()
        cursor = 0
        while True:
            cursor, members = await self._redis.sscan(index, cursor, count=self._scan_count)
            # SSCAN may repeat members; each chat is yielded once per iteration.
            candidates = sorted(
                {c for c in map(_int, members) if c % shards == shard and c not in seen}
            )
            if candidates:
                live = await self._prune_index(
                    keys=[index, *map(self._keys.session, candidates)],
                    args=[status.value, *candidates],
                )
                for chat_id in map(_int, live):
                    seen.add(chat_id)
                    yield chat_id
            if cursor == 0:
                return

    # -- idempotency of /v1/commands by update_id

    async def claim_update(self, chat_id: int, update_id: int, *, ttl_s: int) -> bool | str:
        require_positive(ttl_s=ttl_s)
        key = self._keys.update(chat_id, update_id)
        found = await self._claim_update(keys=[key], args=[_PENDING, ttl_s])
        if isinstance(found, int):
            return True
        value = "" if found is None else _text(found)
        if not value.startswith(_DONE):
            return False
        try:
            # Sealed like the tokens: an answer may list personal data (issue 9, finding 7).
            return open_sealed(self._cipher, value.removeprefix(_DONE))
        except TokenCipherError:
            # Sealed with a key we no longer have: the answer is lost. Handled anew rather than
            # refused on every retry (docs/state-machine.md#lost-sessions).
            await self._delete_if_equals(keys=[key], args=[value])
            return await self.claim_update(chat_id, update_id, ttl_s=ttl_s)

    async def finish_update(self, chat_id: int, update_id: int, answer: str, *, ttl_s: int) -> None:
        require_positive(ttl_s=ttl_s)
        if self._cipher is not None:
            answer = self._cipher.seal_text(answer)
        await self._redis.set(self._keys.update(chat_id, update_id), _DONE + answer, ex=ttl_s)

    async def release_update(self, chat_id: int, update_id: int) -> None:
        await self._delete_if_equals(keys=[self._keys.update(chat_id, update_id)], args=[_PENDING])

    # -- single-flight refresh

    async def acquire_lock(self, chat_id: int, name: str, *, owner: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        acquired = await self._redis.set(self._keys.lock(chat_id, name), owner, nx=True, px=ttl_ms)
        return bool(acquired)

    async def release_lock(self, chat_id: int, name: str, *, owner: str) -> None:
        await self._delete_if_equals(keys=[self._keys.lock(chat_id, name)], args=[owner])

    # -- the outbox

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        keys = [
            self._keys.outbox,
            self._keys.outbox_seq,
            *(self._keys.delivered(m.id) for m in messages),
        ]
        await self._add_outbox(keys=keys, args=_outbox_args(messages))

    async def pending_outbox(
        self, *, kind: OutboxKind | None = None, shard: int = 0, shards: int = 1
    ) -> list[OutboxMessage]:
        require_shard(shard, shards)
        found: dict[str, tuple[int, OutboxMessage]] = {}
        cursor = 0
        while True:
            cursor, entries = await self._redis.hscan(
                self._keys.outbox, cursor, count=self._scan_count
            )
            if not isinstance(entries, dict):  # a list only with no_values=True
                raise CorruptRecord("HSCAN answered without values")
            for value in entries.values():
                seq, message = _decode_outbox_entry(_text(value))
                if message.chat_id % shards == shard and kind in (None, message.kind):
                    found[message.id] = (seq, message)
            if cursor == 0:
                break
        return [message for _, message in sorted(found.values(), key=lambda e: e[0])]

    async def ack_outbox(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        removed = await self._ack_outbox(
            keys=[self._keys.outbox, *map(self._keys.delivered, ids)],
            args=[self._delivered_ttl_s, *ids],
        )
        return int(removed)

    # -- the poller lease

    async def lease(self, name: str, *, instance: str, ttl_ms: int) -> bool:
        require_positive(ttl_ms=ttl_ms)
        granted = await self._lease(keys=[self._keys.lease(name)], args=[instance, ttl_ms])
        return bool(granted)

    async def ping(self) -> bool:
        """True if Redis answers within `ping_timeout_s`; never raises (for /readyz)."""
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                return bool(await self._redis.ping())
        except Exception:
            return False


# ---- encoding


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise CorruptRecord(f"expected a string from Redis, got {type(value).__name__}")


def _int(value: object) -> int:
    return int(value) if isinstance(value, int) else int(_text(value))


def _encode_session(session: Session, revision: str) -> list[str]:
    """Field/value pairs of the session hash; an absent optional value is stored as ""."""
    fields = {"status": session.status.value, "rev": revision, "language": session.language}
    match session:
        case Anonymous(login_token=token, login_type=login_type, prompt=prompt):
            fields |= {
                "login_token": token,
                "login_type": login_type,
                "prompt_text": prompt.text,
                "prompt_url": prompt.url or "",
                "prompt_code": prompt.code or "",
            }
        case Authorized(access_token=access, refresh_token=refresh):
            fields |= {"access_token": access, "refresh_token": refresh}
    return [item for pair in fields.items() for item in pair]


def _lost_session(chat_id: int, fields: Mapping[str, str]) -> StoredSession:
    """A session whose sealed fields no configured key opens; status, language and revision are
    never sealed, so it can still be deleted by a compare-and-set and the chat told so."""
    try:
        was = Status(fields["status"])
        revision = fields["rev"]
    except (KeyError, ValueError):
        raise CorruptRecord(f"session of chat {chat_id} has no valid status") from None
    return StoredSession(LostSession(was, fields.get("language") or "ru"), revision)


def _decode_session(chat_id: int, fields: Mapping[str, str]) -> StoredSession:
    try:
        status = fields["status"]
        revision = fields["rev"]
        session: Session
        if status == Status.ANONYMOUS.value:
            session = Anonymous(
                login_token=fields["login_token"],
                login_type=fields["login_type"],
                prompt=LoginPrompt(
                    text=fields["prompt_text"],
                    url=fields.get("prompt_url") or None,
                    code=fields.get("prompt_code") or None,
                ),
                language=fields.get("language") or "ru",
            )
        elif status == Status.AUTHORIZED.value:
            session = Authorized(
                access_token=fields["access_token"],
                refresh_token=fields["refresh_token"],
                language=fields.get("language") or "ru",
            )
        else:
            raise CorruptRecord(f"session of chat {chat_id} has unknown status {status!r}")
    except KeyError as missing:
        # Field names only: the values are tokens and must not reach a log.
        raise CorruptRecord(f"session of chat {chat_id} lacks field {missing}") from None
    return StoredSession(session=session, revision=revision)


def _encode_outbox_message(message: OutboxMessage) -> str:
    return json.dumps(
        {
            "id": message.id,
            "chat_id": message.chat_id,
            "kind": message.kind.value,
            "text": message.reply.text,
            "buttons": [[_encode_button(b) for b in row] for row in message.reply.buttons],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _encode_button(button: Button) -> dict[str, str]:
    if button.url is not None:
        return {"text": button.text, "url": button.url}
    return {"text": button.text, "command": button.command or ""}


def _decode_button(data: Mapping[str, Any]) -> Button:
    text, url, command = data["text"], data.get("url"), data.get("command")
    optional = (url, command)
    if not isinstance(text, str) or not all(v is None or isinstance(v, str) for v in optional):
        raise TypeError("button fields must be strings")
    return Button(text=text, url=url, command=command)


def _legacy_kind(message_id: str) -> OutboxKind:
    # Entries written before messages carried their kind had it as the id's prefix ("l:" for a
    # login message, "n:" for a notification); read so they are still delivered after an upgrade.
    return OutboxKind.LOGIN if message_id.startswith("l:") else OutboxKind.NOTIFICATION


def _decode_outbox_message(data: Any) -> OutboxMessage:
    try:
        buttons = tuple(tuple(map(_decode_button, row)) for row in data.get("buttons", ()))
        message_id, chat_id, text = data["id"], data["chat_id"], data["text"]
        kind = data.get("kind")
        kind = _legacy_kind(message_id) if kind is None else OutboxKind(kind)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise CorruptRecord(f"malformed outbox message: {error!r}") from None
    if not (isinstance(message_id, str) and type(chat_id) is int and isinstance(text, str)):
        raise CorruptRecord(f"malformed outbox message {message_id!r}")
    return OutboxMessage(
        id=message_id, chat_id=chat_id, kind=kind, reply=Reply(text=text, buttons=buttons)
    )


def _decode_outbox_entry(value: str) -> tuple[int, OutboxMessage]:
    try:
        seq, data = json.loads(value)
    except (TypeError, ValueError) as error:
        raise CorruptRecord(f"malformed outbox entry: {error}") from None
    if type(seq) is not int:
        raise CorruptRecord("outbox entry without a sequence number")
    return seq, _decode_outbox_message(data)


def _outbox_args(messages: Sequence[OutboxMessage]) -> list[str]:
    return [item for m in messages for item in (m.id, _encode_outbox_message(m))]


if TYPE_CHECKING:
    _implements_port: type[SessionStore] = RedisSessionStore
