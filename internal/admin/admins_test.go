package admin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func openTestAdmins(t *testing.T, path string, fixed ...string) *Admins {
	t.Helper()
	a, err := OpenAdmins(path, fixed)
	if err != nil {
		t.Fatalf("OpenAdmins: %v", err)
	}
	return a
}

func TestAdminsFixedAndFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admins")
	a := openTestAdmins(t, path, "root", " ops ", "")
	type testCase struct {
		name string
		want bool
	}
	check := func(cases ...testCase) {
		t.Helper()
		for _, tc := range cases {
			if got := a.IsAdmin(tc.name); got != tc.want {
				t.Errorf("IsAdmin(%q) = %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	check(testCase{"root", true}, testCase{"ops", true}, testCase{"alice", false}, testCase{"", false})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file exists before any grant: %v", err)
	}

	if err := a.Grant("alice"); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if err := a.Grant("alice"); err != nil {
		t.Fatalf("second Grant: %v", err)
	}
	check(testCase{"alice", true})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %o, want 600", fi.Mode().Perm())
	}
	if got := fileNames(t, path); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("file lists %q, want [alice]", got)
	}
	if got, want := a.Names(), []string{"alice", "ops", "root"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	// A fresh reader (another node, a restart) sees the grant.
	if !openTestAdmins(t, path).IsAdmin("alice") {
		t.Error("reopened file does not list alice")
	}

	if err := a.Revoke("root"); !errors.Is(err, ErrFixedAdmin) {
		t.Errorf("Revoke(root) = %v, want ErrFixedAdmin", err)
	}
	if err := a.Revoke("bob"); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("Revoke(bob) = %v, want ErrNotAdmin", err)
	}
	if err := a.Grant("a b"); !errors.Is(err, ErrBadName) {
		t.Errorf("Grant(\"a b\") = %v, want ErrBadName", err)
	}
	if err := a.Revoke("alice"); err != nil {
		t.Fatalf("Revoke(alice): %v", err)
	}
	check(testCase{"alice", false}, testCase{"root", true})
	if got := fileNames(t, path); len(got) != 0 {
		t.Errorf("file lists %q after the revoke", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "admins" {
			t.Errorf("leftover file %q", e.Name())
		}
	}
}

func TestAdminsReloadsOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admins")
	a := openTestAdmins(t, path)
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(len(content)) * time.Second)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
	}
	write("# comment\n\ncarol\n  dave  \nnot valid\nx:y\n")
	for name, want := range map[string]bool{"carol": true, "dave": true, "not valid": false, "not": false, "x:y": false, "# comment": false} {
		if got := a.IsAdmin(name); got != want {
			t.Errorf("IsAdmin(%q) = %v, want %v", name, got, want)
		}
	}
	write("dave\n")
	if a.IsAdmin("carol") || !a.IsAdmin("dave") {
		t.Errorf("after a rewrite: carol %v dave %v, want false true", a.IsAdmin("carol"), a.IsAdmin("dave"))
	}
	// A grant keeps what the other writer wrote.
	if err := a.Grant("erin"); err != nil {
		t.Fatal(err)
	}
	if got := fileNames(t, path); !slices.Equal(got, []string{"dave", "erin"}) {
		t.Errorf("file lists %q, want [dave erin]", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if a.IsAdmin("dave") {
		t.Error("dave is still an admin after the file was removed")
	}
}

func fileNames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
