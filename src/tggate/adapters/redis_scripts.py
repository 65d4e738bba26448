"""Lua scripts of the Redis session store: every multi-step change is one atomic script.

Every key a script touches arrives in KEYS (none is built inside Lua), and every script's keys
share one hash tag, the chat's bucket (`RedisKeys`), so each runs on one node of a Redis Cluster
(a script over two slots is refused there with CROSSSLOT). Missing keys and fields read as
`false` in Lua; a script returning `false` answers nil (None in Python).

A session is a hash: `status`, `rev` (the revision a compare-and-set names) and `data` (the
session's values, encoded by the store).
"""

from __future__ import annotations

__all__ = [
    "ACK_OUTBOX",
    "ADD_OUTBOX",
    "BEGIN_UPDATE",
    "DELETE_FIELD_IF_EQUALS",
    "DELETE_IF_EQUALS",
    "EXTEND_IF_EQUALS",
    "FINISH_UPDATE",
    "LEASE",
    "LOAD_SESSIONS",
    "WRITE_SESSIONS",
]

# Ids are idempotency keys, so a message that is pending or was delivered (acked within
# delivered_ttl_s) is never added again. The stored value is `[seq, message]`: seq (INCR of the
# bucket's counter) restores the order messages were produced in, which a hash does not keep.
_ADD_TO_OUTBOX = """
local function add_to_outbox(outbox, seq, delivered, id, message)
  if redis.call('EXISTS', delivered) == 1 or redis.call('HEXISTS', outbox, id) == 1 then
    return 0
  end
  local n = redis.call('INCR', seq)
  redis.call('HSET', outbox, id, '[' .. n .. ',' .. message .. ']')
  return 1
end
"""

# Compare-and-set of one chat's session (docs/scenarios.md#atomic): the revision check, the
# write or delete, the TTL and both status indexes change together, so a logout racing a
# login check can never resurrect a session or leave an index pointing the wrong way.
#   status "" deletes; ttl_ms "0" = no expiry. Returns 1, or 0 when the stored revision is not
#   `expect` ("" = the session must not exist); nothing is written then.
_WRITE_SESSION = """
local function write_session(session, anonymous, authorized, chat, expect, ttl_ms, status, rev,
                              data)
  if expect == '' then
    if redis.call('EXISTS', session) == 1 then return 0 end
  elseif redis.call('HGET', session, 'rev') ~= expect then
    -- also true for a missing key: HGET answers false, which equals no revision
    return 0
  end
  -- DEL first: the key starts without a TTL (an Authorized session never expires).
  redis.call('DEL', session)
  redis.call('SREM', anonymous, chat)
  redis.call('SREM', authorized, chat)
  if status ~= '' then
    redis.call('HSET', session, 'status', status, 'rev', rev, 'data', data)
    if tonumber(ttl_ms) > 0 then redis.call('PEXPIRE', session, ttl_ms) end
    redis.call('SADD', status == 'anonymous' and anonymous or authorized, chat)
  end
  return 1
end
"""

# Session changes of several chats of one bucket, each with its outbox messages: one round trip
# for many compare-and-sets (a timer cycle's writes), each on its own (one conflicting write
# does not stop the others).
#   KEYS[1] anonymous index  KEYS[2] authorized index  KEYS[3] outbox  KEYS[4] outbox sequence
#   then per write: its session hash, then the delivered marker of each of its messages
#   ARGV per write: chat, expect, ttl_ms, status, rev, data, n messages, then n (id, JSON) pairs
# Returns 1 or 0 per write, in order.
WRITE_SESSIONS = (
    _ADD_TO_OUTBOX
    + _WRITE_SESSION
    + """
local done = {}
local k, a = 5, 1
while a <= #ARGV do
  local session = KEYS[k]
  local n = tonumber(ARGV[a + 6])
  local ok = write_session(session, KEYS[1], KEYS[2], ARGV[a], ARGV[a + 1], ARGV[a + 2],
                           ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
  for i = 1, n do
    if ok == 1 then
      add_to_outbox(KEYS[3], KEYS[4], KEYS[k + i], ARGV[a + 5 + 2 * i], ARGV[a + 6 + 2 * i])
    end
  end
  done[#done + 1] = ok
  k = k + 1 + n
  a = a + 7 + 2 * n
end
return done
"""
)

