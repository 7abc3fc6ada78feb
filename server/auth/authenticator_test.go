package auth

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestAuthenticator returns an Authenticator over a users file holding
// alice/alice-pw, bob/bob-pw and u01..u25/pw, counting attempts in memory
// with the default limits on clock.
func newTestAuthenticator(t *testing.T) (*Authenticator, *fakeClock) {
	t.Helper()
	users := []string{"alice:alice-pw", "bob:bob-pw"}
	for i := 1; i <= 25; i++ {
		users = append(users, fmt.Sprintf("u%02d:pw", i))
	}
	path := testutil.WriteUsers(t, "", users...)
	a := NewAuthenticator(openUsers(t, path))
	clock := newFakeClock()
	a.Guesses.(*MemoryGuesses).now = clock.now
	return a, clock
}

const ip1, ip2 = "192.0.2.1", "192.0.2.2"

func TestAuthenticate(t *testing.T) {
	type testCase struct {
		name, user, password string
		want                 error
		wantChecked          int64
	}
	for _, tc := range []testCase{
		{name: "right password", user: "alice", password: "alice-pw", want: nil, wantChecked: 1},
		{name: "wrong password", user: "alice", password: "bob-pw", want: ErrInvalidCredentials, wantChecked: 1},
		{name: "empty password", user: "alice", password: "", want: ErrInvalidCredentials, wantChecked: 1},
		{name: "invalid user name: no bcrypt", user: "al ice", password: "alice-pw", want: ErrInvalidCredentials},
		{name: "empty user name: no bcrypt", user: "", password: "x", want: ErrInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestAuthenticator(t)
			err := a.Authenticate(t.Context(), tc.user, tc.password, ip1)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Authenticate(%q, %q) = %v, want %v", tc.user, tc.password, err, tc.want)
			}
			wantFailed := int64(0)
			if tc.want != nil {
				wantFailed = 1
			}
			if got := a.Failed.Load(); got != wantFailed {
				t.Errorf("Failed = %d, want %d", got, wantFailed)
			}
			if got := a.Checked.Load(); got != tc.wantChecked {
				t.Errorf("Checked = %d, want %d", got, tc.wantChecked)
			}
		})
	}
}

// TestAuthenticateLockoutIsPerAddress is finding 5 of issue 13 at the
// Authenticator: failures from one address do not lock the owner out
// from another, and the window ends the block.
func TestAuthenticateLockoutIsPerAddress(t *testing.T) {
	a, clock := newTestAuthenticator(t)
	for i := range 5 {
		if err := a.Authenticate(t.Context(), "alice", "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v, want ErrInvalidCredentials", i+1, err)
		}
	}
	var le *LimitError
	if err := a.Authenticate(t.Context(), "alice", "alice-pw", ip1); !errors.As(err, &le) || le.Reason != RefusedLoginUserIP {
		t.Errorf("right password from the guessing address: %v, want refused by %s", err, RefusedLoginUserIP)
	}
	if got := a.Checked.Load(); got != 5 {
		t.Errorf("Checked = %d, want 5 (a refused attempt checks nothing)", got)
	}
	if err := a.Authenticate(t.Context(), "alice", "alice-pw", ip2); err != nil {
		t.Errorf("the owner from another address: %v", err)
	}
	if err := a.Authenticate(t.Context(), "bob", "bob-pw", ip1); err != nil {
		t.Errorf("bob from the guessing address: %v", err)
	}
	clock.advance(15*time.Minute + time.Second)
	if err := a.Authenticate(t.Context(), "alice", "alice-pw", ip1); err != nil {
		t.Errorf("alice after the window: %v", err)
	}
}

