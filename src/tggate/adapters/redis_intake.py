"""The webhook intake's queues and shared sending limits in Redis (docs/webhook.md#queues).

Layout (prefix `tggate`). A chat belongs to the bucket `chat_id % buckets`; every key of a chat and
of its bucket carries the bucket's hash tag (`{b5}`), so each script below touches one Cluster
slot; the global keys, the sending permits, are each a script's only key.

    tggate:{b5}:intake:queue:42   list: the chat's updates, oldest first ("<update_id>:<payload>")
    tggate:{b5}:intake:seen:42    sorted set: the update_ids the chat received (each its own
                                  score), the newest `seen_keep`, for `seen_ttl_s` after the last
    tggate:{b5}:intake:owner:42   the token of the claim on the chat
    tggate:{b5}:intake:sent:42    how many replies of the queue's head Telegram accepted
    tggate:{b5}:intake:due        sorted set: chats with updates -> when they may be claimed
                                  (ms; a held chat's score is when its claim lapses)
    tggate:{b5}:pace:42           the chat's sending turn (a ticket's token, or "held")
    tggate:{b5}:pace:group:-42    sorted set: a group's messages of the last minute -> when each
                                  one lapses (ms); groups only (negative ids)
    tggate:pace:permits           sorted set: free sending permits -> when each one lapses (ms)
    tggate:pace:all               sorted set: with paid broadcasts on, permits of either kind

Time in the scripts is Redis' own (`TIME`): the replicas' clocks never decide a claim or a turn.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tggate.client.ratelimit import GROUP_WINDOW_S, is_group
from tggate.intake.base import Backlog, Claim, Entry, QueueUnavailable, Stored, Ticket

__all__ = ["INTAKE_BUCKETS", "IntakeKeys", "RedisIntakeQueue", "RedisSendPace"]

# Enough buckets to spread the due sets over the masters of a Cluster; few enough that looking
# for waiting chats (one small script per bucket, pipelined) stays cheap when the bot is idle.
INTAKE_BUCKETS = 64

_T = TypeVar("_T")

# Every script reads the time once, in milliseconds, as a whole number written without an
# exponent (Lua would print 1.7e+12 for a large double).
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function ms(value) return string.format('%.0f', value) end
"""

# KEYS[1] queue  KEYS[2] seen  KEYS[3] due
# ARGV[1] update_id  ARGV[2] the queue item  ARGV[3] chat_id  ARGV[4] seen TTL (ms)
# ARGV[5] how many seen update_ids are kept  ARGV[6] queue limit
# Returns 1 stored (the chat became due), 2 stored (it was due already), 0 repeat, 3 full.
ENQUEUE = (
    _NOW
    + """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[6]) then return 3 end
-- Scored by the id itself, so the oldest go first. A chat's ids only grow while its ids are
-- remembered (Telegram may pick new ones at random only after a week without any update).
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
local keep = tonumber(ARGV[5])
if redis.call('ZCARD', KEYS[2]) > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('RPUSH', KEYS[1], ARGV[2])
if redis.call('ZADD', KEYS[3], 'NX', ms(now), ARGV[3]) == 1 then return 1 end
return 2
"""
)

# KEYS[1] due  KEYS[2] owner  KEYS[3] queue  KEYS[4] sent
# ARGV[1] chat_id  ARGV[2] token  ARGV[3] claim TTL (ms)
# Returns {head, sent, previous owner} or false (nothing to do, or held by a live claim).
CLAIM = (
    _NOW
    + """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > now then return false end
local head = redis.call('LINDEX', KEYS[3], 0)
if not head then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2], KEYS[4])
  return false
end
redis.call('ZADD', KEYS[1], ms(now + tonumber(ARGV[3])), ARGV[1])
local previous = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[2], ARGV[2])
return {head, redis.call('GET', KEYS[4]) or '0', previous}
"""
)

