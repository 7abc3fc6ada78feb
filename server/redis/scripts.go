package redis

import goredis "github.com/redis/go-redis/v9"

// Every script takes the key prefix as ARGV[1] and builds key names from it
// (P..'s:'..id and so on), so the keys a script touches are not all declared
// in KEYS: the engine needs a single Redis instance (or a primary with
// replicas/Sentinel), not Redis Cluster. Scripts run atomically, which is
// what makes fan-out, take-and-clear, subscription limits and "exactly one
// node removes an expired session" correct without locks.
//
// Keys (P is Options.Prefix):
//
//	P s:ID        hash   info (SessionInfo JSON), b (how many messages ever
//	                     left the queue's head: the queue's first entry has
//	                     sequence number b+1), qb (bytes queued: the sum of
//	                     the entries' JSON lengths), drop (messages dropped
//	                     since the last take), wt (token of the newest
//	                     Fetch), wn (node whose Fetch waits, set while it
//	                     waits), wq (a wake notice was sent to it)
//	P subs:ID     set    the session's subscriptions (names and patterns)
//	P c:CHANNEL   set    ids of the sessions subscribed to exactly CHANNEL
//	P q:ID        list   queued messages, oldest first (entry.go)
//	P qbytes      string the sum of every session's qb (absent: 0)
//	P h:CHANNEL   list   history, oldest first
//	P hidx        zset   the channels with a history, scored by last use
//	P hseq        string the last use's counter
//	P sessions    zset   every session id, scored by expiry in Redis-clock
//	                     milliseconds (+inf: never)
//	P n:NODE      pubsub wake notices for the Fetches waiting on NODE:
//	                     "m"+ID (look again) or "d"+ID (destroyed)

// luaSize returns the length of a queue entry's JSON (entry.go).
const luaSize = `
local function esize(e)
  local a, c = string.match(e, '^(%d+)|(%d+)|')
  return #e - #a - #c - 2 - tonumber(a) - tonumber(c)
end
`

// luaEnqueue appends a body to a session's queue, drops its oldest entries
// beyond max entries or maxBytes bytes (never the newest) and wakes the
// node that waits for it. It returns false when the session does not
// exist. D counts the drops by reason (length, bytes) and A the bytes all
// queues gained; account adds A to P qbytes and returns the new total.
// ARGV[1] must be the prefix.
const luaEnqueue = `
local P = ARGV[1]` + luaSize + `
local D = {0, 0}
local A = 0
local function enqueue(id, body, size, max, maxBytes)
  local sk = P .. 's:' .. id
  local h = redis.call('HMGET', sk, 'b', 'wn', 'wq', 'qb')
  if not h[1] then return false end
  local qk = P .. 'q:' .. id
  local len = redis.call('RPUSH', qk, body)
  local qb = tonumber(h[4] or '0') + size
  local added, drop = size, 0
  while len > 1 and (len > max or (maxBytes > 0 and qb > maxBytes)) do
    local n = esize(redis.call('LPOP', qk))
    if len > max then D[1] = D[1] + 1 else D[2] = D[2] + 1 end
    qb, added, len, drop = qb - n, added - n, len - 1, drop + 1
  end
  if drop > 0 then
    redis.call('HINCRBY', sk, 'b', drop)
    redis.call('HINCRBY', sk, 'drop', drop)
  end
  redis.call('HSET', sk, 'qb', qb)
  A = A + added
  if h[2] and not h[3] then
    redis.call('PUBLISH', P .. 'n:' .. h[2], 'm' .. id)
    redis.call('HSET', sk, 'wq', '1')
  end
  return true
end
local function account()
  local k = P .. 'qbytes'
  if A == 0 then return tonumber(redis.call('GET', k) or '0') end
  local t = redis.call('INCRBY', k, A)
  if t <= 0 then redis.call('DEL', k) end
  return t
end
`

