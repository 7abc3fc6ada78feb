package redis

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/server/auth"
)

// LoginStore is an auth.LoginStore in Redis, shared by every node that
// uses the same Redis and prefix: a login made on one node logs in on the
// others, and ending it on one ends it everywhere at once. Create it with
// NewLoginStore. Safe for concurrent use.
//
// Keys (P is the prefix, U the user name in hex, so that all keys of a
// user share one Redis Cluster hash slot):
//
//	P login:{U}:ID   hash  user, created, seen (Unix ms), ip, ua; it
//	                       expires when the login does (LoginLimits)
//	P logins:{U}     zset  the user's login IDs scored by last seen
//
// Every operation is one script on one user's keys, so it is atomic on a
// single Redis and on Redis Cluster alike.
type LoginStore struct {
	c   goredis.UniversalClient
	p   string
	lim auth.LoginLimits
	now func() time.Time
}

// NewLoginStore returns a LoginStore on c with keys starting with prefix
// (default "bayeux:", the engine's). Any go-redis client works: the
// engine's (Engine.Client), a cluster or a failover client.
func NewLoginStore(c goredis.UniversalClient, prefix string, lim auth.LoginLimits) *LoginStore {
	if prefix == "" {
		prefix = "bayeux:"
	}
	return &LoginStore{c: c, p: prefix, lim: lim.WithDefaults(), now: time.Now}
}

// Limits returns the limits in force.
func (s *LoginStore) Limits() auth.LoginLimits { return s.lim }

func (s *LoginStore) userTag(user string) string { return "{" + hex.EncodeToString([]byte(user)) + "}" }

// loginPrefix is what the key of each login of user starts with.
func (s *LoginStore) loginPrefix(user string) string { return s.p + "login:" + s.userTag(user) + ":" }
func (s *LoginStore) indexKey(user string) string    { return s.p + "logins:" + s.userTag(user) }

// ttl is how long l lives from now on.
func (s *LoginStore) ttl(l auth.Login, now time.Time) time.Duration {
	end := l.Created.Add(s.lim.MaxAge)
	if idle := l.LastSeen.Add(s.lim.Idle); idle.Before(end) {
		end = idle
	}
	return end.Sub(now)
}

// luaLoginAdd stores a login and keeps the user's newest PerUser ones.
// KEYS: login hash, index. ARGV: id, user, created, seen, ip, ua, ttl ms,
// per user, login key prefix, index ttl ms.
var loginAddScript = goredis.NewScript(`
local id, seen, per, lp = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[8]), ARGV[9]
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'created', ARGV[3], 'seen', ARGV[4], 'ip', ARGV[5], 'ua', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', lp .. old) == 0 then redis.call('ZREM', KEYS[2], old) end
end
redis.call('ZADD', KEYS[2], seen, id)
local n = redis.call('ZCARD', KEYS[2])
if n > per then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, n - per - 1)) do
    redis.call('DEL', lp .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - per - 1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[10])
return n
`)

// Add implements auth.LoginStore.
func (s *LoginStore) Add(ctx context.Context, l auth.Login) error {
	now := s.now()
	ttl := s.ttl(l, now)
	if ttl <= 0 {
		return nil
	}
	lp := s.loginPrefix(l.User)
	err := loginAddScript.Run(ctx, s.c, []string{lp + l.ID, s.indexKey(l.User)},
		l.ID, l.User, l.Created.UnixMilli(), l.LastSeen.UnixMilli(), l.IP, auth.CleanUserAgent(l.UserAgent),
		ttl.Milliseconds(), s.lim.PerUser, lp, s.lim.MaxAge.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("bayeux/redis: storing a login: %w", err)
	}
	return nil
}

// Get implements auth.LoginStore.
func (s *LoginStore) Get(ctx context.Context, user, id string) (auth.Login, bool, error) {
	h, err := s.c.HGetAll(ctx, s.loginPrefix(user)+id).Result()
	if err != nil {
		return auth.Login{}, false, fmt.Errorf("bayeux/redis: reading a login: %w", err)
	}
	l, ok := parseLogin(id, h)
	if !ok || l.User != user || s.lim.Expired(l, s.now()) {
		return auth.Login{}, false, nil
	}
	return l, true, nil
}

