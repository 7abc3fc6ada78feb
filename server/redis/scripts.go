package redis

import goredis "github.com/redis/go-redis/v9"

// Keys (P is Options.Prefix). Every key carries a hash tag, {s:ID} for a
// session's keys and {c:NAME} for a channel's or pattern's, so that every
// script touches keys of one slot only: the engine runs unchanged on a
// single Redis, behind Sentinel and on Redis Cluster, where sessions and
// channels spread over the shards.
//
//	P{s:ID}        hash   info (SessionInfo JSON); own (node that takes for
//	                      the session) and ep (claims so far); st (the
//	                      committed state: cursors, batch numbers); exp
//	                      (expiry, Redis-clock ms, or "inf"); dh (direct
//	                      messages removed from the queue's head)
//	P{s:ID}:subs   hash   subscription pattern -> cursor of the stream when
//	                      subscribed ("SEQ:ID")
//	P{s:ID}:q      list   direct messages (Deliver), "MS|DATA"; the first
//	                      has sequence number dh+1
//	P{c:NAME}:m    set    ids of the sessions subscribed to exactly NAME
//	P{c:NAME}:n    string entries ever added to the stream
//	P{c:NAME}:x    stream the messages published on NAME (or matching the
//	                      pattern NAME), fields n (sequence), m (message id),
//	                      d (data), bounded by MAXLEN ~ MaxQueue; it exists
//	                      only while NAME has subscribers
//	P{c:NAME}:h    list   chat history (Historian)
//	P{i}:sessions  zset   session ids by expiry (Redis-clock ms, +inf):
//	                      where the sweepers look; each session's exp decides
//
// Pub/sub channels: P t:NAME carries "SEQ|ID|MID|DATA" for every entry
// added to NAME's stream (nodes with readers of NAME subscribe to it);
// P n:NODE carries notices for the sessions NODE takes for: "m"+ID (a
// direct message), "c"+ID (subscriptions changed), "d"+ID (destroyed),
// "r"+EP+":"+ID (claimed by another node, claim number EP).

type keys struct{ p string }

func (k keys) sess(id string) string  { return k.p + "{s:" + id + "}" }
func (k keys) subs(id string) string  { return k.p + "{s:" + id + "}:subs" }
func (k keys) queue(id string) string { return k.p + "{s:" + id + "}:q" }

func (k keys) members(name string) string { return k.p + "{c:" + name + "}:m" }
func (k keys) seq(name string) string     { return k.p + "{c:" + name + "}:n" }
func (k keys) stream(name string) string  { return k.p + "{c:" + name + "}:x" }
func (k keys) hist(name string) string    { return k.p + "{c:" + name + "}:h" }

func (k keys) index() string { return k.p + "{i}:sessions" }

// notice is the pub/sub channel of a stream's entries.
func (k keys) notice(name string) string { return k.p + "t:" + name }

// nodeChan is the prefix of the nodes' notice channels.
func (k keys) nodeChan() string { return k.p + "n:" }

// luaNow is Redis's clock in milliseconds: expiry never depends on the
// nodes' clocks.
const luaNow = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// publishScript: KEYS are, for each stream the message goes to (the
// channel's and its wildcard patterns'), its members, seq and stream
// keys. ARGV: max length, message id, data, then the notice channel of
// each stream. A stream without subscribers is left alone. Returns {the
// subscribers of all the streams added to (a session subscribed through
// several matching patterns counts once per pattern), then for each
// stream its index (from 0), the entry's sequence number and id}.
var publishScript = goredis.NewScript(`
local out = {0}
for i = 0, #KEYS / 3 - 1 do
  local c = redis.call('SCARD', KEYS[3 * i + 1])
  if c > 0 then
    local seq = redis.call('INCR', KEYS[3 * i + 2])
    local id = redis.call('XADD', KEYS[3 * i + 3], 'MAXLEN', '~', ARGV[1], '*', 'n', seq, 'm', ARGV[2], 'd', ARGV[3])
    redis.call('PUBLISH', ARGV[4 + i], seq .. '|' .. id .. '|' .. ARGV[2] .. '|' .. ARGV[3])
    out[1] = out[1] + c
    out[#out + 1] = i
    out[#out + 1] = seq
    out[#out + 1] = id
  end
end
return out
`)