# KEYS as CLAIM.  ARGV[1] chat_id  ARGV[2] token  ARGV[3] claim TTL (ms)  ARGV[4] the head handled
# (only that one is dropped: a claim that lapsed and came back to its holder keeps the rest)
# Returns {next head}, {""} when the queue is empty (the chat is let go), false if not the owner.
DONE = (
    _NOW
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return false end
if redis.call('LINDEX', KEYS[3], 0) == ARGV[4] then redis.call('LPOP', KEYS[3]) end
redis.call('DEL', KEYS[4])
local head = redis.call('LINDEX', KEYS[3], 0)
if not head then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return {''}
end
redis.call('ZADD', KEYS[1], ms(now + tonumber(ARGV[3])), ARGV[1])
return {head}
"""
)

# KEYS[1] owner  KEYS[2] sent.  ARGV[1] token  ARGV[2] replies sent.  Returns 1, or 0 if not owner.
RECORD_SENT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

# KEYS[1] due  KEYS[2..n] the owner key of each chat.  ARGV[1] claim TTL (ms), then a
# (chat_id, token) pair per owner key.  Returns the chat ids whose claim is someone else's.
RENEW = (
    _NOW
    + """
local lost = {}
for i = 2, #KEYS do
  local chat, token = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if redis.call('GET', KEYS[i]) == token then
    redis.call('ZADD', KEYS[1], ms(now + tonumber(ARGV[1])), chat)
  else
    lost[#lost + 1] = chat
  end
end
return lost
"""
)

# KEYS[1] due  KEYS[2] owner.  ARGV[1] chat_id  ARGV[2] token.  The chat may be claimed at once.
RELEASE = (
    _NOW
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZADD', KEYS[1], 'XX', ms(now), ARGV[1])
return 1
"""
)

# KEYS[1] due.  ARGV[1] limit.  The chats nobody holds now.
DUE = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms(now), 'LIMIT', 0, tonumber(ARGV[1]))
"""
)

# KEYS[1] the chat's turn  KEYS[2] the group's window (groups only).  ARGV[1] token
# ARGV[2] longest hold (ms)  ARGV[3] a group's messages per window  ARGV[4] the window (ms)
# ARGV[5] how often to look again while the turn's message is in flight (ms).
# Returns 0 when the turn (and for a group a place in its window) is the caller's, else the
# milliseconds to wait. A full group takes nothing: the chat's turn is not held for a minute.
RESERVE_CHAT = (
    _NOW
    + """
local group = KEYS[2]
if group then
  redis.call('ZREMRANGEBYSCORE', group, '-inf', ms(now))
  if redis.call('ZCARD', group) >= tonumber(ARGV[3]) then
    -- Until the first place lapses; a message still in flight lapses one window after its
    -- answer, sooner than its hold: look again after one window at the latest.
    local first = redis.call('ZRANGE', group, 0, 0, 'WITHSCORES')
    return math.max(1, math.min(tonumber(first[2]) - now, tonumber(ARGV[4])))
  end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local wait = redis.call('PTTL', KEYS[1])
  -- A message in flight holds the turn until Telegram answers (its PTTL is the longest hold,
  -- not when that comes): look again soon. A pause ("held") ends at its PTTL.
  if redis.call('GET', KEYS[1]) ~= 'held' then wait = math.min(wait, tonumber(ARGV[5])) end
  return math.max(1, wait)
end
if group then
  redis.call('ZADD', group, ms(now + tonumber(ARGV[2])), ARGV[1])
  redis.call('PEXPIRE', group, tonumber(ARGV[2]) + tonumber(ARGV[4]))
end
return 0
"""
)

# KEYS[1] the chat's turn  KEYS[2] the group's window (groups only).  ARGV[1] token
# ARGV[2] pause before the chat's next message (ms)  ARGV[3] the group's window (ms)
# ARGV[4] 1: Telegram took the message (it counts in the group's minute), 0: it refused it (429).
# A pause longer than one already there (a 429's) replaces it even when the turn was lost.
SETTLE_CHAT = (
    _NOW
    + """
local group = KEYS[2]
if group then
  if ARGV[4] == '1' then
    -- Counted from Telegram's answer on, as the Telegram Client's SendLimiter does.
    redis.call('ZADD', group, ms(now + tonumber(ARGV[3])), ARGV[1])
    redis.call('PEXPIRE', group, tonumber(ARGV[3]))
  else
    redis.call('ZREM', group, ARGV[1])
  end
end
local mine = redis.call('GET', KEYS[1]) == ARGV[1]
local pause = tonumber(ARGV[2])
if pause <= 0 then
  if mine then redis.call('DEL', KEYS[1]) end
  return 1
end
if mine or redis.call('PTTL', KEYS[1]) < pause then
  redis.call('SET', KEYS[1], 'held', 'PX', ARGV[2])
end
return 1
"""
)

# KEYS[1] permits.  ARGV[1] token  ARGV[2] permits  ARGV[3] longest hold (ms).
# Returns 0 with a permit taken, else the milliseconds until the first permit lapses.
ACQUIRE_PERMIT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms(now))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ms(now + tonumber(ARGV[3])), ARGV[1])
  -- Returned permits lapse one window (shorter than the longest hold) after they come back.
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
"""
)

