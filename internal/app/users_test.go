package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/bayeux-go/bayeux/server/auth"
)

// Hashes at auth.BcryptCost take ~650 ms each under -race: these tests
// make few of them.

// logRecords decodes the JSON log lines in buf.
func logRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestOpenUsersFirstStartCreatesAdmin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "users")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	users, created, err := openUsers(path, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err == nil && !created {
		t.Error("openUsers did not report creating the file")
	}
	if err != nil {
		t.Fatalf("openUsers: %v", err)
	}
	if got := users.Names(); !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("users %q, want [admin]", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v (mode %v), want it created with mode 600", err, fi)
	}

	recs := logRecords(t, &buf)
	var passwords []string
	for _, rec := range recs {
		if pw, ok := rec["password"].(string); ok {
			passwords = append(passwords, pw)
			if rec["user"] != "admin" || rec["file"] != path {
				t.Errorf("log record %v: want user admin and file %s", rec, path)
			}
			if msg, _ := rec["msg"].(string); !strings.Contains(msg, "passwd") {
				t.Errorf("message %q does not say how to change the password", msg)
			}
		}
	}
	if len(passwords) != 1 {
		t.Fatalf("password logged %d times, want once: %s", len(passwords), buf.String())
	}
	pw := passwords[0]
	if len(pw) < 16 {
		t.Errorf("generated password %q is shorter than 16 characters", pw)
	}
	if !users.Check("admin", pw) {
		t.Error("the logged password does not verify")
	}

	// Second start: the file exists, nothing is created or logged.
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	again, created, err := openUsers(path, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatalf("second openUsers: %v", err)
	}
	if created {
		t.Error("second openUsers reported creating the file")
	}
	if buf.Len() != 0 {
		t.Errorf("second start logged %s", buf.String())
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second start rewrote the users file")
	}
	if got := again.Names(); !slices.Equal(got, []string{"admin"}) {
		t.Errorf("users %q after a restart, want [admin]", got)
	}
}

func TestOpenUsersKeepsExistingFile(t *testing.T) {
	type testCase struct {
		name    string
		content string
		want    []string
	}
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []testCase{
		{name: "operator's users", content: "alice:" + string(h) + "\nbob:" + string(h) + "\n", want: []string{"alice", "bob"}},
		{name: "empty file", content: "", want: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			users, _, err := openUsers(path, slog.New(slog.NewJSONHandler(&buf, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if got := users.Names(); !slices.Equal(got, tc.want) {
				t.Errorf("users %q, want %q (no admin added)", got, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("logged %s", buf.String())
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("file changed to %q", b)
			}
		})
	}
}

func TestOpenUsersInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _, err := openUsers(path, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err == nil || !strings.Contains(err.Error(), "users file") || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("openUsers = %v, want an error naming the users file and the line", err)
	}
	if strings.Contains(buf.String(), "password") {
		t.Errorf("logged %s", buf.String())
	}
}

func TestPasswd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Passwd(args, strings.NewReader(stdin), &out)
		return out.String(), err
	}
	hashOf := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if n, h, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && n == name {
				return []byte(h)
			}
		}
		t.Fatalf("%s not in %s", name, b)
		return nil
	}

	out, err := run("first-pw\r\nsecond line ignored\n", path, "bob")
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if !strings.Contains(out, "added user bob") {
		t.Errorf("add printed %q", out)
	}
	if bcrypt.CompareHashAndPassword(hashOf("bob"), []byte("first-pw")) != nil {
		t.Error("the first stdin line without CRLF is not bob's password")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("users file %v mode %v, want 600", err, fi)
	}

	out, err = run("second pw \n", path, "bob") // inner and trailing spaces are part of it
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if !strings.Contains(out, "updated user bob") {
		t.Errorf("update printed %q", out)
	}
	h := hashOf("bob")
	if bcrypt.CompareHashAndPassword(h, []byte("second pw ")) != nil {
		t.Error("the new password does not verify")
	}
	if bcrypt.CompareHashAndPassword(h, []byte("first-pw")) == nil {
		t.Error("the old password still verifies")
	}

	type testCase struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}
	for _, tc := range []testCase{
		{name: "no arguments", stdin: "pw\n", args: nil, wantErr: "usage"},
		{name: "one argument", stdin: "pw\n", args: []string{path}, wantErr: "usage"},
		{name: "three arguments", stdin: "pw\n", args: []string{path, "bob", "extra"}, wantErr: "usage"},
		{name: "name with colon", stdin: "pw\n", args: []string{path, "a:b"}, wantErr: "invalid user name"},
		{name: "name with space", stdin: "pw\n", args: []string{path, "a b"}, wantErr: "invalid user name"},
		{name: "empty name", stdin: "pw\n", args: []string{path, ""}, wantErr: "invalid user name"},
		{name: "empty stdin", stdin: "", args: []string{path, "carol"}, wantErr: "empty password"},
		{name: "empty first line", stdin: "\nsecret\n", args: []string{path, "carol"}, wantErr: "empty password"},
		{name: "CRLF only", stdin: "\r\n", args: []string{path, "carol"}, wantErr: "empty password"},
		{name: "password over 72 bytes", stdin: strings.Repeat("x", 73) + "\n", args: []string{path, "carol"}, wantErr: "72"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.stdin, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Passwd(%q) = %v (printed %q), want an error containing %q", tc.args, err, out, tc.wantErr)
			}
		})
	}
	users, err := auth.OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := users.Names(); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("users %q after the refused commands, want [bob]", got)
	}
}

func TestPasswdWithoutTrailingNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "users") // directory created too
	var out bytes.Buffer
	if err := Passwd([]string{path, "carol"}, strings.NewReader("no-newline"), &out); err != nil {
		t.Fatalf("Passwd: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, h, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("no-newline")) != nil {
		t.Error("password read to EOF does not verify")
	}
}
