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
//	                      messages removed from the queue's head); qb (bytes
//	                      in the direct queue); dl, db, dq (direct messages
//	                      dropped for MaxQueue, MaxQueueBytes, MaxQueuedBytes
//	                      and not yet reported)
//	P{s:ID}:subs   hash   subscription pattern -> cursor of the stream when
//	                      subscribed ("SEQ:ID")
//	P{s:ID}:q      list   direct messages (Deliver), "US|SIZE|DATA"; the
//	                      first has sequence number dh+1
//	P{c:NAME}:m    set    ids of the sessions subscribed to exactly NAME
//	P{c:NAME}:n    hash   n (entries ever added to the stream), b (bytes in
//	                      it), tr (why it was last trimmed: l, b, q)
//	P{c:NAME}:x    stream the messages published on NAME (or matching the
//	                      pattern NAME), fields n (sequence), m (message id),
//	                      d (data), t (Redis-clock microseconds), s (size of
//	                      the JSON); at most MaxQueue entries and
//	                      MaxQueueBytes (give or take 1/16), never less than
//	                      the newest; it exists only while NAME has
//	                      subscribers
//	P{c:NAME}:hx   stream NAME's history (Historian): entry id 0-OFFSET,
//	                      fields t (Redis-clock ms), d (the delivery, with
//	                      its ext.pos); kept by the channel's policy
//	                      (messages, bytes, age), whatever its subscribers
//	P{c:NAME}:hm   hash   e (the history's epoch), o (its last offset), d
//	                      (the last offset the retention removed), b
//	                      (bytes in it)
//	P{i}:sessions  zset   session ids by expiry (Redis-clock ms, +inf):
//	                      where the sweepers look; each session's exp decides
//	P{q}:total     string bytes in all streams and direct queues
//	P{q}:sizes     zset   each stream's and direct queue's key by its bytes:
//	                      what MaxQueuedBytes sheds from, biggest first
//	P{h}:index     zset   channels with a history by last use
//	P{h}:seq       string the last use's counter
//
// Pub/sub channels: P t:NAME carries "SEQ|ID|MID|US|DATA" for every entry
// added to NAME's stream (nodes with readers of NAME subscribe to it);
// P n:NODE carries notices for the sessions NODE takes for: "m"+ID (a
// direct message), "c"+ID (subscriptions changed), "d"+ID (destroyed),
// "r"+EP+":"+ID (claimed by another node, claim number EP), "f"+ID+":"+NODE
// (NODE is about to claim the session: write what is pending for it, then
// say so), "h"+ID (the node asked so is done: claim).

type keys struct{ p string }

func (k keys) sess(id string) string  { return k.p + "{s:" + id + "}" }
func (k keys) subs(id string) string  { return k.p + "{s:" + id + "}:subs" }
func (k keys) queue(id string) string { return k.p + "{s:" + id + "}:q" }

func (k keys) members(name string) string  { return k.p + "{c:" + name + "}:m" }
func (k keys) seq(name string) string      { return k.p + "{c:" + name + "}:n" }
func (k keys) stream(name string) string   { return k.p + "{c:" + name + "}:x" }
func (k keys) hist(name string) string     { return k.p + "{c:" + name + "}:hx" }
func (k keys) histMeta(name string) string { return k.p + "{c:" + name + "}:hm" }

func (k keys) index() string { return k.p + "{i}:sessions" }

// The accounting of all queues together (MaxQueuedBytes).
func (k keys) total() string { return k.p + "{q}:total" }
func (k keys) sizes() string { return k.p + "{q}:sizes" }

// The channels with a history (MaxHistoryChannels).
func (k keys) histIndex() string { return k.p + "{h}:index" }
func (k keys) histSeq() string   { return k.p + "{h}:seq" }

// notice is the pub/sub channel of a stream's entries.
func (k keys) notice(name string) string { return k.p + "t:" + name }

// nodeChan is the prefix of the nodes' notice channels.
func (k keys) nodeChan() string { return k.p + "n:" }