// joinScript: KEYS: members, seq, stream of a subscription's stream;
// ARGV: session id. Adds the session to the members (so that publishes
// from now on are added to the stream) and returns the stream's current
// end as a cursor "SEQ:ID": the subscription starts after it.
var joinScript = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local n = redis.call('GET', KEYS[2]) or '0'
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return n .. ':' .. id
`)

// leaveScript: KEYS: members, seq, stream; ARGV: session id. Removes the
// session from the members; the last one out deletes the stream.
var leaveScript = goredis.NewScript(`
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2], KEYS[3]) end
return 0
`)

// createScript: KEYS: session; ARGV: info, ttl ms. Returns 1, or 0 when
// the id is taken.
var createScript = goredis.NewScript(luaNow + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'info', ARGV[1], 'ep', 0, 'dh', 0, 'exp', nowms() + tonumber(ARGV[2]))
return 1
`)

// indexScript: KEYS: the expiry index; ARGV: "add" (a new session) or
// "set" (only sessions in the index: one removed meanwhile is not added
// back), then pairs of (delay ms or "inf" or "del", session id). Sets each
// session's score to Redis's clock plus the delay.
var indexScript = goredis.NewScript(luaNow + `
local now = nowms()
local flag = 'XX'
if ARGV[1] == 'add' then flag = 'NX' end
for i = 2, #ARGV, 2 do
  local d = ARGV[i]
  if d == 'del' then redis.call('ZREM', KEYS[1], ARGV[i + 1])
  elseif d == 'inf' then redis.call('ZADD', KEYS[1], flag, '+inf', ARGV[i + 1])
  else redis.call('ZADD', KEYS[1], flag, now + tonumber(d), ARGV[i + 1]) end
end
return 0
`)

// touchScript: KEYS: session; ARGV: node, delay ms or "inf". Sets the
// session's expiry to Redis's clock plus the delay. A node that does not
// take for the session while another does only extends it (the taker
// decides). Returns -1 for an unknown session, else 1.
var touchScript = goredis.NewScript(luaNow + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'exp')
if not h[1] then return -1 end
local new = 'inf'
if ARGV[2] ~= 'inf' then new = nowms() + tonumber(ARGV[2]) end
if h[2] and h[2] ~= ARGV[1] and h[3] then
  if h[3] == 'inf' then return 1 end
  if new ~= 'inf' and tonumber(h[3]) >= new then return 1 end
end
redis.call('HSET', KEYS[1], 'exp', new)
return 1
`)

// luaDestroy removes a session's keys and tells its taker; it returns
// {info, subscriptions...}. KEYS: session, subs, queue; ARGV[1] the node
// channel prefix, ARGV[2] the id.
const luaDestroy = `
local function destroy(info, own)
  local subs = redis.call('HKEYS', KEYS[2])
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  if own then redis.call('PUBLISH', ARGV[1] .. own, 'd' .. ARGV[2]) end
  local out = {info}
  for i = 1, #subs do out[#out + 1] = subs[i] end
  return out
end
`

// destroyScript: KEYS: session, subs, queue; ARGV: node channel prefix,
// id. Returns {info, subscriptions...}, or an empty array for an unknown
// session.
var destroyScript = goredis.NewScript(luaDestroy + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own')
if not h[1] then return {} end
return destroy(h[1], h[2])
`)

// expireScript is destroyScript for a session whose expiry passed (by the
// session's own Redis clock). Returns {0} for an unknown session, {1,
// exp} for one that has not expired, {2, info, subscriptions...} for one
// it removed: exactly one sweeper gets that.
var expireScript = goredis.NewScript(luaNow + luaDestroy + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'exp')
if not h[1] then return {0} end
if not h[3] or h[3] == 'inf' or tonumber(h[3]) > nowms() then return {1, h[3] or 'inf'} end
local out = destroy(h[1], h[2])
table.insert(out, 1, 2)
return out
`)

// sweepScript: KEYS: the expiry index; ARGV: limit. Returns up to limit
// ids whose score passed.
var sweepScript = goredis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. nowms(), 'LIMIT', 0, tonumber(ARGV[1]))
`)

