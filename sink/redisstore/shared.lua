-- acwstream shared writer: writes the shared keys' new values (computed
-- by the writer from the logs' summed deltas) and advances the shared
-- logs' applied positions, if the caller still holds the lease and no log
-- has moved since it read them.
--
-- A small round is one call ('all'). A large one is split so that Redis,
-- which serves nobody else while a script runs, is never held for long.
-- The writer stores the whole round (its positions, notice and ops) in a
-- record key of its own with a plain SET (cheap for Redis, unlike a large
-- script argument); 'begin' names it in the pending hash, 'chunk' calls
-- write parts of it, and 'commit' advances the positions and deletes the
-- record. While a round is pending, no other round begins: whoever holds
-- the lease next completes it from the record (the ops set values, so
-- writing them again is harmless).
--
-- ARGV: 1 mode, 2 lease key, 3 token, 4 pending hash, then by mode:
--   all:    positions hash, number of logs, per log: key, expected
--           position ("" = none yet), new position; the updates channel,
--           the notice ("" = none); ops
--   begin:  positions hash, number of logs, per log as above; round id,
--           record key
--   chunk:  round id; ops
--   commit: round id; positions hash, number of logs, per log as above;
--           the updates channel, the notice
-- An op is: s key ttl nfields [field value]...: fields set as they are;
-- ttl "0" leaves the key's TTL alone. An r op (same layout) replaces the
-- hash: it is deleted first (with no fields, it stays deleted).
local mode, pending = ARGV[1], ARGV[4]
if redis.call('GET', ARGV[2]) ~= ARGV[3] then
  return redis.error_reply('CONFLICT the shared writer lease is not held')
end

-- check_positions returns the index after the logs, or nil and an error
local function check_positions(i)
  local pos, nlogs = ARGV[i], tonumber(ARGV[i + 1])
  local j = i + 2
  for _ = 1, nlogs do
    local cur = redis.call('HGET', pos, ARGV[j]) or ''
    if cur ~= ARGV[j + 1] then
      return nil, redis.error_reply('CONFLICT ' .. ARGV[j] .. ' is at ' .. cur .. ', not ' .. ARGV[j + 1])
    end
    j = j + 3
  end
  return j
end

-- advance sets the new positions and returns the index after the logs
local function advance(i)
  local pos, nlogs = ARGV[i], tonumber(ARGV[i + 1])
  local j = i + 2
  for _ = 1, nlogs do
    redis.call('HSET', pos, ARGV[j], ARGV[j + 2])
    -- entries before the new position go; the one at it stays, harmlessly
    -- (reads start after it)
    redis.call('XTRIM', ARGV[j], 'MINID', ARGV[j + 2])
    j = j + 3
  end
  return j
end

-- validate returns an error if the ops from i on are malformed, before
-- any is applied
local function validate(i)
  local n = #ARGV
  while i <= n do
    local nf = tonumber(ARGV[i + 3])
    if (ARGV[i] ~= 's' and ARGV[i] ~= 'r') or not nf or i + 3 + 2 * nf > n then
      return redis.error_reply('BADOP ' .. tostring(ARGV[i]) .. ' at ' .. i)
    end
    i = i + 4 + 2 * nf
  end
end

local function apply(i)
  local n = #ARGV
  while i <= n do
    local key, ttl, nf = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    if ARGV[i] == 'r' then redis.call('DEL', key) end -- 'r' replaces the hash
    if nf > 0 then redis.call('HSET', key, unpack(ARGV, i + 4, i + 3 + 2 * nf)) end
    if ttl ~= '0' and nf > 0 then redis.call('EXPIRE', key, ttl) end
    i = i + 4 + 2 * nf
  end
end

local function publish(channel, notice)
  if notice ~= '' then
    redis.call('PUBLISH', channel, notice)
  end
end

if mode == 'chunk' or mode == 'commit' then
  if redis.call('HGET', pending, 'id') ~= ARGV[5] then
    return redis.error_reply('CONFLICT round ' .. ARGV[5] .. ' is not pending')
  end
  if mode == 'chunk' then
    local err = validate(6)
    if err then return err end
    apply(6)
  else
    local j = advance(6)
    redis.call('DEL', redis.call('HGET', pending, 'record'), pending)
    publish(ARGV[j], ARGV[j + 1])
  end
  return 'OK'
end

if redis.call('EXISTS', pending) == 1 then
  return redis.error_reply('PENDING round ' .. tostring(redis.call('HGET', pending, 'id')) .. ' is pending')
end
local j, err = check_positions(5)
if not j then return err end
if mode == 'begin' then
  if redis.call('PERSIST', ARGV[j + 1]) == 0 and redis.call('EXISTS', ARGV[j + 1]) == 0 then
    return redis.error_reply('NORECORD ' .. ARGV[j + 1] .. ' does not exist')
  end
  redis.call('HSET', pending, 'id', ARGV[j], 'record', ARGV[j + 1])
  return 'OK'
end
if mode ~= 'all' then
  return redis.error_reply('BADMODE ' .. tostring(mode))
end
err = validate(j + 2)
if err then return err end
apply(j + 2)
advance(5)
publish(ARGV[j], ARGV[j + 1])
return 'OK'
