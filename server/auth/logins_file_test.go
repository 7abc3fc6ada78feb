package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFileLoginStoreSurvivesRestart: logins, and their ends, are on disk
// at once; LastSeen with Flush; a reopened store knows what the old one
// knew, without the expired ones.
func TestFileLoginStoreSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "logins")
	clock := &fakeClock{t: time.Now().Truncate(time.Millisecond)} // OpenFileLogins reads with the real clock
	open := func() *FileLoginStore {
		t.Helper()
		s, err := OpenFileLogins(path, LoginLimits{MaxAge: 24 * time.Hour, Idle: time.Hour, PerUser: 5})
		if err != nil {
			t.Fatal(err)
		}
		s.now = clock.now
		return s
	}
	s := open()
	now := clock.now()
	for _, l := range []Login{
		{ID: "a1", User: "alice", Created: now, LastSeen: now, IP: "192.0.2.1", UserAgent: "ua\x01one"},
		{ID: "a2", User: "alice", Created: now, LastSeen: now},
		{ID: "b1", User: "bob", Created: now, LastSeen: now},
	} {
		if err := s.Add(t.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no logins file after a login: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("logins file mode %o, want 600", fi.Mode().Perm())
	}
	if _, _, err := s.Remove(t.Context(), "alice", "a2"); err != nil {
		t.Fatal(err)
	}
	clock.advance(30 * time.Minute)
	if err := s.Seen(t.Context(), "alice", "a1", clock.now()); err != nil {
		t.Fatal(err)
	}
	// A crash now: no Close. The removal is on disk, LastSeen is not.
	s2 := open()
	if _, ok, _ := s2.Get(t.Context(), "alice", "a2"); ok {
		t.Error("a logged-out login came back after a restart")
	}
	got, ok, _ := s2.Get(t.Context(), "alice", "a1")
	if !ok || got.IP != "192.0.2.1" || got.UserAgent != "ua one" || !got.LastSeen.Equal(now) {
		t.Errorf("a1 after the restart: %+v, %v", got, ok)
	}
	// With Flush, LastSeen is on disk too.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s3 := open()
	if got, _, _ := s3.Get(t.Context(), "alice", "a1"); !got.LastSeen.Equal(clock.now()) {
		t.Errorf("LastSeen after Flush and a restart = %v, want %v", got.LastSeen, clock.now())
	}
	// bob was idle for more than an hour: gone on the next start.
	clock.advance(45 * time.Minute)
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
	s4 := open()
	if _, ok, _ := s4.Get(t.Context(), "bob", "b1"); ok {
		t.Error("an idle login survived")
	}
	if _, ok, _ := s4.Get(t.Context(), "alice", "a1"); !ok {
		t.Error("alice's login, seen 45 minutes ago, was dropped")
	}
	// The next write leaves it out of the file.
	if err := s4.Add(t.Context(), Login{ID: "c1", User: "carol", Created: clock.now(), LastSeen: clock.now()}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), `"b1"`) || !strings.Contains(string(b), `"c1"`) {
		t.Errorf("the logins file after a write:\n%s", b)
	}
}

func TestOpenFileLoginsRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logins")
	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileLogins(path, LoginLimits{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenFileLogins of garbage = %v, want an error naming the file", err)
	}
}

func TestCleanUserAgent(t *testing.T) {
	type testCase struct{ in, want string }
	long := strings.Repeat("é", 200) // 400 bytes
	for _, tc := range []testCase{
		{"Mozilla/5.0", "Mozilla/5.0"},
		{"a\r\nb\x00c", "a  b c"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{long, strings.Repeat("é", 128)},
	} {
		if got := CleanUserAgent(tc.in); got != tc.want {
			t.Errorf("CleanUserAgent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
