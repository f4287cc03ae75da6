-- Carries out a run of the broker's store operations in one call, so that Redis runs them
-- atomically (no other client's command runs in between) and in order: a read sees the writes
-- before it. The operations are ARGV, each an opcode, the 1-based index of its first key in
-- KEYS, then its arguments. An account's keys are four, from that index: its messages (a sorted
-- set, every score 0, members the positions as 16 hex digits so that their lexical order is
-- their numeric order), their bodies (a hash, position -> encoded message), the bytes its queue
-- holds (a string) and its attributes (a hash). A window's key is the windows hash.
--
-- One answer per operation: 'D' (done), 'F' (refused for its limit), {value or nil} (one
-- attribute), the flat HGETALL of the attributes, or {more, {position, body, ...}} (messages).
-- Every write checks its limit before it changes anything, so a refused write changes nothing.

-- The bytes of an encoded message before its sender and body: what a queue's byte bound does
-- not count.
local HEADER = 20

local out = {}
local i = 1
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  local k = tonumber(ARGV[i + 1])
  if op == 'P' then
    -- PutMessage: position, encoded message, limit on messages and bytes ('' for none).
    local member, body, max_count, max_bytes = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    i = i + 6
    local size = #body - HEADER
    local full = false
    if max_count ~= '' then
      local count = redis.call('ZCARD', KEYS[k])
      local bytes = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
      full = count >= tonumber(max_count) or bytes + size > tonumber(max_bytes)
    end
    if full then
      out[#out + 1] = 'F'
    else
      -- A position is never reused; a second write of one replaces it.
      local old = redis.call('HGET', KEYS[k + 1], member)
      local delta = size
      if old then
        delta = size - (#old - HEADER)
      end
      redis.call('HSET', KEYS[k + 1], member, body)
      redis.call('ZADD', KEYS[k], 0, member)
      redis.call('INCRBY', KEYS[k + 2], delta)
      out[#out + 1] = 'D'
    end
  elseif op == 'X' then
    -- DeleteMessage: position.
    local member = ARGV[i + 2]
    i = i + 3
    local old = redis.call('HGET', KEYS[k + 1], member)
    if old then
      redis.call('HDEL', KEYS[k + 1], member)
      redis.call('ZREM', KEYS[k], member)
      if redis.call('ZCARD', KEYS[k]) == 0 then
        redis.call('DEL', KEYS[k + 2])
      else
        redis.call('DECRBY', KEYS[k + 2], #old - HEADER)
      end
    end
    out[#out + 1] = 'D'
  elseif op == 'S' then
    -- SetAttr to a value: name, value, max_attrs.
    local name, value, max_attrs = ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
    i = i + 5
    if redis.call('HEXISTS', KEYS[k + 3], name) == 0 and redis.call('HLEN', KEYS[k + 3]) >= max_attrs then
      out[#out + 1] = 'F'
    else
      redis.call('HSET', KEYS[k + 3], name, value)
      out[#out + 1] = 'D'
    end
  elseif op == 'U' then
    -- SetAttr to none: name.
    redis.call('HDEL', KEYS[k + 3], ARGV[i + 2])
    i = i + 3
    out[#out + 1] = 'D'
  elseif op == 'A' then
    -- Attr: name.
    out[#out + 1] = { redis.call('HGET', KEYS[k + 3], ARGV[i + 2]) }
    i = i + 3
  elseif op == 'H' then
    -- Attrs.
    out[#out + 1] = redis.call('HGETALL', KEYS[k + 3])
    i = i + 2
  elseif op == 'M' then
    -- Messages: after (a position), max_count, max_bytes. The same portion as the broker's
    -- `Portion`: the first message always, then while under both bounds.
    local after, max_count, max_bytes = ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    i = i + 5
    local got = {}
    local count, total, more = 0, 0, 0
    local from = '(' .. after
    local done = false
    while not done do
      local page = redis.call('ZRANGEBYLEX', KEYS[k], from, '+', 'LIMIT', 0, 128)
      if #page == 0 then
        break
      end
      for _, member in ipairs(page) do
        local body = redis.call('HGET', KEYS[k + 1], member)
        local size = 0
        if body then
          size = #body - HEADER
        end
        if count >= max_count or (count > 0 and total + size > max_bytes) then
          more = 1
          done = true
          break
        end
        count = count + 1
        total = total + size
        got[#got + 1] = member
        -- A missing body answers nil: the caller reports the queue corrupt.
        got[#got + 1] = body
      end
      from = '(' .. page[#page]
    end
    out[#out + 1] = { more, got }
  elseif op == 'W' then
    -- Window: field, until_ms.
    redis.call('HSET', KEYS[k], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
    out[#out + 1] = 'D'
  else
    return redis.error_reply('beckon store: unknown operation ' .. tostring(op))
  end
end
return out
