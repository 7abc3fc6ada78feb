// Package testutil holds the helpers the project's tests share: waiting
// for a condition with a deadline (never a sleep as synchronisation),
// writing a users file, and HTTP clients from distinct loopback
// addresses. It is imported by _test.go files only.
package testutil

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Eventually polls cond every few milliseconds until it returns true, and
// fails t when d passes first. what names the condition in the failure.
func Eventually(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Password is the password WriteUsers gives a user named name when no
// password is given: name + "-pw".
func Password(name string) string { return name + "-pw" }

// WriteUsers writes an htpasswd users file with bcrypt hashes (cheapest
// cost, so tests stay fast) and returns its path. Each entry is "name" (its
// password is Password(name)) or "name:password". With path "" the file is
// users in a new temporary directory.
func WriteUsers(t testing.TB, path string, entries ...string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "users")
	}
	var b strings.Builder
	for _, e := range entries {
		name, pw, ok := strings.Cut(e, ":")
		if !ok {
			pw = Password(name)
		}
		b.WriteString(name + ":" + Hash(t, pw) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hashes caches HashCost by password and cost: even bcrypt's minimum
// cost takes ~10 ms under -race.
var hashes sync.Map

// Hash returns a bcrypt hash of password at the minimum cost (a login
// checks with the hash's own cost, so tests stay fast).
func Hash(t testing.TB, password string) string {
	t.Helper()
	return HashCost(t, password, bcrypt.MinCost)
}

// HashCost returns a bcrypt hash of password at cost. Tests of
// concurrent logins use a higher cost than Hash, so that checks overlap
// as they do with real hashes.
func HashCost(t testing.TB, password string, cost int) string {
	t.Helper()
	key := strconv.Itoa(cost) + "\x00" + password
	if h, ok := hashes.Load(key); ok {
		return h.(string)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := hashes.LoadOrStore(key, string(b))
	return h.(string)
}

// ClientFrom returns an HTTP client whose connections come from the
// loopback address ip (any 127.x.y.z works on Linux), so that a test can
// be several clients as far as the server's per-address limits are
// concerned. It keeps cookies in jar (nil: none) and does not follow
// redirects.
func ClientFrom(ip string, jar http.CookieJar) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 100},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
