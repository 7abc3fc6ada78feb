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
//	                     sequence number b+1), drop (messages dropped since
//	                     the last take), wt (token of the newest Fetch), wn
//	                     (node whose Fetch waits, set while it waits), wq (a
//	                     wake notice was sent to it)
//	P subs:ID     set    the session's subscriptions (names and patterns)
//	P c:CHANNEL   set    ids of the sessions subscribed to exactly CHANNEL
//	P q:ID        list   queued messages, oldest first (entry.go)
//	P h:CHANNEL   list   history, oldest first
//	P sessions    zset   every session id, scored by expiry in Redis-clock
//	                     milliseconds (+inf: never)
//	P n:NODE      pubsub wake notices for the Fetches waiting on NODE:
//	                     "m"+ID (look again) or "d"+ID (destroyed)

// luaEnqueue appends a body to a session's queue, bounds the queue and
// wakes the node that waits for it. It returns false when the session does
// not exist. ARGV[1] must be the prefix.
const luaEnqueue = `
local P = ARGV[1]
local function enqueue(id, body, max)
  local sk = P .. 's:' .. id
  local h = redis.call('HMGET', sk, 'b', 'wn', 'wq')
  if not h[1] then return false end
  local qk = P .. 'q:' .. id
  local len = redis.call('RPUSH', qk, body)
  if len > max then
    redis.call('LTRIM', qk, len - max, -1)
    redis.call('HINCRBY', sk, 'b', len - max)
    redis.call('HINCRBY', sk, 'drop', len - max)
  end
  if h[2] and not h[3] then
    redis.call('PUBLISH', P .. 'n:' .. h[2], 'm' .. id)
    redis.call('HSET', sk, 'wq', '1')
  end
  return true
end
`

// luaDestroy removes a session with everything it owns and tells its
// waiting node. It returns {id, info, subscriptions...} or false.
const luaDestroy = `
local function destroy(id)
  local sk = P .. 's:' .. id
  local h = redis.call('HMGET', sk, 'info', 'wn')
  redis.call('ZREM', P .. 'sessions', id)
  if not h[1] then return false end
  local subk = P .. 'subs:' .. id
  local subs = redis.call('SMEMBERS', subk)
  for i = 1, #subs do redis.call('SREM', P .. 'c:' .. subs[i], id) end
  redis.call('DEL', sk, subk, P .. 'q:' .. id)
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
// wildcard patterns; ARGV: prefix, max queue, body. Returns the number of
// sessions the body was queued for (each once, however many of its
// subscriptions match).
var publishScript = goredis.NewScript(luaEnqueue + `
local ids
if #KEYS == 1 then ids = redis.call('SMEMBERS', KEYS[1]) else ids = redis.call('SUNION', unpack(KEYS)) end
local max = tonumber(ARGV[2])
local n = 0
for i = 1, #ids do
  if enqueue(ids[i], ARGV[3], max) then n = n + 1 end
end
return n
`)

// deliverScript: ARGV: prefix, max queue, body, id. Returns 1, or 0 when
// the session does not exist.
var deliverScript = goredis.NewScript(luaEnqueue + `
if enqueue(ARGV[4], ARGV[3], tonumber(ARGV[2])) then return 1 end
return 0
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
// the session uses the ack extension).
//
// "claim" makes token the session's newest Fetch (an older Fetch waiting
// anywhere is told to look again and then finds itself superseded);
// "check" continues a Fetch and returns {-2} when a newer one claimed the
// session. Without ack it returns and removes every queued entry; with ack
// it removes the entries with sequence <= ack and returns the others
// without removing them. Returns {-1} for an unknown session, else
// {dropped, sequence of the first entry returned minus 1, entries...}.
var takeScript = goredis.NewScript(`
local P = ARGV[1]
local id = ARGV[2]
local sk = P .. 's:' .. id
local h = redis.call('HMGET', sk, 'b', 'wt', 'wn', 'drop')
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
local k = 0
if ARGV[7] == '' then
  k = #items
  if k > 0 then redis.call('DEL', qk) end
else
  k = math.max(0, math.min(#items, tonumber(ARGV[7]) - base))
  if k > 0 then redis.call('LTRIM', qk, k, -1) end
end
if k > 0 then redis.call('HINCRBY', sk, 'b', k) end
local out = {0, base}
if ARGV[7] ~= '' then out[2] = base + k end
local from = 1
if ARGV[7] ~= '' then from = k + 1 end
for i = from, #items do out[#out + 1] = items[i] end
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
