// Package authtest holds conformance tests that every auth.Guesses and
// auth.LoginStore implementation must pass (the in-process ones in
// server/auth, the Redis ones in server/redis). It is imported by tests
// only.
package authtest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/server/auth"
)

// SmallGuessLimits are the limits the Guesses tests use.
var SmallGuessLimits = auth.GuessLimits{Window: time.Hour, PerUserIP: 3, PerIP: 5, PerUser: 4}

// attempt is one step of a Guesses scenario: user tries from addr and the
// password is right (ok) or not; want is the refusal reason ("" = let
// through to the password check).
type attempt struct {
	user, addr string
	right      bool
	want       string
}

// Guesses runs the conformance tests against Guesses from newGuesses,
// which must return a fresh, empty counter with the given limits each
// time.
func Guesses(t *testing.T, newGuesses func(t *testing.T, lim auth.GuessLimits) auth.Guesses) {
	const (
		ok     = ""
		userIP = auth.RefusedLoginUserIP
		ip     = auth.RefusedLoginIP
		user   = auth.RefusedLoginUser
	)
	type testCase struct {
		name  string
		steps []attempt
	}
	for _, tc := range []testCase{
		{name: "per user and address", steps: []attempt{
			{"alice", "192.0.2.1", false, ok}, {"alice", "192.0.2.1", false, ok}, {"alice", "192.0.2.1", false, ok},
			{"alice", "192.0.2.1", true, userIP}, // even the right password
			{"alice", "192.0.2.2", true, ok},     // the owner elsewhere
			{"bob", "192.0.2.1", true, ok},       // another user from there
		}},
		{name: "per address, any users", steps: []attempt{
			{"u1", "192.0.2.1", false, ok}, {"u2", "192.0.2.1", false, ok}, {"u3", "192.0.2.1", false, ok},
			{"u4", "192.0.2.1", false, ok}, {"u5", "192.0.2.1", false, ok},
			{"u6", "192.0.2.1", true, ip},
			{"u6", "192.0.2.9", true, ok},
		}},
		{name: "a user under attack: clean addresses only, once each", steps: []attempt{
			{"alice", "198.51.100.1", false, ok}, {"alice", "198.51.100.2", false, ok},
			{"alice", "198.51.100.3", false, ok}, {"alice", "198.51.100.4", false, ok},
			// Four failures: alice is under attack. An address that
			// failed for her is refused; a clean one may try once.
			{"alice", "198.51.100.1", true, user},
			{"alice", "198.51.100.5", false, ok},
			{"alice", "198.51.100.5", false, user},
			// The owner from a clean address gets in; other users are
			// not affected.
			{"alice", "203.0.113.7", true, ok},
			{"bob", "198.51.100.1", true, ok},
		}},
		{name: "a success forgives its address's failures for the user only", steps: []attempt{
			{"alice", "192.0.2.1", false, ok}, {"alice", "192.0.2.1", false, ok},
			{"alice", "192.0.2.1", true, ok},
			// Two more for alice from there (without the success,
			// only one would pass)...
			{"alice", "192.0.2.1", false, ok}, {"alice", "192.0.2.1", false, ok},
			// ...but the address keeps its earlier failures: 2 + 2 + 1
			// reach its limit of 5.
			{"bob", "192.0.2.1", false, ok},
			{"carol", "192.0.2.1", true, ip},
		}},
		{name: "IPv6 counts per /64", steps: []attempt{
			{"alice", "2001:db8::1", false, ok}, {"alice", "2001:db8::2", false, ok}, {"alice", "2001:db8::3", false, ok},
			{"alice", "2001:db8::ffff:1", true, userIP},
			{"alice", "2001:db8:0:1::1", true, ok},
		}},
		{name: "IPv4-mapped IPv6 is IPv4", steps: []attempt{
			{"alice", "::ffff:192.0.2.1", false, ok}, {"alice", "192.0.2.1", false, ok}, {"alice", "::ffff:192.0.2.1", false, ok},
			{"alice", "192.0.2.1", true, userIP},
		}},
		{name: "invalid names share one counter", steps: []attempt{
			{"no such:name", "192.0.2.1", false, ok}, {"", "192.0.2.1", false, ok}, {"a b", "192.0.2.1", false, ok},
			{"x\ny", "192.0.2.1", false, userIP},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuesses(t, SmallGuessLimits)
			for i, s := range tc.steps {
				res, err := g.Reserve(t.Context(), s.user, s.addr)
				var le *auth.LimitError
				switch {
				case s.want == "" && err != nil:
					t.Fatalf("step %d (%s from %s): %v, want it let through", i, s.user, s.addr, err)
				case s.want != "" && !errors.As(err, &le):
					t.Fatalf("step %d (%s from %s): %v, want refused by %s", i, s.user, s.addr, err, s.want)
				case s.want != "" && le.Reason != s.want:
					t.Fatalf("step %d (%s from %s): refused by %s, want %s", i, s.user, s.addr, le.Reason, s.want)
				case s.want != "" && !errors.Is(err, auth.ErrRateLimited):
					t.Fatalf("step %d: %v does not match ErrRateLimited", i, err)
				}
				if err == nil && s.right {
					if err := g.Succeeded(t.Context(), res); err != nil {
						t.Fatalf("step %d: Succeeded: %v", i, err)
					}
				}
			}
		})
	}

	t.Run("concurrent attempts get no more than the limit", func(t *testing.T) {
		g := newGuesses(t, SmallGuessLimits)
		var through atomic.Int32
		var wg sync.WaitGroup
		for range 60 {
			wg.Go(func() {
				if _, err := g.Reserve(t.Context(), "alice", "192.0.2.1"); err == nil {
					through.Add(1)
				} else if !errors.Is(err, auth.ErrRateLimited) {
					t.Errorf("Reserve: %v", err)
				}
			})
		}
		wg.Wait()
		if n := through.Load(); n != int32(SmallGuessLimits.PerUserIP) {
			t.Errorf("%d of 60 concurrent attempts let through, want %d", n, SmallGuessLimits.PerUserIP)
		}
	})

	t.Run("concurrent attempts from many addresses", func(t *testing.T) {
		// A distributed guesser: 40 addresses, 3 attempts each, at
		// once. Once alice is under attack each address gets at most
		// one attempt, so no more than PerUser + 40 get through (not
		// 40 x PerUserIP), and the owner from a clean address is let
		// through afterwards.
		g := newGuesses(t, SmallGuessLimits)
		var through atomic.Int32
		var wg sync.WaitGroup
		for a := range 40 {
			for range 3 {
				wg.Go(func() {
					if _, err := g.Reserve(t.Context(), "alice", fmt.Sprintf("10.0.%d.1", a)); err == nil {
						through.Add(1)
					}
				})
			}
		}
		wg.Wait()
		if n, max := through.Load(), int32(SmallGuessLimits.PerUser+40); n > max {
			t.Errorf("%d attempts let through, want at most %d", n, max)
		}
		if _, err := g.Reserve(t.Context(), "alice", "203.0.113.9"); err != nil {
			t.Errorf("the owner from a clean address: %v", err)
		}
	})
}