func TestAuthenticateRateLimitsIP(t *testing.T) {
	a, clock := newTestAuthenticator(t)
	// 20 failures from one address, spread over 20 users.
	for i := 1; i <= 20; i++ {
		user := fmt.Sprintf("u%02d", i)
		if err := a.Authenticate(t.Context(), user, "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: %v, want ErrInvalidCredentials", user, err)
		}
	}
	var le *LimitError
	if err := a.Authenticate(t.Context(), "bob", "bob-pw", ip1); !errors.As(err, &le) || le.Reason != RefusedLoginIP {
		t.Errorf("bob from the blocked address: %v, want refused by %s", err, RefusedLoginIP)
	}
	if err := a.Authenticate(t.Context(), "bob", "bob-pw", ip2); err != nil {
		t.Errorf("bob from another address: %v", err)
	}
	clock.advance(15*time.Minute + time.Second)
	if err := a.Authenticate(t.Context(), "bob", "bob-pw", ip1); err != nil {
		t.Errorf("bob from the first address after the window: %v", err)
	}
}

func TestAuthenticateSuccessForgivesTypos(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	for round := range 3 {
		for i := range 4 {
			if err := a.Authenticate(t.Context(), "alice", "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("round %d failure %d: %v", round, i+1, err)
			}
		}
		if err := a.Authenticate(t.Context(), "alice", "alice-pw", ip1); err != nil {
			t.Fatalf("round %d: right password after 4 failures: %v (the previous success should have forgiven them)", round, err)
		}
	}
	if got := a.Failed.Load(); got != 12 {
		t.Errorf("Failed = %d, want 12", got)
	}
}

func TestAuthenticatePicksUpNewUsers(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	if err := a.Authenticate(t.Context(), "zoe", "zoe-pw", ip1); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	// The operator adds zoe (another writer of the file).
	testutil.WriteUsers(t, a.Users.Path(), "alice:alice-pw", "zoe:zoe-pw")
	bumpMtime(t, a.Users.Path())
	if err := a.Authenticate(t.Context(), "zoe", "zoe-pw", ip1); err != nil {
		t.Errorf("zoe after she was added: %v", err)
	}
}

// TestAuthenticateConcurrentGuesses: however many attempts arrive at
// once, no more passwords are checked than the limit allows.
func TestAuthenticateConcurrentGuesses(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { _ = a.Authenticate(t.Context(), "alice", "wrong", ip1) })
	}
	wg.Wait()
	if got := a.Checked.Load(); got != 5 {
		t.Errorf("%d passwords checked for 100 concurrent attempts, want 5", got)
	}
	if got := a.Failed.Load(); got != 100 {
		t.Errorf("Failed = %d, want 100", got)
	}
}

func TestMemoryGuessesWindowSlides(t *testing.T) {
	clock := newFakeClock()
	g := NewMemoryGuesses(GuessLimits{Window: time.Minute, PerUserIP: 2})
	g.now = clock.now
	try := func() error { _, err := g.Reserve(t.Context(), "alice", ip1); return err }
	for _, step := range []struct {
		advance time.Duration
		ok      bool
	}{
		{0, true}, {30 * time.Second, true}, {0, false},
		{30 * time.Second, true}, // the first one left the window
		{0, false},
		{61 * time.Second, true},
	} {
		clock.advance(step.advance)
		if err := try(); (err == nil) != step.ok {
			t.Fatalf("at %v: %v, want let through %v", clock.now(), err, step.ok)
		}
	}
}

func TestMemoryGuessesBoundedKeys(t *testing.T) {
	clock := newFakeClock()
	g := NewMemoryGuesses(GuessLimits{})
	g.now = clock.now
	g.maxKeys = 300
	for i := range 1000 {
		clock.advance(time.Millisecond)
		if _, err := g.Reserve(t.Context(), fmt.Sprintf("user%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250)); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		g.mu.Lock()
		n := len(g.keys)
		g.mu.Unlock()
		if n > g.maxKeys+3 {
			t.Fatalf("%d counters kept after %d attempts, want at most %d", n, i+1, g.maxKeys+3)
		}
	}
	// The newest attempts are still counted.
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.keys[keyUser("user999")]) != 1 {
		t.Error("the newest counter was dropped")
	}
}