// luaDestroy removes a session with everything it owns and tells its
// waiting node. It returns {id, info, subscriptions...} or false.
const luaDestroy = `
local function destroy(id)
  local sk = P .. 's:' .. id
  local h = redis.call('HMGET', sk, 'info', 'wn', 'qb')
  redis.call('ZREM', P .. 'sessions', id)
  if not h[1] then return false end
  local subk = P .. 'subs:' .. id
  local subs = redis.call('SMEMBERS', subk)
  for i = 1, #subs do redis.call('SREM', P .. 'c:' .. subs[i], id) end
  redis.call('DEL', sk, subk, P .. 'q:' .. id)
  local qb = tonumber(h[3] or '0')
  if qb ~= 0 and redis.call('DECRBY', P .. 'qbytes', qb) <= 0 then redis.call('DEL', P .. 'qbytes') end
  if h[2] then redis.call('PUBLISH', P .. 'n:' .. h[2], 'd' .. id) end
  local out = {id, h[1]}
  for i = 1, #subs do out[#out + 1] = subs[i] end
  return out
end
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// publishScript: KEYS are the subscriber sets of the channel and of its
// wildcard patterns; ARGV: prefix, max queue, body, max queue bytes, the
// body's JSON length. Returns {sessions the body was queued for (each
// once, however many of its subscriptions match), bytes in all queues
// now, drops by length, drops by bytes}.
var publishScript = goredis.NewScript(luaEnqueue + `
local ids
if #KEYS == 1 then ids = redis.call('SMEMBERS', KEYS[1]) else ids = redis.call('SUNION', unpack(KEYS)) end
local max, maxBytes, size = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n = 0
for i = 1, #ids do
  if enqueue(ids[i], ARGV[3], size, max, maxBytes) then n = n + 1 end
