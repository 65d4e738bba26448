"""Lua scripts of the Redis session store: every multi-step change is one atomic script.

Every key a script touches arrives in KEYS (none is built inside Lua), as Redis requires of
scripts that should keep working behind a proxy or in Cluster. Missing keys and fields read as
`false` in Lua; a script returning `false` answers nil (None in Python).
"""

from __future__ import annotations

__all__ = [
    "ACK_OUTBOX",
    "ADD_OUTBOX",
    "CLAIM_UPDATE",
    "DELETE_IF_EQUALS",
    "LEASE",
    "PRUNE_INDEX",
    "REPLACE_SESSION",
]

# Shared by REPLACE_SESSION and ADD_OUTBOX: ids are idempotency keys, so a message that is
# pending or was delivered (acked within delivered_ttl_s) is never added again. The stored value
# is `[seq, message]`: seq (INCR of one counter) restores the order messages were produced in,
# which a hash does not keep.
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

# Compare-and-set of one chat's session (docs/scenarios.md#atomic): the revision check,
# the write or delete, the TTL, both status index sets and the outbox move together, so a logout
# racing a login check can never resurrect a session or leave an index pointing the wrong way.
#   KEYS[1] session hash       KEYS[2] index of the new status (any index on delete)
#   KEYS[3] the other index    KEYS[4] outbox hash    KEYS[5] outbox sequence
#   KEYS[6..] delivered marker of each outbox message, in ARGV order
#   ARGV[1] expected revision, "" = the session must not exist
#   ARGV[2] chat id    ARGV[3] TTL in ms, "0" = none    ARGV[4] n = field/value pairs, 0 = delete
#   ARGV[5 .. 4+2n] the session's field/value pairs (its new `rev` among them)
#   then one (id, message JSON) pair per outbox message
# Returns 1, or false when the stored revision is not the expected one (nothing written).
REPLACE_SESSION = (
    _ADD_TO_OUTBOX
    + """
local session = KEYS[1]
local expect = ARGV[1]
if expect == '' then
  if redis.call('EXISTS', session) == 1 then return false end
elseif redis.call('HGET', session, 'rev') ~= expect then
  -- also true for a missing key: HGET answers false, which equals no revision
  return false
end

local chat_id = ARGV[2]
local ttl_ms = tonumber(ARGV[3])
local nfields = tonumber(ARGV[4])
-- DEL first: no field of the previous state (a login token after login) survives the write,
-- and the key starts without a TTL (an Authorized session never expires).
redis.call('DEL', session)
if nfields == 0 then
  redis.call('SREM', KEYS[2], chat_id)
  redis.call('SREM', KEYS[3], chat_id)
else
  redis.call('HSET', session, unpack(ARGV, 5, 4 + 2 * nfields))
  if ttl_ms > 0 then redis.call('PEXPIRE', session, ttl_ms) end
  redis.call('SADD', KEYS[2], chat_id)
  redis.call('SREM', KEYS[3], chat_id)
end

local at = 5 + 2 * nfields
for i = 6, #KEYS do
  add_to_outbox(KEYS[4], KEYS[5], KEYS[i], ARGV[at], ARGV[at + 1])
  at = at + 2
end
return 1
"""
)

# Add outbox messages outside a session change (docs/scenarios.md#outbox).
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

# Acknowledge delivered messages: drop them from the outbox and remember their ids, so a late
# cycle producing the same id (a retried tick) does not send it twice.
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

# Claim an update_id (docs/scenarios.md#idempotency). One script: Redis 6.2 refuses SET NX GET.
#   KEYS[1] the update's key  ARGV[1] the pending marker  ARGV[2] TTL in seconds
# Returns 1 when claimed now, else the stored value (the pending marker or a finished answer).
CLAIM_UPDATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return redis.call('GET', KEYS[1])
"""

# Compare-and-delete: release a lock only by its owner, drop an update claim only while pending.
#   KEYS[1] the key  ARGV[1] the value it must still hold
# Returns 1 if deleted, else 0.
DELETE_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
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

# Keep a status index honest while reading it: Anonymous sessions expire by TTL but their id
# stays in the index, so ids whose session is gone (or, defensively, in another status) are
# removed here. A script, because a new session may be written between a read and an SREM.
#   KEYS[1] the index set  KEYS[2..] session hash of each candidate
#   ARGV[1] the index's status  ARGV[2..] the candidates' chat ids, in KEYS order
# Returns the chat ids that are really in that status.
PRUNE_INDEX = """
local live = {}
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') == ARGV[1] then
    live[#live + 1] = ARGV[i]
  else
    redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return live
"""