// SmallLoginLimits are the limits the LoginStore tests use.
var SmallLoginLimits = auth.LoginLimits{MaxAge: 24 * time.Hour, Idle: time.Hour, PerUser: 3}

// LoginStore runs the conformance tests against stores from newStore,
// which must return a fresh, empty store with the given limits each time.
func LoginStore(t *testing.T, newStore func(t *testing.T, lim auth.LoginLimits) auth.LoginStore) {
	now := time.Now().Truncate(time.Millisecond)
	login := func(id, user string, age time.Duration) auth.Login {
		return auth.Login{ID: id, User: user, Created: now.Add(-age), LastSeen: now.Add(-age), IP: "192.0.2.1", UserAgent: "browser " + id}
	}
	get := func(t *testing.T, s auth.LoginStore, user, id string) (auth.Login, bool) {
		t.Helper()
		l, ok, err := s.Get(t.Context(), user, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return l, ok
	}
	ids := func(t *testing.T, s auth.LoginStore, user string) []string {
		t.Helper()
		ls, err := s.List(t.Context(), user)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	add := func(t *testing.T, s auth.LoginStore, ls ...auth.Login) {
		t.Helper()
		for _, l := range ls {
			if err := s.Add(t.Context(), l); err != nil {
				t.Fatalf("Add: %v", err)
			}
		}
	}

	t.Run("add, get, list", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		a := login("a1", "alice", 2*time.Minute)
		a.IP, a.UserAgent = "2001:db8::1", "Mozilla/5.0 (X11) ünïcode"
		add(t, s, a, login("a2", "alice", time.Minute), login("b1", "bob", 0))
		got, ok := get(t, s, "alice", "a1")
		if !ok || got.ID != "a1" || got.User != "alice" || !got.Created.Equal(a.Created) || !got.LastSeen.Equal(a.LastSeen) ||
			got.IP != a.IP || got.UserAgent != a.UserAgent {
			t.Errorf("Get = %+v, %v, want %+v", got, ok, a)
		}
		if _, ok := get(t, s, "bob", "a1"); ok {
			t.Error("alice's login found as bob's")
		}
		if _, ok := get(t, s, "alice", "nope"); ok {
			t.Error("an unknown login found")
		}
		if got := ids(t, s, "alice"); fmt.Sprint(got) != "[a2 a1]" {
			t.Errorf("List(alice) = %v, want newest first [a2 a1]", got)
		}
		if got := ids(t, s, "carol"); len(got) != 0 {
			t.Errorf("List(carol) = %v", got)
		}
	})

	t.Run("seen", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		add(t, s, login("a1", "alice", 30*time.Minute))
		if err := s.Seen(t.Context(), "alice", "a1", now); err != nil {
			t.Fatal(err)
		}
		if got, _ := get(t, s, "alice", "a1"); !got.LastSeen.Equal(now) {
			t.Errorf("LastSeen = %v, want %v", got.LastSeen, now)
		}
		if err := s.Seen(t.Context(), "alice", "gone", now); err != nil {
			t.Errorf("Seen of an unknown login: %v", err)
		}
		if _, ok := get(t, s, "alice", "gone"); ok {
			t.Error("Seen created a login")
		}
	})

	t.Run("remove", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		add(t, s, login("a1", "alice", 0), login("a2", "alice", 0))
		if l, ok, err := s.Remove(t.Context(), "bob", "a1"); ok || err != nil {
			t.Errorf("Remove as another user = %+v, %v, %v", l, ok, err)
		}
		l, ok, err := s.Remove(t.Context(), "alice", "a1")
		if err != nil || !ok || l.ID != "a1" || l.User != "alice" {
			t.Fatalf("Remove = %+v, %v, %v", l, ok, err)
		}
		if _, ok := get(t, s, "alice", "a1"); ok {
			t.Error("a removed login is found")
		}
		if _, ok, _ := s.Remove(t.Context(), "alice", "a1"); ok {
			t.Error("a second Remove found it")
		}
		if got := ids(t, s, "alice"); fmt.Sprint(got) != "[a2]" {
			t.Errorf("List = %v", got)
		}
	})

	t.Run("remove user", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		add(t, s, login("a1", "alice", 0), login("a2", "alice", 0), login("a3", "alice", 0), login("b1", "bob", 0))
		gone, err := s.RemoveUser(t.Context(), "alice", "a2")
		if err != nil || len(gone) != 2 {
			t.Fatalf("RemoveUser = %v, %v", gone, err)
		}
		if got := ids(t, s, "alice"); fmt.Sprint(got) != "[a2]" {
			t.Errorf("alice keeps %v, want [a2]", got)
		}
		if gone, err := s.RemoveUser(t.Context(), "alice", ""); err != nil || len(gone) != 1 || gone[0].ID != "a2" {
			t.Errorf("RemoveUser without exception = %v, %v", gone, err)
		}
		if _, ok := get(t, s, "bob", "b1"); !ok {
			t.Error("bob's login went with alice's")
		}
	})

	t.Run("per user the least recently seen go", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		add(t, s, login("a1", "alice", 4*time.Minute), login("a2", "alice", 3*time.Minute), login("a3", "alice", 2*time.Minute))
		if err := s.Seen(t.Context(), "alice", "a1", now); err != nil { // a1 is used again
			t.Fatal(err)
		}
		add(t, s, login("a4", "alice", time.Minute), login("b1", "bob", 0))
		if got := ids(t, s, "alice"); fmt.Sprint(got) != "[a4 a3 a1]" {
			t.Errorf("alice keeps %v, want [a4 a3 a1] (a2 was seen least recently)", got)
		}
		if _, ok := get(t, s, "alice", "a2"); ok {
			t.Error("the dropped login a2 still logs in")
		}
	})

	t.Run("expired logins are gone", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		old := login("old", "alice", 25*time.Hour) // beyond MaxAge
		idle := login("idle", "alice", 2*time.Hour)
		idle.Created = now.Add(-3 * time.Hour)
		idle.LastSeen = now.Add(-2 * time.Hour) // beyond Idle
		add(t, s, old, idle, login("fresh", "alice", 0))
		for _, id := range []string{"old", "idle"} {
			if _, ok := get(t, s, "alice", id); ok {
				t.Errorf("expired login %s found", id)
			}
		}
		if got := ids(t, s, "alice"); fmt.Sprint(got) != "[fresh]" {
			t.Errorf("List = %v, want [fresh]", got)
		}
	})

	t.Run("concurrent adds keep the bound", func(t *testing.T) {
		s := newStore(t, SmallLoginLimits)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if err := s.Add(t.Context(), login(fmt.Sprintf("c%02d", i), "alice", 0)); err != nil {
					t.Errorf("Add: %v", err)
				}
			})
		}
		wg.Wait()
		if got := ids(t, s, "alice"); len(got) != SmallLoginLimits.PerUser {
			t.Errorf("alice has %d logins after 20 concurrent adds, want %d", len(got), SmallLoginLimits.PerUser)
		}
	})
}
