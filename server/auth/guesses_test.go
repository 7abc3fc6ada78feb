package auth_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/server/auth/authtest"
)

func TestMemoryGuesses(t *testing.T) {
	authtest.Guesses(t, func(t *testing.T, lim auth.GuessLimits) auth.Guesses { return auth.NewMemoryGuesses(lim) })
}

func TestFileLoginStoreConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		authtest.LoginStore(t, func(t *testing.T, lim auth.LoginLimits) auth.LoginStore {
			s, err := auth.OpenFileLogins("", lim)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("file", func(t *testing.T) {
		authtest.LoginStore(t, func(t *testing.T, lim auth.LoginLimits) auth.LoginStore {
			s, err := auth.OpenFileLogins(t.TempDir()+"/logins", lim)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func TestAddrKey(t *testing.T) {
	type testCase struct{ in, want string }
	for _, tc := range []testCase{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
		{"", ""},
	} {
		if got := auth.AddrKey(tc.in); got != tc.want {
			t.Errorf("AddrKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func ExampleMemoryGuesses() {
	g := auth.NewMemoryGuesses(auth.GuessLimits{PerUserIP: 2})
	for i := range 3 {
		_, err := g.Reserve(context.Background(), "alice", "192.0.2.1") // then check the password
		fmt.Println(i+1, err)
	}
	// Output:
	// 1 <nil>
	// 2 <nil>
	// 3 too many failed logins, try again later (login_user_ip)
}
