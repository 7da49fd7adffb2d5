"""The store's Lua scripts. First the Redis side of :mod:`apiauth.throttling.gcra`: the same
maths, atomically, on Redis's clock.

KEYS: one per limit. ARGV: cost, debit (1/0), then per limit: kind (``b`` bucket / ``q``
quota), capacity, interval µs (bucket) or window seconds (quota). Returns
``"allowed remaining_1 reset_us_1 retry_us_1 ..."``: one string of integers, which a client
parses in one read where an array costs one per element. A bucket's key holds its TAT, a
quota's ``"<window index>:<used>"`` (see :mod:`apiauth.throttling.gcra`). Using ``TIME`` means
app servers with skewed clocks agree; every key of a request carries one hash tag, so Redis
Cluster accepts the script.
"""

from __future__ import annotations

import hashlib

_DECIDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[a0 + 1])
local n = #KEYS - k0
local allowed = true
local before, after, values, ttls = {}, {}, {}, {}
for i = 1, n do
  local a, o = a0 + 3 * i, 3 * i
  local cap, param = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local raw = redis.call('GET', KEYS[k0 + i])
  if ARGV[a] == 'b' then
    local span = cap * param
    local tat = tonumber(raw) or now
    if tat < now then tat = now end
    local new_tat = tat + cost * param
    local retry = new_tat - span - now
    if retry > 0 then allowed = false else retry = 0 end
    before[o - 2] = math.floor((span - (tat - now)) / param)
    before[o - 1], before[o] = tat - now, retry
    after[o - 2] = math.floor((span - (new_tat - now)) / param)
    after[o - 1], after[o] = new_tat - now, 0
    values[i], ttls[i] = string.format('%d', new_tat), math.ceil((new_tat - now) / 1000)
  else
    local window = param * 1000000
    local offset = now % window
    local reset = window - offset
    local index = (now - offset) / window
    local used = 0
    if raw then
      local w, u = string.match(raw, '^(%d+):(%d+)$')
      if tonumber(w) == index then used = tonumber(u) end
    end
    local retry = 0
    if used + cost > cap then retry = reset; allowed = false end
    local left = cap - used
    if left < 0 then left = 0 end
    before[o - 2], before[o - 1], before[o] = left, reset, retry
    after[o - 2], after[o - 1], after[o] = cap - used - cost, reset, 0
    values[i], ttls[i] = string.format('%d:%d', index, used + cost), math.ceil(reset / 1000)
  end
end
local chosen = before
if allowed and ARGV[a0 + 2] == '1' then
  chosen = after
  for i = 1, n do
    local ttl = ttls[i]
    if ttl < 1 then ttl = 1 end
    redis.call('SET', KEYS[k0 + i], values[i], 'PX', ttl)
  end
end
return string.format((allowed and '1' or '0') .. string.rep(' %d', 3 * n), unpack(chosen))
"""
"""The decision, on the keys after the first ``k0`` and the arguments after the first ``a0``
(what a prelude reads before it; :data:`SCRIPT` has none). Offsets rather than shifting
``KEYS`` and ``ARGV``, flat arrays rather than a table per limit, one ``string.format`` for
the answer: Redis's time in a script follows the tables and strings it makes as well as the
keys it touches (``python -m bench store`` times it)."""

SCRIPT = "local k0, a0 = 0, 0\n" + _DECIDE

SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()

CHECKED_SCRIPT = (
    """
local marks = tonumber(ARGV[2])
local claim_ttl = tonumber(ARGV[4])
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return '-1' end
local k0, a0 = 1, 4
if marks > 0 then
  local issued = tonumber(ARGV[3])
  local values = redis.call('HMGET', KEYS[2], 'e', unpack(ARGV, 6, 5 + marks))
  if values[1] ~= ARGV[5] then return '-3' end
  for i = 2, marks + 1 do
    local mark = tonumber(values[i])
    if mark and mark >= issued then return '-2' end
  end
  k0, a0 = 2, 5 + marks
end
if claim_ttl > 0 then
  k0 = k0 + 1
  if not redis.call('SET', KEYS[k0], '1', 'NX', 'PX', claim_ttl) then return '-4' end
