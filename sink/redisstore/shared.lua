-- acwstream shared writer: writes the shared keys' new values (computed
-- by the writer from the logs' summed deltas) and advances the shared
-- logs' applied positions, atomically, if the caller still holds the lease
-- and no log has moved since it read them.
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

local n = #ARGV
while i <= n do
  -- s key ttl nfields [field value]...: fields set as they are (the
  -- writer computed them); ttl "0" leaves the key's TTL alone
  if ARGV[i] ~= 's' then
    return redis.error_reply('BADOP ' .. tostring(ARGV[i]) .. ' at ' .. i)
  end
  local key, ttl, nf = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  redis.call('HSET', key, unpack(ARGV, i + 4, i + 3 + 2 * nf))
  if ttl ~= '0' then redis.call('EXPIRE', key, ttl) end
  i = i + 4 + 2 * nf
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
