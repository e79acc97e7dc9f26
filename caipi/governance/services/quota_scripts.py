"""The Lua scripts behind token and request quotas, in one place.

Each runs atomically in Redis, so no counter ever goes over its limit whatever the number
of processes: ``RESERVE`` takes a call's amounts from every counter or from none,
``LEASE`` hands a process a slice of a counter (``quota_leases``), ``RECLAIM`` asks every
process to hand its slices back, and ``SETTLE`` adds (usually negative) deltas, both when
a call settles what it did not use and when a process returns unused slices.
"""

from __future__ import annotations

from caipi.core.redis import LuaScript

# KEYS: counters. ARGV: amount, size, ttl for each key. Returns [] or [index, used, ...].
RESERVE = LuaScript(
    """
local failed = {}
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then
    table.insert(failed, i)
    table.insert(failed, used)
  end
end
if #failed > 0 then return failed end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  redis.call('EXPIRE', KEYS[i], ARGV[3 * i])
end
return failed
"""
)

# KEYS: counters (and leased totals). ARGV: what to add to each. A key whose window expired
# is left alone; none goes below zero.
SETTLE = LuaScript(
    """
for i = 1, #KEYS do
  local delta = tonumber(ARGV[i])
  if delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], delta) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
return 1
"""
)

# KEYS: counter, its leased total, its reclaim flag. ARGV: slice, size, ttl. Returns slice or 0.
LEASE = LuaScript(
    """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local slice = tonumber(ARGV[1])
if used + slice > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], slice)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCRBY', KEYS[2], slice)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return slice
"""
)

# KEYS: (leased total, reclaim flag) pairs. ARGV: flag ttl. Raises every flag; returns the
# slices other processes hold in all.
RECLAIM = LuaScript(
    """
local held = 0
for i = 1, #KEYS, 2 do
  held = held + tonumber(redis.call('GET', KEYS[i]) or '0')
  redis.call('SET', KEYS[i + 1], 1, 'EX', ARGV[1])
end
return held
"""
)