end
"""
    + _DECIDE
)
"""The same decision, made only if ``KEYS[1]`` still holds the token ``ARGV[1]`` (a cached
credential's version, :mod:`apiauth.cache`; ``""`` not to look) and, when ``ARGV[2]`` names
mark fields, the revocation hash ``KEYS[2]`` is loaded by this server (its ``e`` field holds
the epoch ``ARGV[5]``) and none of the fields ``ARGV[6…]`` holds a time at or after
``ARGV[3]`` (a token's ``iat``, :mod:`apiauth.revocation`). When ``ARGV[4]`` is a positive
number of ms, the next key (after the marks' hash, if any) is then created for that long if it
does not exist (a signed write's replay claim). ``"-1"`` for a stale copy, ``"-2"`` for a
revoked token, ``"-3"`` for marks to load from the database, ``"-4"`` for a claim made before,
each without touching a bucket (a claim made is kept whatever the limits decide)."""

CHECKED_SHA = hashlib.sha1(CHECKED_SCRIPT.encode()).hexdigest()

VERSION_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""
"""The credential version token of ``KEYS[1]``, created as ``ARGV[1]`` when there is none."""

VERSION_SHA = hashlib.sha1(VERSION_SCRIPT.encode()).hexdigest()

MAX_MARKS = 1000
"""A lineage with more marks than this is dropped and loaded again from the database, where
only the live ones are read: a client that revokes tokens all day does not grow its hash."""

MARK_SCRIPT = f"""
if redis.call('HGET', KEYS[1], 'e') ~= ARGV[1] or redis.call('HLEN', KEYS[1]) > {MAX_MARKS} then
  redis.call('DEL', KEYS[1])
  return 0
end
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[2]))
if not old or tonumber(ARGV[3]) > old then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
"""
"""Add the mark ``ARGV[2]`` = ``ARGV[3]`` (the later time wins) to the hash ``KEYS[1]`` if it
is loaded under the epoch ``ARGV[1]``, living at least ``ARGV[4]`` ms: 1. Otherwise delete the
hash and answer 0: marks loaded under another epoch are never trusted again (that server may
come back as primary), and a load in progress loses its fence, so it cannot write marks read
from the database before this revocation committed."""

MARK_SHA = hashlib.sha1(MARK_SCRIPT.encode()).hexdigest()

BEGIN_LOAD_SCRIPT = """
local e, n = unpack(redis.call('HMGET', KEYS[1], 'e', 'n'))
if e == ARGV[1] then return 0 end
if n then return 2 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'n', ARGV[1] .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
"""Fence ``KEYS[1]`` for a load from the database (``n`` = the epoch ``ARGV[1]`` and the
nonce ``ARGV[2]``) for at most ``ARGV[3]`` ms: 1. 0 when it is loaded under this epoch
already, 2 when another load holds the fence (its caller asks the database meanwhile)."""

BEGIN_LOAD_SHA = hashlib.sha1(BEGIN_LOAD_SCRIPT.encode()).hexdigest()

FINISH_LOAD_SCRIPT = """
if redis.call('HGET', KEYS[1], 'n') ~= ARGV[1] .. ':' .. ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[1])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
"""Write the marks read from the database (``ARGV[4…]``: field, value, …) as loaded under the
epoch ``ARGV[1]`` for ``ARGV[3]`` ms, if this server holds the fence ``ARGV[1]:ARGV[2]`` (a
fence replicated to a server promoted since never matches its epoch): 1, else 0."""

FINISH_LOAD_SHA = hashlib.sha1(FINISH_LOAD_SCRIPT.encode()).hexdigest()

REVOKED_SCRIPT = """
local values = redis.call('HMGET', KEYS[1], 'e', unpack(ARGV, 3))
if values[1] ~= ARGV[1] then return -1 end
local issued = tonumber(ARGV[2])
for i = 2, #values do
  local mark = tonumber(values[i])
  if mark and mark >= issued then return 1 end
end
return 0
"""
"""Outside a decision: 1 when a field ``ARGV[3…]`` of the hash loaded under ``ARGV[1]`` holds a
time at or after ``ARGV[2]``, 0 when none does, -1 when the hash is not loaded."""

REVOKED_SHA = hashlib.sha1(REVOKED_SCRIPT.encode()).hexdigest()
