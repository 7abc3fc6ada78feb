package auth

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"golang.org/x/crypto/bcrypt"
)

// Hashing at BcryptCost takes ~60 ms, and ~650 ms under -race, so the
// tests write most users files themselves with cheap hashes: Check uses
// the cost stored in each hash. Only Set hashes at BcryptCost, and Check
// of an unknown user compares against a BcryptCost dummy hash; both are
// kept to a few calls.

// cheapHash returns a bcrypt hash of password at the minimum cost with the
// given prefix ("$2a$", "$2b$" or "$2y$"; "" keeps Go's "$2a$").
func cheapHash(t testing.TB, password, prefix string) string {
	t.Helper()
	s := testutil.Hash(t, password)
	if prefix != "" {
		s = prefix + strings.TrimPrefix(s, "$2a$")
	}
	return s
}

func openUsers(t testing.TB, path string) *Users {
	t.Helper()
	u, err := OpenUsers(path)
	if err != nil {
		t.Fatalf("OpenUsers: %v", err)
	}
	return u
}

func TestUsersHtpasswdBFile(t *testing.T) {
	// A file as `htpasswd -B` writes it ($2y$), with a comment, a blank
	// line, a CRLF line ending and the other bcrypt prefixes.
	path := filepath.Join(t.TempDir(), "users")
	content := "# users\n" +
		"alice:" + cheapHash(t, "alice-secret", "$2y$") + "\n" +
		"\n" +
		"bob:" + cheapHash(t, "bob secret", "$2b$") + "\r\n" +
		"carol:" + cheapHash(t, "carol-pw", "$2a$") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	u := openUsers(t, path)
	if got, want := u.Names(), []string{"alice", "bob", "carol"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	if u.Path() != path {
		t.Errorf("Path() = %q, want %q", u.Path(), path)
	}

	type testCase struct {
		name, user, password string
		want                 bool
	}
	for _, tc := range []testCase{
		{name: "2y right password", user: "alice", password: "alice-secret", want: true},
		{name: "2b right password with space and CRLF line", user: "bob", password: "bob secret", want: true},
		{name: "2a right password", user: "carol", password: "carol-pw", want: true},
		{name: "wrong password", user: "alice", password: "alice-secreT", want: false},
		{name: "empty password", user: "alice", password: "", want: false},
		{name: "other user's password", user: "alice", password: "carol-pw", want: false},
		{name: "unknown user", user: "mallory", password: "alice-secret", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := u.Check(tc.user, tc.password); got != tc.want {
				t.Errorf("Check(%q, %q) = %v, want %v", tc.user, tc.password, got, tc.want)
			}
		})
	}
	if !u.Exists("alice") || u.Exists("mallory") {
		t.Errorf("Exists: alice %v, mallory %v", u.Exists("alice"), u.Exists("mallory"))
	}
}