func parseLogin(id string, h map[string]string) (auth.Login, bool) {
	if len(h) == 0 || h["user"] == "" {
		return auth.Login{}, false
	}
	ms := func(k string) time.Time {
		n, _ := strconv.ParseInt(h[k], 10, 64)
		return time.UnixMilli(n)
	}
	return auth.Login{ID: id, User: h["user"], Created: ms("created"), LastSeen: ms("seen"), IP: h["ip"], UserAgent: h["ua"]}, true
}

// loginSeenScript records a login's last use. KEYS: login hash, index.
// ARGV: id, seen, ttl ms.
var loginSeenScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
return 1
`)

// Seen implements auth.LoginStore.
func (s *LoginStore) Seen(ctx context.Context, user, id string, at time.Time) error {
	l, ok, err := s.Get(ctx, user, id)
	if err != nil || !ok {
		return err
	}
	l.LastSeen = at
	ttl := s.ttl(l, s.now())
	if ttl <= 0 {
		_, _, err := s.Remove(ctx, user, id)
		return err
	}
	err = loginSeenScript.Run(ctx, s.c, []string{s.loginPrefix(user) + id, s.indexKey(user)},
		id, at.UnixMilli(), ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("bayeux/redis: recording a login's use: %w", err)
	}
	return nil
}

// loginRemoveScript ends logins of a user and returns them as
// {id, field, value, ..., "", id, ...} groups (an empty string ends
// each). KEYS: index. ARGV: login key prefix, except, ids... (none: every
// login of the user but except).
var loginRemoveScript = goredis.NewScript(`
local lp, except = ARGV[1], ARGV[2]
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, -1)
end
local out = {}
for _, id in ipairs(ids) do
  if id ~= except then
    local h = redis.call('HGETALL', lp .. id)
    if #h > 0 then
      out[#out + 1] = id
      for _, v in ipairs(h) do out[#out + 1] = v end
      out[#out + 1] = ''
      redis.call('DEL', lp .. id)
    end
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`)

func (s *LoginStore) remove(ctx context.Context, user, except string, ids ...string) ([]auth.Login, error) {
	args := append([]any{s.loginPrefix(user), except}, toAny(ids)...)
	v, err := loginRemoveScript.Run(ctx, s.c, []string{s.indexKey(user)}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("bayeux/redis: ending logins: %w", err)
	}
	return parseLoginGroups(v), nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// parseLoginGroups reads {id, field, value, ..., ""} groups.
func parseLoginGroups(v []string) []auth.Login {
	var out []auth.Login
	for i := 0; i < len(v); {
		id := v[i]
		i++
		h := map[string]string{}
		for i+1 < len(v) && v[i] != "" {
			h[v[i]] = v[i+1]
			i += 2
		}
		i++ // the ""
		if l, ok := parseLogin(id, h); ok {
			out = append(out, l)
		}
	}
	return out
}

// Remove implements auth.LoginStore.
func (s *LoginStore) Remove(ctx context.Context, user, id string) (auth.Login, bool, error) {
	if id == "" {
		return auth.Login{}, false, nil
	}
	gone, err := s.remove(ctx, user, "", id)
	if err != nil || len(gone) == 0 {
		return auth.Login{}, false, err
	}
	return gone[0], true, nil
}

// RemoveUser implements auth.LoginStore.
func (s *LoginStore) RemoveUser(ctx context.Context, user, except string) ([]auth.Login, error) {
	return s.remove(ctx, user, except)
}

// loginListScript returns the logins of a user in the groups of
// loginRemoveScript, dropping index entries whose login expired. KEYS:
// index. ARGV: login key prefix.
var loginListScript = goredis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = id
    for _, v in ipairs(h) do out[#out + 1] = v end
    out[#out + 1] = ''
  end
end
return out
`)

// List implements auth.LoginStore.
func (s *LoginStore) List(ctx context.Context, user string) ([]auth.Login, error) {
	v, err := loginListScript.Run(ctx, s.c, []string{s.indexKey(user)}, s.loginPrefix(user)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("bayeux/redis: listing logins: %w", err)
	}
	now := s.now()
	var out []auth.Login
	for _, l := range parseLoginGroups(v) {
		if l.User == user && !s.lim.Expired(l, now) {
			out = append(out, l)
		}
	}
	auth.SortLogins(out)
	return out, nil
}

var _ auth.LoginStore = (*LoginStore)(nil)
