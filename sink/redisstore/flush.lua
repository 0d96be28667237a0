-- acwstream flush: applies one partition's batch of effects and its
-- checkpoint atomically, fenced by the partition owner's token.
--
-- ARGV: 1 ckpt key, 2 token, 3 offset, 4 snapshot ("" = keep), 5 snap_offset,
-- 6 aux, 7 ticks, 8 now ms, 9 notice ("" = none), 10 updates channel,
-- 11 alerts stream, 12 alerts maxlen, 13 alert id ttl (s), 14 provisional
-- alert segment ids (comma-separated), 15 commit seq, 16 shared offset
-- ("" = keep), 17 the partition's shared log, 18 its new entry ("" =
-- none), 19 the set of shared logs, then ops. Shared keys are not written
-- here: the shared writer applies the logs (shared.lua).
local ckpt = ARGV[1]
local owner = redis.call('HGET', ckpt, 'owner')
if owner ~= ARGV[2] then
  return redis.error_reply('FENCED partition is owned by ' .. tostring(owner))
end
if redis.call('HGET', ckpt, 'seq') == ARGV[15] then
  -- a retry of a commit that was applied but whose reply was lost
  return 'DUP'
end

local i = 20
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 's' then
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
if ARGV[18] ~= '' then
  redis.call('XADD', ARGV[17], '*', 'd', ARGV[18])
  redis.call('SADD', ARGV[19], ARGV[17])
end
if ARGV[4] ~= '' then
  redis.call('HSET', ckpt, 'snap', ARGV[4], 'snap_offset', ARGV[5], 'aux', ARGV[6])
end
if ARGV[9] ~= '' then
  redis.call('PUBLISH', ARGV[10], ARGV[9])
end
return 'OK'