func TestOpenUsersRejectsInvalidLines(t *testing.T) {
	good := "alice:" + cheapHash(t, "pw", "$2y$") + "\n"
	type testCase struct {
		name    string
		content string
		want    []string // substrings of the error
	}
	for _, tc := range []testCase{
		{name: "SHA hash", content: good + "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", want: []string{"line 2", "bob", "bcrypt"}},
		{name: "apr1 MD5 hash", content: "# comment\n" + good + "bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n", want: []string{"line 3", "bob", "bcrypt"}},
		{name: "crypt MD5 hash", content: "bob:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0\n", want: []string{"line 1", "bob", "bcrypt"}},
		{name: "plain text password", content: "bob:secret\n" + good, want: []string{"line 1", "bob", "bcrypt"}},
		{name: "no colon", content: good + "\njust-a-name\n", want: []string{"line 3", "name:hash"}},
		{name: "empty name", content: ":" + cheapHash(t, "pw", "") + "\n", want: []string{"line 1"}},
		{name: "name with space", content: "bad name:" + cheapHash(t, "pw", "") + "\n", want: []string{"line 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			u, err := OpenUsers(path)
			if err == nil {
				t.Fatalf("OpenUsers accepted %q (users %q)", tc.content, u.Names())
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestOpenUsersMissingFileIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	u := openUsers(t, path)
	if n := u.Names(); len(n) != 0 {
		t.Errorf("Names() = %q, want none", n)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenUsers created the file (stat: %v); it must wait for the first Set", err)
	}
	if err := u.Delete("alice"); !errors.Is(err, ErrNoUser) {
		t.Errorf("Delete on an empty set = %v, want ErrNoUser", err)
	}
}

func TestUsersSetCreatesFileAtomically(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	path := filepath.Join(dir, "users")
	u := openUsers(t, path)

	// The longest allowed password: 72 bytes (bcrypt's limit).
	pw := strings.Repeat("p", 71) + "!"
	if err := u.Set("bob", pw); err != nil {
		t.Fatalf("Set: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Set did not create the file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode %o, want 600", mode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(string(b), "\n")
	name, hash, _ := strings.Cut(line, ":")
	if name != "bob" || strings.Contains(line, "\n") {
		t.Fatalf("file = %q, want one line bob:HASH", b)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != BcryptCost {
		t.Errorf("hash %q: cost %d (%v), want %d", hash, cost, err, BcryptCost)
	}
	if !u.Check("bob", pw) {
		t.Error("Check fails for the password just set")
	}
	// A fresh reader sees the same.
	if got := openUsers(t, path).Names(); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("reopened Names() = %q", got)
	}
	// No temporary file is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "users" {
			t.Errorf("leftover file %q in %s", e.Name(), dir)
		}
	}
}

func TestUsersSetKeepsOthersAndSortsNames(t *testing.T) {
	path := testutil.WriteUsers(t, filepath.Join(t.TempDir(), "users"), "zed:z", "alice:a", "mike:m")
	u := openUsers(t, path)
	if got, want := u.Names(), []string{"alice", "mike", "zed"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	if err := u.Set("bob", "b"); err != nil {
		t.Fatal(err)
	}
	if got, want := u.Names(), []string{"alice", "bob", "mike", "zed"}; !slices.Equal(got, want) {
		t.Errorf("Names() after Set = %q, want %q", got, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for l := range strings.Lines(string(b)) {
		n, _, _ := strings.Cut(l, ":")
		names = append(names, n)
	}
	if want := []string{"alice", "bob", "mike", "zed"}; !slices.Equal(names, want) {
		t.Errorf("file lists %q, want %q", names, want)
	}
	// The old users keep their (cheap) hashes and passwords.
	if !u.Check("zed", "z") || !u.Check("alice", "a") {
		t.Error("existing users no longer verify after Set")
	}
}

func TestUsersSetRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	u := openUsers(t, path)
	type testCase struct {
		name, user, password, want string
	}
	for _, tc := range []testCase{
		{name: "password over 72 bytes", user: "bob", password: strings.Repeat("x", 73), want: "72"},
		{name: "multibyte password over 72 bytes", user: "bob", password: strings.Repeat("é", 37), want: "72"},
		{name: "empty password", user: "bob", password: "", want: "empty"},
		{name: "name with colon", user: "a:b", password: "pw", want: "invalid user name"},
		{name: "empty name", user: "", password: "pw", want: "invalid user name"},
		{name: "name with space", user: "a b", password: "pw", want: "invalid user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := u.Set(tc.user, tc.password)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Set(%q, %d bytes) = %v, want an error containing %q", tc.user, len(tc.password), err, tc.want)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Set wrote the file (stat: %v)", err)
	}
}

func TestUsersDelete(t *testing.T) {
	path := testutil.WriteUsers(t, filepath.Join(t.TempDir(), "users"), "alice:a", "bob:b")
	u := openUsers(t, path)
	if err := u.Delete("alice"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if u.Exists("alice") {
		t.Error("alice still exists after Delete")
	}
	if got := u.Names(); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("Names() = %q, want [bob]", got)
	}
	if got := openUsers(t, path).Names(); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("file after Delete lists %q, want [bob]", got)
	}
	if err := u.Delete("alice"); !errors.Is(err, ErrNoUser) {
		t.Errorf("second Delete = %v, want ErrNoUser", err)
	}
	if !u.Check("bob", "b") {
		t.Error("bob no longer verifies")
	}
}

func TestUsersReloadsChangesByAnotherWriter(t *testing.T) {
	path := testutil.WriteUsers(t, filepath.Join(t.TempDir(), "users"), "alice:a")
	u := openUsers(t, path)
	if u.Exists("carol") {
		t.Fatal("carol exists before she was added")
	}
	// Another process rewrites the file in place with a new user and a new
	// password for alice.
	testutil.WriteUsers(t, path, "alice:a2", "carol:c")
	bumpMtime(t, path)
	if !u.Check("carol", "c") {
		t.Error("a user added by another writer does not verify")
	}
	if !u.Check("alice", "a2") || u.Check("alice", "a") {
		t.Error("a password changed by another writer is not picked up")
	}
	if got, want := u.Names(), []string{"alice", "carol"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}

	// Another writer replaces the file by rename, without alice.
	tmp := filepath.Join(filepath.Dir(path), "users.new")
	testutil.WriteUsers(t, tmp, "carol:c", "dave:d")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, path)
	if u.Exists("alice") || !u.Exists("dave") {
		t.Errorf("after a rename: alice %v dave %v, want false true", u.Exists("alice"), u.Exists("dave"))
	}

	// Set works from the reloaded state: it keeps dave.
	if err := u.Delete("carol"); err != nil {
		t.Fatal(err)
	}
	if got := openUsers(t, path).Names(); !slices.Equal(got, []string{"dave"}) {
		t.Errorf("file lists %q, want [dave]", got)
	}

	// The file removed: no users any more.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if u.Exists("dave") {
		t.Error("dave still exists after the file was removed")
	}
}

// bumpMtime moves the file's modification time forward so that a rewrite
// within the file system's timestamp granularity is still a change.
func bumpMtime(t *testing.T, path string) {
	t.Helper()
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

func TestUsersConcurrentReadersAndWriter(t *testing.T) {
	path := testutil.WriteUsers(t, filepath.Join(t.TempDir(), "users"), "alice:a")
	u := openUsers(t, path)
	hash := cheapHash(t, "x", "")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = u.Exists("alice")
				_ = u.Names()
			}
		})
	}
	var content strings.Builder
	content.WriteString("alice:" + hash + "\n")
	for i := range 20 {
		content.WriteString("u" + string(rune('a'+i)) + ":" + hash + "\n")
		if err := os.WriteFile(path, []byte(content.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bumpMtime(t, path)
	close(stop)
	wg.Wait()
	if n := len(u.Names()); n != 21 {
		t.Errorf("%d users after the last rewrite, want 21", n)
	}
}

func TestValidName(t *testing.T) {
	type testCase struct {
		name string
		in   string
		want bool
	}
	for _, tc := range []testCase{
		{name: "simple", in: "alice", want: true},
		{name: "email", in: "alice@example.com", want: true},
		{name: "punctuation", in: "a.b-c_d+e", want: true},
		{name: "non-ASCII", in: "zoë", want: true},
		{name: "one byte", in: "a", want: true},
		{name: "64 bytes", in: strings.Repeat("a", 64), want: true},
		{name: "65 bytes", in: strings.Repeat("a", 65), want: false},
		{name: "empty", in: "", want: false},
		{name: "colon", in: "a:b", want: false},
		{name: "space", in: "a b", want: false},
		{name: "leading space", in: " alice", want: false},
		{name: "tab", in: "a\tb", want: false},
		{name: "newline", in: "alice\n", want: false},
		{name: "carriage return", in: "alice\r", want: false},
		{name: "NUL", in: "a\x00b", want: false},
		{name: "DEL", in: "a\x7fb", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidName(tc.in); got != tc.want {
				t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
