-- acwstream flush: applies one partition's batch of effects and its
-- checkpoint atomically, fenced by the partition owner's token.
--
-- ARGV: 1 ckpt key, 2 token, 3 offset, 4 snapshot ("" = keep), 5 snap_offset,
-- 6 aux, 7 ticks, 8 now ms, 9 notice ("" = none), 10 updates channel,
-- 11 alerts stream, 12 alerts maxlen, 13 alert id ttl (s), 14 provisional
-- alert segment ids (comma-separated), 15 commit seq, 16 shared offset
-- ("" = keep), then ops.
local ckpt = ARGV[1]
local owner = redis.call('HGET', ckpt, 'owner')
if owner ~= ARGV[2] then
  return redis.error_reply('FENCED partition is owned by ' .. tostring(owner))
end
if redis.call('HGET', ckpt, 'seq') == ARGV[15] then
  -- a retry of a commit that was applied but whose reply was lost
  return 'DUP'
end

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

local i = 17
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 'c' then
    -- c key ttl start end nmax [window keys for max] 10 base values:
    -- read the hash once, add in Lua, write every field back at once.
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
  elseif op == 's' then
    -- s key ttl nfields [field value]...: fields set as they are; ttl
    -- "0" leaves the key's TTL alone
    local key, ttl, nf = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    redis.call('HSET', key, unpack(ARGV, i + 4, i + 3 + 2 * nf))
    if ttl ~= '0' then redis.call('EXPIRE', key, ttl) end
    i = i + 4 + 2 * nf
  elseif op == 'a' then
    -- a key nset [field value]... ndel [field]...
    local key, ns = ARGV[i + 1], tonumber(ARGV[i + 2])
    if ns > 0 then redis.call('HSET', key, unpack(ARGV, i + 3, i + 2 + 2 * ns)) end
    local d = i + 3 + 2 * ns
    local nd = tonumber(ARGV[d])
    if nd > 0 then redis.call('HDEL', key, unpack(ARGV, d + 1, d + nd)) end
    i = d + nd + 1
  elseif op == 'z' then
    redis.call('ZADD', ARGV[i + 1], ARGV[i + 3], ARGV[i + 2])
    i = i + 4
  elseif op == 'r' then
    redis.call('ZREM', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'x' then
    -- x dedupkey nfields [field value]...
    local nf = tonumber(ARGV[i + 2])
    if redis.call('SET', ARGV[i + 1], '1', 'NX', 'EX', ARGV[13]) then
      local args = {'XADD', ARGV[11], 'MAXLEN', '~', ARGV[12], '*'}
      for j = 1, 2 * nf do args[6 + j] = ARGV[i + 2 + j] end
      redis.call(unpack(args))
    end
    i = i + 3 + 2 * nf
  else
    return redis.error_reply('BADOP ' .. tostring(op) .. ' at ' .. i)
  end
end

redis.call('HSET', ckpt, 'eff_offset', ARGV[3], 'ticks', ARGV[7], 'updated', ARGV[8], 'prov', ARGV[14], 'seq', ARGV[15])
if ARGV[16] ~= '' then
  redis.call('HSET', ckpt, 'shared_offset', ARGV[16])
end
if ARGV[4] ~= '' then
  redis.call('HSET', ckpt, 'snap', ARGV[4], 'snap_offset', ARGV[5], 'aux', ARGV[6])
end
if ARGV[9] ~= '' then
  redis.call('PUBLISH', ARGV[10], ARGV[9])
end
return 'OK'
