package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
)

// newTestAuthenticator returns an Authenticator over a users file holding
// alice/alice-pw, bob/bob-pw and u01..u25/pw, with both limiters on clock.
func newTestAuthenticator(t *testing.T) (*Authenticator, *fakeClock) {
	t.Helper()
	users := []string{"alice:alice-pw", "bob:bob-pw"}
	for i := 1; i <= 25; i++ {
		users = append(users, fmt.Sprintf("u%02d:pw", i))
	}
	path := testutil.WriteUsers(t, "", users...)
	a := NewAuthenticator(openUsers(t, path))
	clock := newFakeClock()
	a.byUser.now = clock.now
	a.byIP.now = clock.now
	return a, clock
}

const ip1, ip2 = "192.0.2.1", "192.0.2.2"

func TestAuthenticate(t *testing.T) {
	type testCase struct {
		name, user, password string
		want                 error
	}
	for _, tc := range []testCase{
		{name: "right password", user: "alice", password: "alice-pw", want: nil},
		{name: "wrong password", user: "alice", password: "bob-pw", want: ErrInvalidCredentials},
		{name: "empty password", user: "alice", password: "", want: ErrInvalidCredentials},
		{name: "invalid user name", user: "al ice", password: "alice-pw", want: ErrInvalidCredentials},
		{name: "empty user name", user: "", password: "x", want: ErrInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestAuthenticator(t)
			err := a.Authenticate(tc.user, tc.password, ip1)
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
		})
	}
}

func TestAuthenticateRateLimitsUser(t *testing.T) {
	a, clock := newTestAuthenticator(t)
	for i := range 5 {
		if err := a.Authenticate("alice", "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v, want ErrInvalidCredentials", i+1, err)
		}
	}
	if got := a.Failed.Load(); got != 5 {
		t.Errorf("Failed = %d after 5 failures", got)
	}
	// Now even the right password is refused, from any address.
	for _, ip := range []string{ip1, ip2} {
		if err := a.Authenticate("alice", "alice-pw", ip); !errors.Is(err, ErrRateLimited) {
			t.Errorf("right password from %s after 5 failures: %v, want ErrRateLimited", ip, err)
		}
	}
	if got := a.Failed.Load(); got != 7 {
		t.Errorf("Failed = %d, want 7 (refusals count)", got)
	}
	// Another user from the same address is not affected.
	if err := a.Authenticate("bob", "bob-pw", ip1); err != nil {
		t.Errorf("bob: %v", err)
	}
	// After the window alice may log in again.
	clock.advance(5*time.Minute + time.Second)
	if err := a.Authenticate("alice", "alice-pw", ip1); err != nil {
		t.Errorf("alice after the window: %v", err)
	}
}

func TestAuthenticateRateLimitsIP(t *testing.T) {
	a, clock := newTestAuthenticator(t)
	// 20 failures from one address, spread over 20 users (none of them
	// reaches the per-user limit).
	for i := 1; i <= 20; i++ {
		user := fmt.Sprintf("u%02d", i)
		if err := a.Authenticate(user, "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: %v, want ErrInvalidCredentials", user, err)
		}
	}
	if err := a.Authenticate("bob", "bob-pw", ip1); !errors.Is(err, ErrRateLimited) {
		t.Errorf("bob from the blocked address: %v, want ErrRateLimited", err)
	}
	if err := a.Authenticate("u21", "pw", ip1); !errors.Is(err, ErrRateLimited) {
		t.Errorf("u21 from the blocked address: %v, want ErrRateLimited", err)
	}
	if err := a.Authenticate("bob", "bob-pw", ip2); err != nil {
		t.Errorf("bob from another address: %v", err)
	}
	clock.advance(5*time.Minute + time.Second)
	if err := a.Authenticate("bob", "bob-pw", ip1); err != nil {
		t.Errorf("bob from the first address after the window: %v", err)
	}
}

func TestAuthenticateSuccessResetsUserCounter(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	for round := range 3 {
		for i := range 4 {
			if err := a.Authenticate("alice", "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("round %d failure %d: %v", round, i+1, err)
			}
		}
		if err := a.Authenticate("alice", "alice-pw", ip1); err != nil {
			t.Fatalf("round %d: right password after 4 failures: %v (the previous success should have reset the counter)", round, err)
		}
	}
	if got := a.Failed.Load(); got != 12 {
		t.Errorf("Failed = %d, want 12", got)
	}
}

func TestAuthenticatePicksUpNewUsers(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	if err := a.Authenticate("zoe", "zoe-pw", ip1); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	// The operator adds zoe (another writer of the file).
	testutil.WriteUsers(t, a.Users.Path(), "alice:alice-pw", "zoe:zoe-pw")
	bumpMtime(t, a.Users.Path())
	if err := a.Authenticate("zoe", "zoe-pw", ip1); err != nil {
		t.Errorf("zoe after she was added: %v", err)
	}
}
