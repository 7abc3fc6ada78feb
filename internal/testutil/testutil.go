// Package testutil holds the helpers the project's tests share: waiting
// for a condition with a deadline (never a sleep as synchronisation) and
// writing a users file. It is imported by _test.go files only.
package testutil

import (
	"os"
	"path/filepath"
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

// hashes caches Hash by password: even bcrypt's minimum cost takes ~10 ms
// under -race.
var hashes sync.Map

// Hash returns a bcrypt hash of password at the minimum cost (a login
// checks with the hash's own cost, so tests stay fast).
func Hash(t testing.TB, password string) string {
	t.Helper()
	if h, ok := hashes.Load(password); ok {
		return h.(string)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := hashes.LoadOrStore(password, string(b))
	return h.(string)
}