// luaClock is Redis's clock in milliseconds: expiry never depends on the
// nodes' clocks.
const luaClock = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function nowus()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end
`

// luaAccount keeps the accounting of all queues: account(tk, zk, key,
// size) records that queue key holds size bytes now and returns the total
// of all queues.
const luaAccount = `
local function account(tk, zk, key, size)
  local old = tonumber(redis.call('ZSCORE', zk, key) or '0')
  if size > 0 then redis.call('ZADD', zk, size, key) else redis.call('ZREM', zk, key) end
  local t = redis.call('INCRBY', tk, size - old)
  if t <= 0 then redis.call('DEL', tk) return 0 end
  return t
end
`

// luaTrim trims streams: trim(x, mk, max, maxBytes, rb) drops the oldest
// entries of stream x (meta hash mk) beyond max entries and maxBytes
// bytes (0: no bound), never the newest, records why (l for max, rb for
// bytes) and returns the stream's bytes.
const luaTrim = `
local function esize(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 's' then return tonumber(fields[i + 1]) end
  end
  return 0
end
local function trim(x, mk, max, maxBytes, rb)
  local len = redis.call('XLEN', x)
  local b = tonumber(redis.call('HGET', mk, 'b') or '0')
  local start, keep, dropped, reason = '-', nil, 0, 'l'
  while not keep do
    local es = redis.call('XRANGE', x, start, '+', 'COUNT', 32)
    if #es == 0 then break end
    for i = 1, #es do
      local n = len - dropped
      local overLen = max > 0 and n > max
      if n > 1 and (overLen or (maxBytes > 0 and b > maxBytes)) then
        if not overLen then reason = rb end
        b = b - esize(es[i][2])
        dropped = dropped + 1
      else
        keep = es[i][1]
        break
      end
    end
    start = '(' .. es[#es][1]
  end
  if dropped > 0 and keep then
    redis.call('XTRIM', x, 'MINID', keep)
    redis.call('HSET', mk, 'b', b, 'tr', reason)
  end
  return b
end
`

// luaHistory appends to and trims histories: happend(hx, hm, data, cut,
// pre, jstart, epoch, maxLen, maxBytes, maxAge) gives the delivery in
// data (entry data whose JSON starts after jstart bytes) the next
// position of the history (hx, hm; a new one gets epoch), writes it into
// the delivery (data without its last cut bytes, then pre, the position
// and '"}}': as server.WithPosition does), appends the delivery and
// trims the history; it returns the new data and the position.
// htrim(hx, hm, maxLen, maxBytes, cut, b) removes the oldest entries
// beyond maxLen and maxBytes (never the newest) and stored before cut
// (Redis ms; 0: none), records the last offset removed and the bytes, and
// returns the bytes.
const luaHistory = `
local function hfield(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
local function htrim(hx, hm, maxLen, maxBytes, cut, b)
  local len = redis.call('XLEN', hx)
  local last = nil
  while len > 0 do
    local want = 16
    if maxLen > 0 and len > maxLen then want = math.min(16, len - maxLen) elseif maxLen > 0 then want = 1 end
    local es = redis.call('XRANGE', hx, '-', '+', 'COUNT', want)
    local ids, done = {}, false
    for i = 1, #es do
      local over = (maxLen > 0 and len > maxLen) or (maxBytes > 0 and b > maxBytes and len > 1)
      if not over and cut > 0 then over = tonumber(hfield(es[i][2], 't') or '0') < cut end
      if not over then done = true break end
      ids[#ids + 1] = es[i][1]
      b = b - #(hfield(es[i][2], 'd') or '')
      len = len - 1
      last = es[i][1]
    end
    if #ids > 0 then redis.call('XDEL', hx, unpack(ids)) end
    if done or #es == 0 then break end
    if cut == 0 and not ((maxLen > 0 and len > maxLen) or (maxBytes > 0 and b > maxBytes and len > 1)) then break end
  end
  if last then
    redis.call('HSET', hm, 'd', string.sub(last, 3), 'b', b)
  end
  return b
end
local function happend(hx, hm, data, cut, pre, jstart, epoch, maxLen, maxBytes, maxAge)
  if redis.call('HSETNX', hm, 'e', epoch) == 1 then redis.call('DEL', hx) end
  epoch = redis.call('HGET', hm, 'e')
  local off = redis.call('HINCRBY', hm, 'o', 1)
  local pos = epoch .. ':' .. off
  data = string.sub(data, 1, #data - cut) .. pre .. pos .. '"}}'
  local json = string.sub(data, jstart + 1)
  local now = nowms()
  redis.call('XADD', hx, '0-' .. off, 't', now, 'd', json)
  local b = redis.call('HINCRBY', hm, 'b', #json)
  local c = 0
  if maxAge > 0 then c = now - maxAge end
  htrim(hx, hm, maxLen, maxBytes, c, b)
  return data, pos
end
`

// luaDirect trims a session's direct queue: dtrim(sk, qk, len, qb, dh,
// max, maxBytes, rb) pops the oldest items beyond max items and maxBytes
// bytes (never the newest), counts them for the session (dl, or rb for
// bytes) and returns the queue's bytes and head.
const luaDirect = `
local function dsize(item)
  local _, s = string.match(item, '^(%d+)|(%d+)|')
  return tonumber(s or '0')
end
local function dtrim(sk, qk, len, qb, dh, max, maxBytes, rb)
  local dl, db = 0, 0
  while len > 1 and ((max > 0 and len > max) or (maxBytes > 0 and qb > maxBytes)) do
    local item = redis.call('LPOP', qk)
    if not item then break end
    if max > 0 and len > max then dl = dl + 1 else db = db + 1 end
    qb, len, dh = qb - dsize(item), len - 1, dh + 1
  end
  if dl > 0 then redis.call('HINCRBY', sk, 'dl', dl) end
  if db > 0 then redis.call('HINCRBY', sk, rb, db) end
  redis.call('HSET', sk, 'qb', qb, 'dh', dh)
  return qb, dh
end
`

// publishScript: KEYS are, for each of the ns streams the message goes to
// (the channel's and its wildcard patterns'), its members, meta and
// stream keys, then, when the message is kept, the channel's history and
// history meta keys, then (on a single Redis) the accounting keys. ARGV:
// ns, message id, data, its size, max entries, max bytes, the slack
// allowed over each before trimming, then the notice channel of each
// stream, then for a kept message (else nothing) its history arguments:
// cut, pre, jstart, a new epoch, max messages, max bytes, max age ms (see
// happend). A stream without subscribers is left alone. Returns {the
// subscribers of all the streams added to (a session subscribed through
// several matching patterns counts once per pattern), the total of all
// queues (-1: not accounted here; -2: accounted here, not this time), the
// message's position ("": not kept), then for each stream added to its
// index (from 0), the entry's sequence number, id, time and the stream's
// bytes}. A stream's length is checked, and its bytes accounted, every
// half slack messages (and when its bytes go over).
var publishScript = goredis.NewScript(luaClock + luaAccount + luaTrim + luaHistory + `
local ns, max, maxBytes = tonumber(ARGV[1]), tonumber(ARGV[5]), tonumber(ARGV[6])
local data, size = ARGV[3], tonumber(ARGV[4])
local sl, sb = tonumber(ARGV[7]), tonumber(ARGV[8])
-- The length is checked every ck messages (trimmed when over by more
-- than ck, so it stays within sl over) and the accounting of all queues
-- follows the stream then: a few calls fewer per publish.
local ck = math.max(math.floor(sl / 2), 1)
local h = 9 + ns
local nk = 3 * ns
local out = {0, -1, ''}
if #ARGV >= h + 6 then
  local pos
  data, pos = happend(KEYS[nk + 1], KEYS[nk + 2], data, tonumber(ARGV[h]), ARGV[h + 1], tonumber(ARGV[h + 2]),
    ARGV[h + 3], tonumber(ARGV[h + 4]), tonumber(ARGV[h + 5]), tonumber(ARGV[h + 6]))
  size = #data - tonumber(ARGV[h + 2])
  out[3] = pos
  nk = nk + 2
end
local acct = #KEYS > nk
if acct then out[2] = -2 end
for i = 0, ns - 1 do
  local c = redis.call('SCARD', KEYS[3 * i + 1])
  if c > 0 then
    local mk, x = KEYS[3 * i + 2], KEYS[3 * i + 3]
    local seq = redis.call('HINCRBY', mk, 'n', 1)
    local t = nowus()
    local id = redis.call('XADD', x, '*', 'n', seq, 'm', ARGV[2], 'd', data, 't', t, 's', size)
    local b = redis.call('HINCRBY', mk, 'b', size)
    local due = seq % ck == 0
    if (due and max > 0 and redis.call('XLEN', x) > max + ck) or (maxBytes > 0 and b > maxBytes + sb) then
      b = trim(x, mk, max, maxBytes, 'b')
      due = true
    end
    redis.call('PUBLISH', ARGV[9 + i], seq .. '|' .. id .. '|' .. ARGV[2] .. '|' .. t .. '|' .. data)
    if acct and due then out[2] = account(KEYS[nk + 1], KEYS[nk + 2], x, b) end
    out[1] = out[1] + c
    out[#out + 1] = i
    out[#out + 1] = seq
    out[#out + 1] = id
    out[#out + 1] = t
    out[#out + 1] = b
  end
end
return out
`)

// accountScript: KEYS: the accounting keys; ARGV: pairs of (queue key,
// bytes). Records the queues' sizes and returns the total of all queues.
var accountScript = goredis.NewScript(luaAccount + `
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
for i = 1, #ARGV, 2 do t = account(KEYS[1], KEYS[2], ARGV[i], tonumber(ARGV[i + 1])) end
return t
`)

// shedScript: KEYS: the accounting keys; ARGV: budget, target. When all
// queues hold more than budget bytes it returns, biggest first, the
// queues to trim and the bytes each should keep so that they hold at most
// target: the biggest is levelled down to the next, then both to the
// third, and so on. The trims themselves run on the queues' own slots.
var shedScript = goredis.NewScript(`
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
if total <= tonumber(ARGV[1]) then return {} end
local target = tonumber(ARGV[2])
local top = redis.call('ZREVRANGE', KEYS[2], 0, 63, 'WITHSCORES')
local qs = {}
for i = 1, #top, 2 do qs[#qs + 1] = {top[i], tonumber(top[i + 1])} end
local want = {}
for i = 1, #qs do want[i] = qs[i][2] end
local k = 1
while k <= #qs and total > target do
  local level = 0
  if k < #qs then level = qs[k + 1][2] end
  for j = 1, k do
    if total <= target then break end
    local cut = math.min(want[j] - level, total - target)
    if cut > 0 then want[j], total = want[j] - cut, total - cut end
  end
  k = k + 1
end
local out = {}
for i = 1, #qs do
  if want[i] < qs[i][2] then out[#out + 1] = qs[i][1]; out[#out + 1] = want[i] end
end
return out
`)

// trimStreamScript: KEYS: members, meta, stream; ARGV: bytes to keep.
// Trims for MaxQueuedBytes; returns the stream's bytes.
var trimStreamScript = goredis.NewScript(luaTrim + `
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
return trim(KEYS[3], KEYS[2], 0, math.max(tonumber(ARGV[1]), 1), 'q')
`)

// trimDirectScript: KEYS: session, queue; ARGV: bytes to keep. Trims for
// MaxQueuedBytes; returns the queue's bytes.
var trimDirectScript = goredis.NewScript(luaDirect + `
local h = redis.call('HMGET', KEYS[1], 'qb', 'dh')
if not h[1] then return 0 end
local qb = dtrim(KEYS[1], KEYS[2], redis.call('LLEN', KEYS[2]), tonumber(h[1]), tonumber(h[2] or '0'), 0, math.max(tonumber(ARGV[1]), 1), 'dq')
return qb
`)

// joinScript: KEYS: members, meta, stream of a subscription's stream;
// ARGV: session id. Adds the session to the members (so that publishes
// from now on are added to the stream) and returns the stream's current
// end as a cursor "SEQ:ID": the subscription starts after it. For an
// empty stream (a new one: the last subscriber's leaving deleted the
// previous, whose sequence numbers start again) the cursor's id is just
// before Redis's clock, so that a node's window of the previous stream is
// not taken for this one (see stream.after).
var joinScript = goredis.NewScript(luaClock + luaJoin + `
return join()
`)

// luaJoin is the body of the join scripts.
const luaJoin = `
local function join()
  redis.call('SADD', KEYS[1], ARGV[1])
  local n = redis.call('HGET', KEYS[2], 'n') or '0'
  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  if #last > 0 then return n .. ':' .. last[1][1] end
  return n .. ':' .. (nowms() - 1) .. '-18446744073709551615'
end
`

// joinHistoryScript is joinScript for a channel with history (KEYS: the
// same, then the history meta): it also returns the history's newest
// position "EPOCH:OFFSET" ("" when it has none), as {cursor, position}.
// Publishing adds to the history and the stream in one script, so every
// message after that position is after the cursor.
var joinHistoryScript = goredis.NewScript(luaClock + luaJoin + `
local cur = join()
local h = redis.call('HMGET', KEYS[4], 'e', 'o')
local pos = ''
if h[1] then pos = h[1] .. ':' .. (h[2] or '0') end
return {cur, pos}
`)

// historyReadScript: KEYS: history, history meta; ARGV: mode ("since",
// "before" or "newest"), offset, count, max age ms (0: none). Removes the
// entries past the age, then returns {epoch, last offset, last offset
// removed, then up to count entries as offset, delivery pairs: after
// offset oldest first ("since"), before offset newest first ("before"),
// or the newest first}, or {} when there is no history.
var historyReadScript = goredis.NewScript(luaClock + luaHistory + `
local h = redis.call('HMGET', KEYS[2], 'e', 'o', 'd', 'b')
if not h[1] then return {} end
local maxAge = tonumber(ARGV[4])
local dropped = h[3] or '0'
if maxAge > 0 then
  htrim(KEYS[1], KEYS[2], 0, 0, nowms() - maxAge, tonumber(h[4] or '0'))
  dropped = redis.call('HGET', KEYS[2], 'd') or '0'
end
local es
local n = tonumber(ARGV[3])
if ARGV[1] == 'since' then
  es = redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[2], '+', 'COUNT', n)
elseif ARGV[1] == 'before' then
  es = {}
  if ARGV[2] ~= '0' then es = redis.call('XREVRANGE', KEYS[1], '(0-' .. ARGV[2], '-', 'COUNT', n) end
else
  es = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', n)
end
local out = {h[1], h[2] or '0', dropped}
for i = 1, #es do
  out[#out + 1] = string.sub(es[i][1], 3)
  out[#out + 1] = hfield(es[i][2], 'd') or ''
end
return out
`)

// leaveScript: KEYS: members, meta, stream; ARGV: session id. Removes the
// session from the members; the last one out deletes the stream. Returns
// 1 when it did (the stream holds no bytes any more).
var leaveScript = goredis.NewScript(`
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  return 1
end
return 0
`)

// createScript: KEYS: session; ARGV: info, ttl ms. Returns 1, or 0 when
// the id is taken.
var createScript = goredis.NewScript(luaClock + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'info', ARGV[1], 'ep', 0, 'dh', 0, 'qb', 0, 'exp', nowms() + tonumber(ARGV[2]))
return 1
`)

// indexScript: KEYS: the expiry index; ARGV: "add" (a new session) or
// "set" (only sessions in the index: one removed meanwhile is not added
// back), then pairs of (delay ms or "inf" or "del", session id). Sets each
// session's score to Redis's clock plus the delay.
var indexScript = goredis.NewScript(luaClock + `
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
var touchScript = goredis.NewScript(luaClock + `
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
// {info, direct queue bytes, subscriptions...}. KEYS: session, subs,
// queue; ARGV[1] the node channel prefix, ARGV[2] the id.
const luaDestroy = `
local function destroy(info, own, qb)
  local subs = redis.call('HKEYS', KEYS[2])
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  if own then redis.call('PUBLISH', ARGV[1] .. own, 'd' .. ARGV[2]) end
  local out = {info, tonumber(qb or '0')}
  for i = 1, #subs do out[#out + 1] = subs[i] end
  return out
end
`

// destroyScript: KEYS: session, subs, queue; ARGV: node channel prefix,
// id. Returns {info, direct queue bytes, subscriptions...}, or an empty
// array for an unknown session.
var destroyScript = goredis.NewScript(luaDestroy + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'qb')
if not h[1] then return {} end
return destroy(h[1], h[2], h[3])
`)

// expireScript is destroyScript for a session whose expiry passed (by the
// session's own Redis clock). Returns {0} for an unknown session, {1,
// exp} for one that has not expired, {2, info, bytes, subscriptions...}
// for one it removed: exactly one sweeper gets that.
var expireScript = goredis.NewScript(luaClock + luaDestroy + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'exp', 'qb')
if not h[1] then return {0} end
if not h[3] or h[3] == 'inf' or tonumber(h[3]) > nowms() then return {1, h[3] or 'inf'} end
local out = destroy(h[1], h[2], h[4])
table.insert(out, 1, 2)
return out
`)

// sweepScript: KEYS: the expiry index; ARGV: limit. Returns up to limit
// ids whose score passed.
var sweepScript = goredis.NewScript(luaClock + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. nowms(), 'LIMIT', 0, tonumber(ARGV[1]))
`)

// claimScript: KEYS: session, subs, queue; ARGV: node, node channel
// prefix, id, ask ("1" or "0"). Makes node the session's taker (the claim
// number ep goes up; the previous taker is told) and returns what it
// needs: {ep, info, state, dh, {dl, db, dq}, {subs...}, {queue...}}, or
// {-1} for an unknown session. With ask, when another node takes for the
// session, it changes nothing: it asks that node to hand the session over
// ("f" notice) and returns {-2, the clients that received the notice}.
var claimScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'ep', 'st', 'dh', 'dl', 'db', 'dq')
if not h[1] then return {-1} end
if ARGV[4] == '1' and h[2] and h[2] ~= ARGV[1] then
  return {-2, redis.call('PUBLISH', ARGV[2] .. h[2], 'f' .. ARGV[3] .. ':' .. ARGV[1])}
end
local ep = tonumber(h[3] or '0') + 1
redis.call('HSET', KEYS[1], 'own', ARGV[1], 'ep', ep)
if h[2] and h[2] ~= ARGV[1] then redis.call('PUBLISH', ARGV[2] .. h[2], 'r' .. ep .. ':' .. ARGV[3]) end
return {ep, h[1], h[4] or '', h[5] or '0', {h[6] or '0', h[7] or '0', h[8] or '0'}, redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1)}
`)

// directScript: KEYS: session, queue. Returns the direct queue as a claim
// does: {dh, {dl, db, dq}, {queue...}}, or {} for an unknown session.
var directScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'dh', 'dl', 'db', 'dq')
if not h[1] then return {} end
return {h[1], {h[2] or '0', h[3] or '0', h[4] or '0'}, redis.call('LRANGE', KEYS[2], 0, -1)}
`)

// commitScript: KEYS: for each of the n sessions its key and its queue's,
// then (on a single Redis) the accounting keys; ARGV: n, then for each
// session its claim number, the state to store ("" keeps it), the expiry
// delay ("" keeps it, "inf", or ms), the direct sequence number up to
// which the queue's head is removed ("" for none) and the direct drops it
// reported ("DL,DB,DQ" or ""). A session whose claim number changed
// (another node claimed it) is left alone. Returns {now, the total of all
// queues (-1: not accounted here), then per session its result (1 stored,
// 0 claimed away, -1 unknown) and its direct queue's bytes}.
var commitScript = goredis.NewScript(luaClock + luaAccount + luaDirect + `
local now = nowms()
local n = tonumber(ARGV[1])
local acct = #KEYS > 2 * n
local out = {now, -1}
for i = 1, n do
  local sk, qk, a = KEYS[2 * i - 1], KEYS[2 * i], 1 + 5 * (i - 1)
  local ep = redis.call('HGET', sk, 'ep')
  if not ep then out[#out + 1] = -1; out[#out + 1] = 0
  elseif ep ~= ARGV[a + 1] then out[#out + 1] = 0; out[#out + 1] = 0
  else
    local h = {ep, 0, 0}
    if ARGV[a + 4] ~= '' then h = redis.call('HMGET', sk, 'ep', 'dh', 'qb') end
    if ARGV[a + 2] ~= '' then redis.call('HSET', sk, 'st', ARGV[a + 2]) end
    local d = ARGV[a + 3]
    if d == 'inf' then redis.call('HSET', sk, 'exp', 'inf')
    elseif d ~= '' then redis.call('HSET', sk, 'exp', now + tonumber(d)) end
    local qb = tonumber(h[3] or '0')
    if ARGV[a + 4] ~= '' then
      local to, dh = tonumber(ARGV[a + 4]), tonumber(h[2] or '0')
      if to > dh then
        local gone = redis.call('LRANGE', qk, 0, to - dh - 1)
        for j = 1, #gone do qb = qb - dsize(gone[j]) end
        redis.call('LTRIM', qk, to - dh, -1)
        redis.call('HSET', sk, 'dh', to, 'qb', qb)
        if acct then out[2] = account(KEYS[2 * n + 1], KEYS[2 * n + 2], qk, qb) end
      end
    end
    if ARGV[a + 5] ~= '' then
      local dl, db, dq = string.match(ARGV[a + 5], '^(%d+),(%d+),(%d+)$')
      if tonumber(dl) > 0 then redis.call('HINCRBY', sk, 'dl', -tonumber(dl)) end
      if tonumber(db) > 0 then redis.call('HINCRBY', sk, 'db', -tonumber(db)) end
      if tonumber(dq) > 0 then redis.call('HINCRBY', sk, 'dq', -tonumber(dq)) end
    end
    out[#out + 1] = 1
    out[#out + 1] = qb
  end
end
return out
`)

// deliverScript: KEYS: session, queue, then (on a single Redis) the
// accounting keys; ARGV: data, its size, max items, max bytes, node
// channel prefix, id. Queues data with Redis's time, bounds the queue
// (dropping the oldest, never the newest) and tells the session's taker.
// Returns {1, the queue's bytes, the total of all queues (-1: not
// accounted here)}, or {0} for an unknown session.
var deliverScript = goredis.NewScript(luaClock + luaAccount + luaDirect + `
local h = redis.call('HMGET', KEYS[1], 'info', 'own', 'dh', 'qb')
if not h[1] then return {0} end
local size = tonumber(ARGV[2])
local len = redis.call('RPUSH', KEYS[2], nowus() .. '|' .. size .. '|' .. ARGV[1])
local qb = dtrim(KEYS[1], KEYS[2], len, tonumber(h[4] or '0') + size, tonumber(h[3] or '0'),
  tonumber(ARGV[3]), tonumber(ARGV[4]), 'db')
if h[2] then redis.call('PUBLISH', ARGV[5] .. h[2], 'm' .. ARGV[6]) end
local total = -1
if #KEYS > 2 then total = account(KEYS[3], KEYS[4], KEYS[2], qb) end
return {1, qb, total}
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

// subscriptionsScript: KEYS: session, subs; ARGV: "all" for patterns and
// their cursors, else patterns only. Returns {-1} for an unknown session,
// else {1, {patterns...}} (or {1, {pattern, cursor, ...}}).
var subscriptionsScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[1] == 'all' then return {1, redis.call('HGETALL', KEYS[2])} end
return {1, redis.call('HKEYS', KEYS[2])}
`)

// historyUseScript: KEYS: history index, its counter; ARGV: channel, max
// channels (0: no limit), "add" (appended to) or "read". Marks the
// channel the most recently used (a read only if it has a history) and
// returns the least recently used channels beyond max, forgotten from the
// index (their lists are deleted on their own slots).
var historyUseScript = goredis.NewScript(`
if ARGV[3] == 'add' then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
elseif redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
end
local limit = tonumber(ARGV[2])
if limit <= 0 then return {} end
local over = redis.call('ZCARD', KEYS[1]) - limit
if over <= 0 then return {} end
local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
return old
`)

// scripts are loaded into Redis at Start (and again after a Redis
// restart, when a pipeline meets NOSCRIPT).
var scripts = []*goredis.Script{publishScript, accountScript, shedScript, trimStreamScript, trimDirectScript,
	joinScript, leaveScript, createScript, indexScript, touchScript, destroyScript, expireScript, sweepScript,
	claimScript, directScript, commitScript, deliverScript, subscribeScript, unsubscribeScript,
	subscriptionsScript, joinHistoryScript, historyReadScript, historyUseScript}
