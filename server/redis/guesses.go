package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/server/auth"
)

// Guesses is an auth.Guesses in Redis: every node sharing the Redis and
// prefix counts login attempts together, so the limits hold for the
// cluster as a whole, not per node. Create it with NewGuesses. Safe for
// concurrent use.
//
// Keys (P is the prefix, U the user name and A the address in hex):
//
//	P guess:{U}:u     zset  the user's attempts, scored by Redis time (ms)
//	P guess:{U}:a:A   zset  the user's attempts from address A
//	P guess:ip:{A}    zset  the attempts from address A
//
// An attempt reserves in the user's two counters (one script, one hash
// slot), then in the address's; when the address refuses, the user's
// reservation is taken back. Each counter is checked and incremented
// atomically, so no counter ever lets more attempts through than its
// limit, on one Redis or on Redis Cluster. Times are Redis's (TIME), so
// the nodes' clocks need not agree.
type Guesses struct {
	c    goredis.UniversalClient
	p    string
	lim  auth.GuessLimits
	node string
	seq  atomic.Uint64
}

// NewGuesses returns Guesses on c with keys starting with prefix (default
// "bayeux:").
func NewGuesses(c goredis.UniversalClient, prefix string, lim auth.GuessLimits) *Guesses {
	if prefix == "" {
		prefix = "bayeux:"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Guesses{c: c, p: prefix, lim: lim.WithDefaults(), node: hex.EncodeToString(b[:])}
}

// Limits returns the limits in force.
func (g *Guesses) Limits() auth.GuessLimits { return g.lim }

func (g *Guesses) userKeys(user, addr string) (u, ua string) {
	base := g.p + "guess:{" + hex.EncodeToString([]byte(user)) + "}:"
	return base + "u", base + "a:" + hex.EncodeToString([]byte(addr))
}

func (g *Guesses) addrKey(addr string) string {
	return g.p + "guess:ip:{" + hex.EncodeToString([]byte(addr)) + "}"
}

// luaNow is Redis's clock in milliseconds.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// guessUserScript reserves an attempt in a user's counters. KEYS: user,
// user+address. ARGV: window ms, per user+address, per user, member. It
// returns 0 (reserved), 1 (per user+address refuses) or 2 (per user
// refuses: the user is under attack and this address failed already).
var guessUserScript = goredis.NewScript(luaNow + `
local w = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - w)
local nu, nua = redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])
if nua >= tonumber(ARGV[2]) then return 1 end
if nu >= tonumber(ARGV[3]) and nua > 0 then return 2 end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], w)
end
return 0
`)

// guessAddrScript reserves an attempt in an address's counter. KEYS:
// address. ARGV: window ms, limit, member. It returns 1 when reserved.
var guessAddrScript = goredis.NewScript(luaNow + `
local w = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], w)
return 1
`)

// Reserve implements auth.Guesses.
func (g *Guesses) Reserve(ctx context.Context, user, addr string) (auth.Guess, error) {
	r := auth.Guess{User: auth.UserKey(user), Addr: auth.AddrKey(addr), ID: g.node + "." + strconv.FormatUint(g.seq.Add(1), 10)}
	ku, kua := g.userKeys(r.User, r.Addr)
	w := g.lim.Window.Milliseconds()
	n, err := guessUserScript.Run(ctx, g.c, []string{ku, kua}, w, g.lim.PerUserIP, g.lim.PerUser, r.ID).Int()
	if err != nil {
		return auth.Guess{}, fmt.Errorf("bayeux/redis: counting a login attempt: %w", err)
	}
	switch n {
	case 1:
		return auth.Guess{}, &auth.LimitError{Reason: auth.RefusedLoginUserIP}
	case 2:
		return auth.Guess{}, &auth.LimitError{Reason: auth.RefusedLoginUser}
	}
	ok, err := guessAddrScript.Run(ctx, g.c, []string{g.addrKey(r.Addr)}, w, g.lim.PerIP, r.ID).Int()
	if err != nil || ok != 1 {
		// Take the user's reservation back: this attempt is not made.
		g.c.ZRem(context.WithoutCancel(ctx), ku, r.ID)
		g.c.ZRem(context.WithoutCancel(ctx), kua, r.ID)
		if err != nil {
			return auth.Guess{}, fmt.Errorf("bayeux/redis: counting a login attempt: %w", err)
		}
		return auth.Guess{}, &auth.LimitError{Reason: auth.RefusedLoginIP}
	}
	return r, nil
}

// Succeeded implements auth.Guesses.
func (g *Guesses) Succeeded(ctx context.Context, r auth.Guess) error {
	ku, kua := g.userKeys(r.User, r.Addr)
	if err := g.c.Del(ctx, kua).Err(); err != nil {
		return err
	}
	if err := g.c.ZRem(ctx, ku, r.ID).Err(); err != nil {
		return err
	}
	return g.c.ZRem(ctx, g.addrKey(r.Addr), r.ID).Err()
}

var _ auth.Guesses = (*Guesses)(nil)
