-- acwstream shared writer: applies summed shared-key deltas and advances
-- the shared logs' applied positions, atomically, if the caller still
-- holds the lease and no log has moved since it read them.
--
-- ARGV: 1 lease key, 2 token, 3 positions hash, 4 number of logs, then
-- per log: key, expected position ("" = none yet), new position; then
-- the updates channel and the notice ("" = none), then ops.
if redis.call('GET', ARGV[1]) ~= ARGV[2] then
  return redis.error_reply('CONFLICT the shared writer lease is not held')
end
local nlogs = tonumber(ARGV[4])
local i = 5
for _ = 1, nlogs do
  local cur = redis.call('HGET', ARGV[3], ARGV[i]) or ''
  if cur ~= ARGV[i + 1] then
    return redis.error_reply('CONFLICT ' .. ARGV[i] .. ' is at ' .. cur .. ', not ' .. ARGV[i + 1])
  end
  i = i + 3
end
local channel, notice = ARGV[i], ARGV[i + 1]
i = i + 2

local base = {'acw_count', 'acw_total_ms', 'acw_max_ms', 'warn_count', 'overrun_count',
  'calls_handled', 'talk_ms', 'hold_ms', 'acw_state_ms', 'work_ms'}

-- floor((2n+d)/(2d)) for n, d >= 0, exact while 2n+d < 2^53.
local function divround(n, d)
  if d <= 0 then return 0 end
  local q = math.floor((2 * n + d) / (2 * d))
  if q * 2 * d > 2 * n + d then q = q - 1 elseif (q + 1) * 2 * d <= 2 * n + d then q = q + 1 end
  return q
end

-- Lua numbers would be sent as %.14g; integers go out with %d.
local function int(x) return string.format('%d', x) end

local function fixed(v, places)
  local p = 10 ^ places
  return string.format('%d.%0' .. places .. 'd', math.floor(v / p), v % p)
end

local n = #ARGV
while i <= n do
  -- c key ttl start end nmax [window keys for max] 10 base values:
  -- read the hash once, add in Lua, write every field back at once.
  if ARGV[i] ~= 'c' then
    return redis.error_reply('BADOP ' .. tostring(ARGV[i]) .. ' at ' .. i)
  end
  local key, ttl, s, e, nmax = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
  local mk = i + 6
  local v = mk + nmax
  local c = redis.call('HMGET', key, unpack(base))
  for f = 1, 10 do
    local cur = tonumber(c[f] or '0')
    local x = tonumber(ARGV[v + f - 1])
    if f == 3 then
      if nmax > 0 then
        cur = 0
        for w = 0, nmax - 1 do
          local y = tonumber(redis.call('HGET', ARGV[mk + w], 'acw_max_ms') or '0')
          if y > cur then cur = y end
        end
      elseif x > cur then
        cur = x
      end
    else
      cur = cur + x
    end
    c[f] = cur
  end
  redis.call('HSET', key, 'start', s, 'end', e,
    'acw_count', int(c[1]), 'acw_total_ms', int(c[2]), 'acw_max_ms', int(c[3]),
    'warn_count', int(c[4]), 'overrun_count', int(c[5]), 'calls_handled', int(c[6]),
    'talk_ms', int(c[7]), 'hold_ms', int(c[8]), 'acw_state_ms', int(c[9]), 'work_ms', int(c[10]),
    'acw_avg_ms', int(divround(c[2], c[1])),
    'acw_per_call_ms', int(divround(c[2], c[6])),
    'acw_pct_of_work', fixed(divround(10000 * c[9], c[10]), 2),
    'acw_pct_of_handle', fixed(divround(10000 * c[9], c[7] + c[8] + c[9]), 2),
    'overrun_rate', fixed(divround(10000 * c[5], c[1]), 4))
  redis.call('EXPIRE', key, ttl)
  i = v + 10
end

i = 5
for _ = 1, nlogs do
  redis.call('HSET', ARGV[3], ARGV[i], ARGV[i + 2])
  -- entries before the new position go; the one at it stays, harmlessly
  -- (reads start after it)
  redis.call('XTRIM', ARGV[i], 'MINID', ARGV[i + 2])
  i = i + 3
end
if notice ~= '' then
  redis.call('PUBLISH', channel, notice)
end
return 'OK'