# Claim an update_id and read the chat's session in one round trip (docs/scenarios.md#idempotency).
#   KEYS[1] the chat's answered updates (hash update_id -> record)  KEYS[2] the update's claim
#   KEYS[3] the chat's session
#   ARGV[1] update_id  ARGV[2] the claiming owner  ARGV[3] claim TTL in ms
# Returns {0, record} when answered before, {2} while another owner's claim holds, else
# {1, status, rev, data} (just {1} for an Unknown chat) with the claim now ARGV[2]'s.
BEGIN_UPDATE = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record then return {0, record} end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {2} end
local s = redis.call('HMGET', KEYS[3], 'status', 'rev', 'data')
if not s[1] then return {1} end
return {1, s[1], s[2], s[3]}
"""

# Finish an update: the session change (if any), the answer and the end of the claim, together:
# a crash leaves either all of them or none (the claim then lapses and a retry runs again).
#   KEYS[1] answered updates  KEYS[2] the claim  KEYS[3] session  KEYS[4] anonymous index
#   KEYS[5] authorized index
#   ARGV[1] update_id  ARGV[2] owner  ARGV[3] record  ARGV[4] answers' TTL in ms
#   ARGV[5] the current minute (records older than it by their stamp may go)  ARGV[6] "1" if a
#   session change follows: ARGV[7..12] chat, expect, ttl_ms, status, rev, data
# Returns 1, or 0 when the session changed meanwhile (nothing written, the claim kept).
# A hash per chat holds its answers (a key per answer cost 2-3 times the memory, bench/README.md);
# records carry their expiry minute; a chat with many has the expired ones dropped, at every
# 16th record (a busy chat pays for the scan once per 16 commands), and the hash itself expires
# a day after the chat's last command. A record's minute is its decimal prefix ("<minute>:…"),
# or in a sealed binary record (first byte 1) the 4 big-endian bytes after it
# (redis_store.SessionCodec.encode_record).
FINISH_UPDATE = (
    _WRITE_SESSION
    + """
if ARGV[6] == '1' then
  if write_session(KEYS[3], KEYS[4], KEYS[5], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11],
                   ARGV[12]) == 0 then
    return 0
  end
end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3])
local count = redis.call('HLEN', KEYS[1])
if count > 32 and count % 16 == 0 then
  local now = tonumber(ARGV[5])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local record, stamp = all[i + 1], nil
    if string.byte(record, 1) == 1 then
      local a, b, c, d = string.byte(record, 2, 5)
      if d then stamp = ((a * 256 + b) * 256 + c) * 256 + d end
    else
      stamp = tonumber(string.match(record, '^(%d+):'))
    end
    if stamp and stamp < now then redis.call('HDEL', KEYS[1], all[i]) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""
)

# The live sessions of some chats of one status index, in one round trip; ids whose session is
# gone (an Anonymous session expires by TTL, its index entry stays) or in another status are
# removed from the index here, in the script, because a new session may be written between a
# read and an SREM.
#   KEYS[1] the index  KEYS[2..] session hash of each candidate
#   ARGV[1] the index's status  ARGV[2..] the candidates' chat ids, in KEYS order
# Returns chat, rev, data of each live one, flat.
LOAD_SESSIONS = """
local live = {}
for i = 2, #KEYS do
  local s = redis.call('HMGET', KEYS[i], 'status', 'rev', 'data')
  if s[1] == ARGV[1] then
    live[#live + 1] = ARGV[i]
    live[#live + 1] = s[2]
    live[#live + 1] = s[3]
  else
    redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return live
"""

# Add outbox messages of one bucket outside a session change (docs/scenarios.md#outbox).
#   KEYS[1] outbox hash  KEYS[2] outbox sequence  KEYS[3..] delivered marker of each message
#   ARGV one (id, message JSON) pair per message, in KEYS order
# Returns how many were added.
ADD_OUTBOX = (
    _ADD_TO_OUTBOX
    + """
local added = 0
for i = 3, #KEYS do
  added = added + add_to_outbox(KEYS[1], KEYS[2], KEYS[i], ARGV[2 * i - 5], ARGV[2 * i - 4])
end
return added
"""
)

# Acknowledge delivered messages of one bucket: drop them from the outbox and remember their
# ids, so a late cycle producing the same id (a retried tick) does not send it twice.
#   KEYS[1] outbox hash  KEYS[2..] delivered marker of each id
#   ARGV[1] how long to remember, in seconds  ARGV[2..] the ids, in KEYS order
# Returns how many were pending.
ACK_OUTBOX = """
local removed = 0
for i = 2, #KEYS do
  removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
return removed
"""

# Compare-and-delete: release a lock or an update claim only by its owner.
#   KEYS[1] the key  ARGV[1] the value it must still hold
# Returns 1 if deleted, else 0.
DELETE_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Compare-and-delete of a hash field: drop an answer no configured key opens, unless it was
# replaced meanwhile.
#   KEYS[1] the hash  ARGV[1] the field  ARGV[2] the value it must still hold
# Returns 1 if deleted, else 0.
DELETE_FIELD_IF_EQUALS = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# Compare-and-extend: the holder of an update claim renews it while it works (issue 9).
#   KEYS[1] the key  ARGV[1] the value it must still hold  ARGV[2] the new TTL in ms
# Returns 1 if extended, else 0 (the claim lapsed, or another owner holds it).
EXTEND_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# Grant a free lease or renew one's own (docs/scenarios.md#lease).
#   KEYS[1] the lease  ARGV[1] the instance asking  ARGV[2] TTL in ms
# Returns 1 if `instance` holds the lease now, else 0.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
