package redis

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/server/auth/authtest"
)

// testClient returns a go-redis client on the shared redis-server.
func testClient(t *testing.T) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(sharedRedis(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLoginStore(t *testing.T) {
	authtest.LoginStore(t, func(t *testing.T, lim auth.LoginLimits) auth.LoginStore {
		return NewLoginStore(testClient(t), testPrefix(t), lim)
	})
}

func TestGuesses(t *testing.T) {
	authtest.Guesses(t, func(t *testing.T, lim auth.GuessLimits) auth.Guesses {
		return NewGuesses(testClient(t), testPrefix(t), lim)
	})
}

// TestLoginStoreKeysExpire: a login's keys carry the login's expiry, so
// Redis drops them by itself; the failure counters last their window.
func TestLoginStoreKeysExpire(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix(t)
	s := NewLoginStore(c, prefix, auth.LoginLimits{MaxAge: time.Hour, Idle: 10 * time.Minute, PerUser: 3})
	now := time.Now()
	if err := s.Add(t.Context(), auth.Login{ID: "x", User: "alice", Created: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(t.Context(), s.loginPrefix("alice")+"x").Result()
	if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("login key TTL %v (%v), want the idle time, 10m", ttl, err)
	}
	if err := s.Seen(t.Context(), "alice", "x", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := c.PTTL(t.Context(), s.loginPrefix("alice")+"x").Result(); ttl <= 14*time.Minute {
		t.Errorf("after Seen the TTL is %v, want about 15m", ttl)
	}
	if ttl, _ := c.PTTL(t.Context(), s.indexKey("alice")).Result(); ttl <= 0 {
		t.Errorf("the index key never expires (TTL %v)", ttl)
	}

	g := NewGuesses(c, prefix, auth.GuessLimits{Window: time.Minute})
	r, err := g.Reserve(t.Context(), "alice", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	ku, kua := g.userKeys(r.User, r.Addr)
	for _, k := range []string{ku, kua, g.addrKey(r.Addr)} {
		if ttl, err := c.PTTL(t.Context(), k).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("%s TTL %v (%v), want the window", k, ttl, err)
		}
	}
}

// TestGuessesSharedByNodes: two nodes counting on one Redis share the
// limits: attempts on either count against the same budget.
func TestGuessesSharedByNodes(t *testing.T) {
	prefix := testPrefix(t)
	lim := auth.GuessLimits{PerUserIP: 4}
	a, b := NewGuesses(testClient(t), prefix, lim), NewGuesses(testClient(t), prefix, lim)
	for i, g := range []*Guesses{a, b, a, b} {
		if _, err := g.Reserve(t.Context(), "alice", "192.0.2.1"); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	for _, g := range []*Guesses{a, b} {
		if _, err := g.Reserve(t.Context(), "alice", "192.0.2.1"); err == nil {
			t.Error("a fifth attempt on either node was let through")
		}
	}
}