# KEYS[1] permits.  ARGV[1] token  ARGV[2] window (ms): the permit lapses one window from now.
RETURN_PERMIT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', ms(now + tonumber(ARGV[2])), ARGV[1])
return 1
"""
)


@dataclass(frozen=True, slots=True)
class IntakeKeys:
    """The one place that names the intake's keys."""

    prefix: str = "tggate"
    buckets: int = INTAKE_BUCKETS

    def bucket(self, chat_id: int) -> int:
        return chat_id % self.buckets

    def _chat(self, chat_id: int, name: str) -> str:
        return f"{self.prefix}:{{b{self.bucket(chat_id)}}}:{name}:{chat_id}"

    def queue(self, chat_id: int) -> str:
        return self._chat(chat_id, "intake:queue")

    def seen(self, chat_id: int) -> str:
        return self._chat(chat_id, "intake:seen")

    def owner(self, chat_id: int) -> str:
        return self._chat(chat_id, "intake:owner")

    def sent(self, chat_id: int) -> str:
        return self._chat(chat_id, "intake:sent")

    def due(self, bucket: int) -> str:
        return f"{self.prefix}:{{b{bucket}}}:intake:due"

    def pace(self, chat_id: int) -> str:
        return self._chat(chat_id, "pace")

    def group(self, chat_id: int) -> str:
        return self._chat(chat_id, "pace:group")

    @property
    def permits(self) -> str:
        return f"{self.prefix}:pace:permits"

    @property
    def all_permits(self) -> str:
        return f"{self.prefix}:pace:all"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _guarded(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except RedisError as error:
        # The class name only: a connection error's text may quote the URL with its password.
        raise QueueUnavailable(f"Redis: {type(error).__name__}") from None


class RedisIntakeQueue:
    """`IntakeQueue` in one Redis (or one Cluster: every script stays in one slot)."""

    def __init__(
        self,
        redis: Redis,
        *,
        keys: IntakeKeys | None = None,
        claim_ttl_s: float = 5.0,
        seen_ttl_s: int = 86_400,
        seen_keep: int = 100,
        queue_limit: int = 1000,
        ping_timeout_s: float = 2.0,
    ) -> None:
        if claim_ttl_s <= 0 or seen_ttl_s <= 0 or seen_keep <= 0 or queue_limit <= 0:
            raise ValueError("TTLs and limits must be positive")
        self._redis = redis
        self._keys = keys or IntakeKeys()
        self._claim_ttl_ms = max(1, round(claim_ttl_s * 1000))
        self._seen_ttl_ms = seen_ttl_s * 1000
        self._seen_keep = seen_keep
        self._queue_limit = queue_limit
        self._ping_timeout_s = ping_timeout_s
        self._enqueue = redis.register_script(ENQUEUE)
        self._claim = redis.register_script(CLAIM)
        self._done = redis.register_script(DONE)
        self._record_sent = redis.register_script(RECORD_SENT)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self._due = redis.register_script(DUE)

    @property
    def keys(self) -> IntakeKeys:
        return self._keys

    def _claim_keys(self, chat_id: int) -> list[str]:
        k = self._keys
        return [k.due(k.bucket(chat_id)), k.owner(chat_id), k.queue(chat_id), k.sent(chat_id)]

    async def enqueue(self, entry: Entry) -> Stored:
        k = self._keys
        found = await _guarded(
            self._enqueue(
                keys=[
                    k.queue(entry.chat_id),
                    k.seen(entry.chat_id),
                    k.due(k.bucket(entry.chat_id)),
                ],
                args=[
                    entry.update_id,
                    _item(entry),
                    entry.chat_id,
                    self._seen_ttl_ms,
                    self._seen_keep,
                    self._queue_limit,
                ],
            )
        )
        return {0: Stored.REPEAT, 1: Stored.STORED, 2: Stored.QUEUED}.get(int(found), Stored.FULL)

    async def claim(self, chat_id: int, *, token: str) -> Claim | None:
        found = await _guarded(
            self._claim(keys=self._claim_keys(chat_id), args=[chat_id, token, self._claim_ttl_ms])
        )
        if not found:
            return None
        head, sent, previous = map(_text, found)
        return Claim(
            chat_id=chat_id,
            token=token,
            head=_entry_of(chat_id, head),
            sent=int(sent),
            taken_over=previous != "",
        )

    async def done(self, claim: Claim) -> Claim | None:
        found = await _guarded(
            self._done(
                keys=self._claim_keys(claim.chat_id),
                args=[claim.chat_id, claim.token, self._claim_ttl_ms, _item(claim.head)],
            )
        )
        if not found or not (head := _text(found[0])):
            return None
        return Claim(chat_id=claim.chat_id, token=claim.token, head=_entry_of(claim.chat_id, head))

    async def record_sent(self, claim: Claim, sent: int) -> bool:
        k = self._keys
        recorded = await _guarded(
            self._record_sent(
                keys=[k.owner(claim.chat_id), k.sent(claim.chat_id)], args=[claim.token, sent]
            )
        )
        return bool(recorded)

    async def renew(self, claims: Sequence[Claim]) -> set[int]:
        by_bucket: dict[int, list[Claim]] = {}
        for claim in claims:
            by_bucket.setdefault(self._keys.bucket(claim.chat_id), []).append(claim)
        lost: set[int] = set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket, held in by_bucket.items():
                await self._renew(
                    keys=[self._keys.due(bucket), *(self._keys.owner(c.chat_id) for c in held)],
                    args=[self._claim_ttl_ms, *(v for c in held for v in (c.chat_id, c.token))],
                    client=pipe,
                )
            for answer in await _guarded(pipe.execute()):
                lost.update(int(_text(chat)) for chat in answer)
        return lost

    async def release(self, claim: Claim) -> None:
        k = self._keys
        await _guarded(
            self._release(
                keys=[k.due(k.bucket(claim.chat_id)), k.owner(claim.chat_id)],
                args=[claim.chat_id, claim.token],
            )
        )

    async def due(self, *, limit: int) -> list[int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in range(self._keys.buckets):
                await self._due(keys=[self._keys.due(bucket)], args=[limit], client=pipe)
            answers = await _guarded(pipe.execute())
        found = [int(_text(chat)) for answer in answers for chat in answer]
        # Every replica looks at the same sets: each takes them in an order of its own, so they
        # seldom reach for the same chat at the same moment.
        random.shuffle(found)
        return found[:limit]

    async def backlog(self) -> Backlog:
        chats: list[int] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in range(self._keys.buckets):
                pipe.zrange(self._keys.due(bucket), 0, -1)
            for answer in await _guarded(pipe.execute()):
                chats.extend(int(_text(chat)) for chat in answer)
        if not chats:
            return Backlog(chats=0, updates=0)
        async with self._redis.pipeline(transaction=False) as pipe:
            for chat_id in chats:
                pipe.llen(self._keys.queue(chat_id))
            lengths = await _guarded(pipe.execute())
        return Backlog(chats=len(chats), updates=sum(int(n) for n in lengths))

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                return bool(await self._redis.ping())
        except Exception:
            return False


def _item(entry: Entry) -> str:
    return f"{entry.update_id}:{entry.payload}"


def _entry_of(chat_id: int, item: str) -> Entry:
    update_id, _, payload = item.partition(":")
    return Entry(chat_id=chat_id, update_id=int(update_id), payload=payload)


# How often a message waiting for a chat's turn looks again while another one to the chat is in
# flight (a replica's timer and another's reply to one chat): about one Bot API round trip.
_IN_FLIGHT_LOOK_MS = 25


class RedisSendPace:
    """`SendPace` in Redis: a chat's turn is one key (at most one message in flight to a chat
    from all replicas, the next one `per_chat_interval_s` after Telegram answered), a group's
    minute one sorted set (at most `group_per_minute` messages, each counted from Telegram's
    answer for a minute), and the permits are one sorted set (at most floor(rate) messages in
    any window of floor(rate)/rate seconds, each permit held from before its message leaves until
    one window after Telegram answered, as the Telegram Client's `GlobalPermits` does for one
    process). With paid broadcasts on (`paid_per_s` above `global_per_s`), a second sorted set
    holds permits of either kind up to `paid_per_s`; a message that finds no free permit left
    goes as a paid broadcast (its ticket says so) instead of waiting."""

    def __init__(
        self,
        redis: Redis,
        *,
        global_per_s: float,
        per_chat_interval_s: float,
        group_per_minute: int = 20,
        paid_per_s: float = 0.0,
        keys: IntakeKeys | None = None,
        longest_hold_s: float = 10.0,
        group_window_s: float = GROUP_WINDOW_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`group_window_s`: Telegram's minute; only tests shorten it."""
        if global_per_s <= 0 or per_chat_interval_s < 0 or longest_hold_s <= 0:
            raise ValueError("global_per_s and longest_hold_s must be > 0, the interval >= 0")
        if group_per_minute < 1 or group_window_s <= 0 or paid_per_s < 0:
            raise ValueError("group_per_minute >= 1, group_window_s > 0, paid_per_s >= 0")
        self._redis = redis
        self._keys = keys or IntakeKeys()
        self._free = _Permits.at(global_per_s)
        # Paid broadcasts only above the free rate (as GlobalPermits: none otherwise).
        self._all = _Permits.at(paid_per_s) if paid_per_s > global_per_s else None
        self._interval_ms = round(per_chat_interval_s * 1000)
        self._group_count = group_per_minute
        self._group_window_ms = max(1, round(group_window_s * 1000))
        # A turn or a permit whose holder died (or whose request hangs) lapses after this long.
        windows = [self._free.window_ms, *([self._all.window_ms] if self._all else [])]
        self._longest_hold_ms = max(round(longest_hold_s * 1000), *windows)
        self._sleep = sleep
        self._reserve_chat = redis.register_script(RESERVE_CHAT)
        self._settle_chat = redis.register_script(SETTLE_CHAT)
        self._acquire_permit = redis.register_script(ACQUIRE_PERMIT)
        self._return_permit = redis.register_script(RETURN_PERMIT)

    def _chat_keys(self, chat_id: int) -> list[str]:
        turn = self._keys.pace(chat_id)
        return [turn, self._keys.group(chat_id)] if is_group(chat_id) else [turn]

    async def reserve(self, chat_id: int, *, may_pay: bool = True) -> Ticket:
        token = secrets.token_hex(8)
        # The chat's turn (and a group's place in its minute) first: a permit is not held while
        # the chat still waits.
        await self._wait(
            self._reserve_chat,
            self._chat_keys(chat_id),
            token,
            self._longest_hold_ms,
            self._group_count,
            self._group_window_ms,
            _IN_FLIGHT_LOOK_MS,
        )
        if self._all is None:
            await self._wait(
                self._acquire_permit,
                [self._keys.permits],
                token,
                self._free.count,
                self._longest_hold_ms,
            )
            return Ticket(chat_id=chat_id, token=token)
        # Paid broadcasts on: a permit of either kind first (the rate with paid ones), then a
        # free one if there is one left now; none left: paid, unless paying was refused.
        await self._wait(
            self._acquire_permit,
            [self._keys.all_permits],
            token,
            self._all.count,
            self._longest_hold_ms,
        )
        args: list[str | int] = [token, self._free.count, self._longest_hold_ms]
        free_now = await _guarded(self._acquire_permit(keys=[self._keys.permits], args=args)) == 0
        if not free_now and not may_pay:
            await self._wait(self._acquire_permit, [self._keys.permits], *args)
        return Ticket(chat_id=chat_id, token=token, paid=not free_now and may_pay)

    async def _wait(self, script: Any, keys: list[str], *args: str | int) -> None:
        while True:
            wait_ms = int(await _guarded(script(keys=keys, args=list(args))))
            if wait_ms <= 0:
                return
            await self._sleep(wait_ms / 1000)

    async def settle(self, ticket: Ticket, *, hold_chat_s: float | None = None) -> None:
        pause_ms = self._interval_ms if hold_chat_s is None else round(hold_chat_s * 1000)
        # A 429 (a hold) means Telegram did not take the message: not one of its group's minute.
        counted = 1 if hold_chat_s is None else 0
        async with self._redis.pipeline(transaction=False) as pipe:
            # Giving back a permit the ticket does not hold (a paid one's free) changes nothing.
            await self._return_permit(
                keys=[self._keys.permits], args=[ticket.token, self._free.window_ms], client=pipe
            )
            if self._all is not None:
                await self._return_permit(
                    keys=[self._keys.all_permits],
                    args=[ticket.token, self._all.window_ms],
                    client=pipe,
                )
            await self._settle_chat(
                keys=self._chat_keys(ticket.chat_id),
                args=[ticket.token, pause_ms, self._group_window_ms, counted],
                client=pipe,
            )
            await _guarded(pipe.execute())


@dataclass(frozen=True, slots=True)
class _Permits:
    """floor(rate) permits in any window of floor(rate)/rate seconds."""

    count: int
    window_ms: int

    @classmethod
    def at(cls, per_s: float) -> _Permits:
        count = max(1, math.floor(per_s))
        return cls(count, max(1, round(count / per_s * 1000)))