// claimScript: KEYS: session, subs, queue; ARGV: node, node channel
// prefix, id. Makes node the session's taker (the claim number ep goes
// up; the previous taker is told) and returns what it needs: {ep, info,
// state, dh, exp, {subs...}, {queue...}}, or {-1} for an unknown session.
var claimScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'ep', 'st', 'dh', 'exp')
if not h[1] then return {-1} end
local ep = tonumber(h[3] or '0') + 1
redis.call('HSET', KEYS[1], 'own', ARGV[1], 'ep', ep)
if h[2] and h[2] ~= ARGV[1] then redis.call('PUBLISH', ARGV[2] .. h[2], 'r' .. ep .. ':' .. ARGV[3]) end
return {ep, h[1], h[4] or '', h[5] or '0', h[6] or 'inf', redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1)}
`)

// commitScript: KEYS: for each session its key and its queue's; ARGV: for
// each session its claim number, the state to store ("" keeps it), the
// expiry delay ("" keeps it, "inf", or ms) and the direct sequence number
// up to which the queue's head is removed ("" for none). A session whose
// claim number changed (another node claimed it) is left alone. Returns
// {now, result per session: 1 stored, 0 claimed away, -1 unknown}.
var commitScript = goredis.NewScript(luaNow + `
local now = nowms()
local out = {now}
for i = 1, #KEYS / 2 do
  local sk, qk, a = KEYS[2 * i - 1], KEYS[2 * i], 4 * (i - 1)
  local h = redis.call('HMGET', sk, 'ep', 'dh')
  if not h[1] then out[#out + 1] = -1
  elseif h[1] ~= ARGV[a + 1] then out[#out + 1] = 0
  else
    if ARGV[a + 2] ~= '' then redis.call('HSET', sk, 'st', ARGV[a + 2]) end
    local d = ARGV[a + 3]
    if d == 'inf' then redis.call('HSET', sk, 'exp', 'inf')
    elseif d ~= '' then redis.call('HSET', sk, 'exp', now + tonumber(d)) end
    if ARGV[a + 4] ~= '' then
      local to, dh = tonumber(ARGV[a + 4]), tonumber(h[2] or '0')
      if to > dh then
        redis.call('LTRIM', qk, to - dh, -1)
        redis.call('HSET', sk, 'dh', to)
      end
    end
    out[#out + 1] = 1
  end
end
return out
`)

// deliverScript: KEYS: session, queue; ARGV: data, max queue, node
// channel prefix, id. Queues data with Redis's time, bounds the queue
// (dropping the oldest) and tells the session's taker. Returns 1, or 0
// for an unknown session.
var deliverScript = goredis.NewScript(luaNow + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'dh')
if not h[1] then return 0 end
local len = redis.call('RPUSH', KEYS[2], nowms() .. '|' .. ARGV[1])
local max = tonumber(ARGV[2])
if len > max then
  redis.call('LTRIM', KEYS[2], len - max, -1)
  redis.call('HSET', KEYS[1], 'dh', tonumber(h[3] or '0') + len - max)
end
if h[2] then redis.call('PUBLISH', ARGV[3] .. h[2], 'm' .. ARGV[4]) end
return 1
`)

// subscribeScript: KEYS: session, subs; ARGV: pattern, cursor, limit,
// node, node channel prefix, id. Returns 1 (added), 0 (already there),
// -1 (unknown session), -2 (limit reached). The session's taker, when
// another node, is told.
var subscribeScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'info', 'own')
if not h[1] then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('HLEN', KEYS[2]) >= limit then return -2 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if h[2] and h[2] ~= ARGV[4] then redis.call('PUBLISH', ARGV[5] .. h[2], 'c' .. ARGV[6]) end
return 1
`)

// unsubscribeScript: KEYS: session, subs; ARGV: pattern, node, node
// channel prefix, id. Returns 1 (removed), 0 (was not subscribed), -1
// (unknown session).
var unsubscribeScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'info', 'own')
if not h[1] then return -1 end
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
if h[2] and h[2] ~= ARGV[2] then redis.call('PUBLISH', ARGV[3] .. h[2], 'c' .. ARGV[4]) end
return 1
`)

// subscriptionsScript: KEYS: session, subs. Returns {-1} for an unknown
// session, else {1, {patterns...}}.
var subscriptionsScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
return {1, redis.call('HKEYS', KEYS[2])}
`)

// historyScript: KEYS: history list; ARGV: entry, max. RPUSH and LTRIM.
var historyScript = goredis.NewScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return 0
`)

// scripts are loaded into Redis at Start (and again after a Redis
// restart, when a pipeline meets NOSCRIPT).
var scripts = []*goredis.Script{publishScript, joinScript, leaveScript, createScript, indexScript,
	touchScript, destroyScript, expireScript, sweepScript, claimScript, commitScript, deliverScript,
	subscribeScript, unsubscribeScript, subscriptionsScript, historyScript}