end
return {n, account(), D[1], D[2]}
`)

// deliverScript: ARGV: prefix, max queue, body, id, max queue bytes, the
// body's JSON length. Returns {1, or 0 when the session does not exist;
// then as publishScript}.
var deliverScript = goredis.NewScript(luaEnqueue + `
local ok = 0
if enqueue(ARGV[4], ARGV[3], tonumber(ARGV[6]), tonumber(ARGV[2]), tonumber(ARGV[5])) then ok = 1 end
return {ok, account(), D[1], D[2]}
`)

// shedScript: ARGV: prefix, budget, target. When the queues hold more
// than budget bytes, it drops the oldest entries of the biggest queues,
// levelling them down biggest first, until they hold at most target, and
// returns how many it dropped. It reads every session's qb: O(sessions),
// run only when a publish went over the budget.
var shedScript = goredis.NewScript(`local P = ARGV[1]` + luaSize + `
local tk = P .. 'qbytes'
local total = tonumber(redis.call('GET', tk) or '0')
if total <= tonumber(ARGV[2]) then return 0 end
local target = tonumber(ARGV[3])
local ids = redis.call('ZRANGE', P .. 'sessions', 0, -1)
local qs = {}
for i = 1, #ids do
  local qb = tonumber(redis.call('HGET', P .. 's:' .. ids[i], 'qb') or '0')
  if qb > 0 then qs[#qs + 1] = {ids[i], qb} end
end
table.sort(qs, function(a, b) return a[2] > b[2] end)
local dropped = 0
local k = 1
while k <= #qs and total > target do
  local level = 0
  if k < #qs then level = qs[k + 1][2] end
  for j = 1, k do
    if total <= target then break end
    local q = qs[j]
    local qk = P .. 'q:' .. q[1]
    local n = 0
    while q[2] > level and total > target do
      local e = redis.call('LPOP', qk)
      if not e then
        total = total - q[2]
        q[2] = 0
        break
      end
      local s = esize(e)
      q[2], total, n = q[2] - s, total - s, n + 1
    end
    if n > 0 then
      local sk = P .. 's:' .. q[1]
      redis.call('HINCRBY', sk, 'b', n)
      redis.call('HINCRBY', sk, 'drop', n)
      dropped = dropped + n
    end
    redis.call('HSET', P .. 's:' .. q[1], 'qb', q[2])
  end
  k = k + 1
end
if total > 0 then redis.call('SET', tk, total) else redis.call('DEL', tk) end
return dropped
`)

// createScript: ARGV: prefix, id, info, ttl ms (0: never expires).
// Returns 1, or 0 when the id is taken.
var createScript = goredis.NewScript(`local P = ARGV[1]` + luaDestroy + `
local sk = P .. 's:' .. ARGV[2]
if redis.call('EXISTS', sk) == 1 then return 0 end
redis.call('HSET', sk, 'info', ARGV[3], 'b', 0)
local ttl = tonumber(ARGV[4])
local score = '+inf'
if ttl > 0 then score = nowms() + ttl end
redis.call('ZADD', P .. 'sessions', score, ARGV[2])
return 1
`)

// touchScript: ARGV: prefix, delay ms or "never", ids... Sets each
// existing session's expiry to Redis's clock plus the delay, so that the
// nodes' clocks need not agree. While a Fetch waits for a session (wn is
// set) its expiry is only ever extended: a connect that another node's
// newer connect superseded must not shorten the newer one's hold. Returns
// how many sessions exist.
var touchScript = goredis.NewScript(`local P = ARGV[1]` + luaDestroy + `
local zk = P .. 'sessions'
local score = math.huge
if ARGV[2] ~= 'never' then score = nowms() + tonumber(ARGV[2]) end
local n = 0
for i = 3, #ARGV do
  local h = redis.call('HMGET', P .. 's:' .. ARGV[i], 'b', 'wn')
  if h[1] then
    n = n + 1
    local keep = false
    if h[2] then
      local cur = redis.call('ZSCORE', zk, ARGV[i])
      if cur == 'inf' or cur == '+inf' then keep = true
      elseif cur and tonumber(cur) > score then keep = true end
    end
    if not keep then
      if score == math.huge then redis.call('ZADD', zk, '+inf', ARGV[i])
      else redis.call('ZADD', zk, score, ARGV[i]) end
    end
  end
end
return n
`)

// destroyScript: ARGV: prefix, id. Returns {id, info, subs...} or nil.
var destroyScript = goredis.NewScript(`local P = ARGV[1]` + luaDestroy + `
return destroy(ARGV[2])
`)

// sweepScript: ARGV: prefix, limit. Removes up to limit sessions whose
// expiry passed (by Redis's clock) and returns them as destroy does. Two
// nodes sweeping at once never both get the same session.
var sweepScript = goredis.NewScript(`local P = ARGV[1]` + luaDestroy + `
local ids = redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', '(' .. nowms(), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ids do
  local r = destroy(ids[i])
  if r then out[#out + 1] = r end
end
return out
`)

// takeScript: ARGV: prefix, id, mode ("claim" or "check"), token, node,
// register ("1": wait for a notice if nothing is returned), ack ("" unless
// the session uses the ack extension), max bytes (0: no cap).
//
// "claim" makes token the session's newest Fetch (an older Fetch waiting
// anywhere is told to look again and then finds itself superseded);
// "check" continues a Fetch and returns {-2} when a newer one claimed the
// session. It returns the oldest entries whose JSON adds up to at most
// max bytes (at least one): without ack it removes them; with ack it
// first removes the entries with sequence <= ack and returns the next
// ones without removing them. Returns {-1} for an unknown session, else
// {dropped, sequence of the first entry returned minus 1, entries...}.
var takeScript = goredis.NewScript(`
local P = ARGV[1]` + luaSize + `
local id = ARGV[2]
local sk = P .. 's:' .. id
local h = redis.call('HMGET', sk, 'b', 'wt', 'wn', 'drop', 'qb')
if not h[1] then return {-1} end
local tok = ARGV[4]
if ARGV[3] == 'claim' then
  if h[3] and h[2] ~= tok then redis.call('PUBLISH', P .. 'n:' .. h[3], 'm' .. id) end
  redis.call('HSET', sk, 'wt', tok)
elseif h[2] ~= tok then
  return {-2}
end
local base = tonumber(h[1])
local qk = P .. 'q:' .. id
local items = redis.call('LRANGE', qk, 0, -1)
local ackMode = ARGV[7] ~= ''
local acked = 0
if ackMode then acked = math.max(0, math.min(#items, tonumber(ARGV[7]) - base)) end
local cap = tonumber(ARGV[8])
local out = {0, base + acked}
local size, ackedSize = 0, 0
for i = 1, acked do ackedSize = ackedSize + esize(items[i]) end
for i = acked + 1, #items do
  local n = esize(items[i])
  if i > acked + 1 and cap > 0 and size + n > cap then break end
  size = size + n
  out[#out + 1] = items[i]
end
local removed, removedSize = acked, ackedSize
if not ackMode then removed, removedSize = #out - 2, size end
if removed > 0 then
  if removed == #items then redis.call('DEL', qk) else redis.call('LTRIM', qk, removed, -1) end
  redis.call('HINCRBY', sk, 'b', removed)
  redis.call('HSET', sk, 'qb', math.max(0, tonumber(h[5] or '0') - removedSize))
  if redis.call('DECRBY', P .. 'qbytes', removedSize) <= 0 then redis.call('DEL', P .. 'qbytes') end
end
local drop = tonumber(h[4] or '0')
if drop > 0 then
  out[1] = drop
  redis.call('HDEL', sk, 'drop')
end
if #out == 2 and ARGV[6] == '1' then
  redis.call('HSET', sk, 'wn', ARGV[5])
  redis.call('HDEL', sk, 'wq')
else
  redis.call('HDEL', sk, 'wn', 'wq')
end
return out
`)

// releaseScript: ARGV: prefix, id, token. A Fetch that gives up early
// (its request ended) stops being the session's waiter, so that Touch may
// shorten the expiry again and no notices are sent for it.
var releaseScript = goredis.NewScript(`
local sk = ARGV[1] .. 's:' .. ARGV[2]
if redis.call('HGET', sk, 'wt') == ARGV[3] then redis.call('HDEL', sk, 'wn', 'wq') end
return 0
`)

// subscribeScript: ARGV: prefix, id, pattern, limit. Returns 1 (added),
// 0 (already there), -1 (unknown session), -2 (limit reached).
var subscribeScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('EXISTS', P .. 's:' .. ARGV[2]) == 0 then return -1 end
local subk = P .. 'subs:' .. ARGV[2]
if redis.call('SISMEMBER', subk, ARGV[3]) == 1 then return 0 end
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('SCARD', subk) >= limit then return -2 end
redis.call('SADD', subk, ARGV[3])
redis.call('SADD', P .. 'c:' .. ARGV[3], ARGV[2])
return 1
`)

// unsubscribeScript: ARGV: prefix, id, pattern. Returns 1 (removed),
// 0 (was not subscribed), -1 (unknown session).
var unsubscribeScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('EXISTS', P .. 's:' .. ARGV[2]) == 0 then return -1 end
if redis.call('SREM', P .. 'subs:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('SREM', P .. 'c:' .. ARGV[3], ARGV[2])
return 1
`)

// subscriptionsScript: ARGV: prefix, id. Returns {-1} for an unknown
// session, else {1, {patterns...}}.
var subscriptionsScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('EXISTS', P .. 's:' .. ARGV[2]) == 0 then return {-1} end
return {1, redis.call('SMEMBERS', P .. 'subs:' .. ARGV[2])}
`)

// infosScript: KEYS[1] is a subscriber set; ARGV: prefix. Returns the
// infos of its sessions.
var infosScript = goredis.NewScript(`
local P = ARGV[1]
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for i = 1, #ids do
  local info = redis.call('HGET', P .. 's:' .. ids[i], 'info')
  if info then out[#out + 1] = info end
end
return out
`)

// listScript: ARGV: prefix, start rank, count. Returns the infos of the
// sessions ranked start..start+count-1 in the expiry index.
var listScript = goredis.NewScript(`
local P = ARGV[1]
local start = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', P .. 'sessions', start, start + tonumber(ARGV[3]) - 1)
local out = {}
for i = 1, #ids do
  local info = redis.call('HGET', P .. 's:' .. ids[i], 'info')
  if info then out[#out + 1] = info end
end
return {#ids, out}
`)

// appendHistoryScript: ARGV: prefix, channel, message, max entries, max
// channels (0: no limit). Appends to the channel's history, marks it the
// most recently used, forgets the least recently used histories beyond
// max channels and returns how many it forgot.
var appendHistoryScript = goredis.NewScript(`
local P = ARGV[1]
local hk = P .. 'h:' .. ARGV[2]
redis.call('RPUSH', hk, ARGV[3])
redis.call('LTRIM', hk, -tonumber(ARGV[4]), -1)
local ik = P .. 'hidx'
redis.call('ZADD', ik, redis.call('INCR', P .. 'hseq'), ARGV[2])
local limit = tonumber(ARGV[5])
if limit <= 0 then return 0 end
local over = redis.call('ZCARD', ik) - limit
if over <= 0 then return 0 end
local old = redis.call('ZRANGE', ik, 0, over - 1)
for i = 1, #old do redis.call('DEL', P .. 'h:' .. old[i]) end
redis.call('ZREMRANGEBYRANK', ik, 0, over - 1)
return #old
`)

// historyScript: ARGV: prefix, channel, start (LRANGE index). Returns the
// entries from start on and marks the channel the most recently used (a
// history written before the index existed joins it here).
var historyScript = goredis.NewScript(`
local P = ARGV[1]
local out = redis.call('LRANGE', P .. 'h:' .. ARGV[2], tonumber(ARGV[3]), -1)
if #out > 0 then redis.call('ZADD', P .. 'hidx', redis.call('INCR', P .. 'hseq'), ARGV[2]) end
return out
`)
