package auth

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// newTestLogins returns Logins with keys on store (nil: a store of its
// own, in memory).
func newTestLogins(t *testing.T, store LoginStore, keys ...[]byte) *Logins {
	t.Helper()
	l, err := NewLogins(keys, store, 0)
	if err != nil {
		t.Fatalf("NewLogins: %v", err)
	}
	return l
}

func memoryStore(t *testing.T) *FileLoginStore {
	t.Helper()
	s, err := OpenFileLogins("", LoginLimits{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loginCookie logs user in with l and returns the cookie it set.
func loginCookie(t *testing.T, l *Logins, user string, tlsReq bool) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://example.com/login", nil)
	if tlsReq {
		r.TLS = &tls.ConnectionState{}
	}
	r.Header.Set("User-Agent", "test-browser/1.0")
	w := httptest.NewRecorder()
	if _, err := l.Login(w, r, user, "192.0.2.7"); err != nil {
		t.Fatalf("Login: %v", err)
	}
	return onlyCookie(t, w)
}

func onlyCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("%d cookies set (%v), want 1", len(cs), w.Header().Values("Set-Cookie"))
	}
	return cs[0]
}

func userOf(l *Logins, c *http.Cookie) string {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/chat/", nil)
	if c != nil {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return l.User(r)
}

func TestLoginCookieAttributes(t *testing.T) {
	type testCase struct {
		name string
		tls  bool
	}
	for _, tc := range []testCase{{name: "plain HTTP", tls: false}, {name: "TLS", tls: true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLogins(t, nil, testKey(1))
			c := loginCookie(t, l, "alice", tc.tls)
			if c.Name != LoginCookie || LoginCookie != "bayeux_login" {
				t.Errorf("cookie name %q, want bayeux_login", c.Name)
			}
			if !c.HttpOnly {
				t.Error("cookie is not HttpOnly")
			}
			if c.SameSite != http.SameSiteLaxMode {
				t.Errorf("SameSite = %v, want Lax", c.SameSite)
			}
			if c.Path != "/" {
				t.Errorf("Path = %q, want /", c.Path)
			}
			if want := int(30 * 24 * time.Hour / time.Second); c.MaxAge < want-60 || c.MaxAge > want {
				t.Errorf("Max-Age = %d, want about %d (30 days)", c.MaxAge, want)
			}
			if c.Secure != tc.tls {
				t.Errorf("Secure = %v on a request with TLS %v", c.Secure, tc.tls)
			}
			if strings.Contains(c.Value, "alice") {
				t.Errorf("cookie value %q shows the user name: it should be encrypted", c.Value)
			}
			if got := userOf(l, c); got != "alice" {
				t.Errorf("User = %q, want alice", got)
			}
		})
	}
}

func TestLoginsUser(t *testing.T) {
	l := newTestLogins(t, nil, testKey(1))
	good := loginCookie(t, l, "alice", false)
	flip := []byte(good.Value)
	flip[len(flip)/2] ^= 1
	if flip[len(flip)/2] == '=' || flip[len(flip)/2] == 0 {
		flip[len(flip)/2] = 'A'
	}
	// A cookie of the same store made with another key.
	other := loginCookie(t, newTestLogins(t, l.Store, testKey(9)), "alice", false)

	type testCase struct {
		name   string
		cookie *http.Cookie
		want   string
	}
	for _, tc := range []testCase{
		{name: "valid cookie", cookie: good, want: "alice"},
		{name: "no cookie", cookie: nil, want: ""},
		{name: "one byte changed", cookie: &http.Cookie{Name: LoginCookie, Value: string(flip)}, want: ""},
		{name: "truncated", cookie: &http.Cookie{Name: LoginCookie, Value: good.Value[:len(good.Value)-4]}, want: ""},
		{name: "garbage", cookie: &http.Cookie{Name: LoginCookie, Value: "alice"}, want: ""},
		{name: "empty", cookie: &http.Cookie{Name: LoginCookie, Value: ""}, want: ""},
		{name: "made with another key", cookie: other, want: ""},
		{name: "other cookie name", cookie: &http.Cookie{Name: "other", Value: good.Value}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := userOf(l, tc.cookie); got != tc.want {
				t.Errorf("User = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoginsKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	store := memoryStore(t) // every node shares the logins
	old := newTestLogins(t, store, oldKey)
	rotated := newTestLogins(t, store, newKey, oldKey)
	newOnly := newTestLogins(t, store, newKey)

	fromOld := loginCookie(t, old, "alice", false)
	if got := userOf(rotated, fromOld); got != "alice" {
		t.Errorf("cookie of the old key with keys [new, old]: User = %q, want alice", got)
	}
	if got := userOf(newOnly, fromOld); got != "" {
		t.Errorf("cookie of the old key with keys [new]: User = %q, want \"\"", got)
	}
	// New cookies are made with the newest key.
	fromRotated := loginCookie(t, rotated, "bob", false)
	if got := userOf(newOnly, fromRotated); got != "bob" {
		t.Errorf("cookie made with [new, old] read with [new]: User = %q, want bob", got)
	}
	if got := userOf(old, fromRotated); got != "" {
		t.Errorf("cookie made with [new, old] read with [old]: User = %q, want \"\"", got)
	}
}

func TestLoginsLogout(t *testing.T) {
	type testCase struct {
		name string
		tls  bool
	}
	for _, tc := range []testCase{{name: "plain HTTP", tls: false}, {name: "TLS", tls: true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLogins(t, nil, testKey(1))
			in := loginCookie(t, l, "alice", tc.tls)
			other := loginCookie(t, l, "alice", tc.tls) // another browser
			r := httptest.NewRequest(http.MethodGet, "http://example.com/logout", nil)
			r.AddCookie(&http.Cookie{Name: in.Name, Value: in.Value})
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			ended, ok, err := l.Logout(w, r)
			if err != nil || !ok || ended.User != "alice" {
				t.Fatalf("Logout = %+v, %v, %v", ended, ok, err)
			}
			c := onlyCookie(t, w)
			if c.Name != LoginCookie || c.MaxAge >= 0 {
				t.Errorf("Logout set %q with Max-Age %d, want %s with Max-Age < 0", c.Name, c.MaxAge, LoginCookie)
			}
			if c.Value != "" {
				t.Errorf("Logout set the cookie to %q, want it empty", c.Value)
			}
			if c.Path != "/" {
				t.Errorf("Path = %q: a deletion must match the cookie's path /", c.Path)
			}
			if c.Secure != tc.tls || !c.HttpOnly {
				t.Errorf("Secure %v HttpOnly %v", c.Secure, c.HttpOnly)
			}
			if !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("Set-Cookie %q lacks Max-Age=0", w.Header().Get("Set-Cookie"))
			}
			// The cookie, replayed, logs in nobody; the other browser's
			// login goes on.
			if got := userOf(l, in); got != "" {
				t.Errorf("the logged-out cookie replayed is %q, want nobody", got)
			}
			if got := userOf(l, other); got != "alice" {
				t.Errorf("alice's other login is %q", got)
			}
			if _, ok, _ := l.Logout(httptest.NewRecorder(), r); ok {
				t.Error("a second logout with the same cookie ended a login")
			}
		})
	}
}

func TestLoginsRecord(t *testing.T) {
	clock := newFakeClock()
	store := memoryStore(t)
	store.now = clock.now
	l := newTestLogins(t, store, testKey(1))
	l.now = clock.now
	c := loginCookie(t, l, "alice", false)
	list, err := l.Store.List(t.Context(), "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	rec := list[0]
	if rec.IP != "192.0.2.7" || rec.UserAgent != "test-browser/1.0" || !rec.Created.Equal(clock.now()) || !rec.LastSeen.Equal(clock.now()) {
		t.Errorf("record %+v", rec)
	}
	if strings.Contains(c.Value, rec.ID) {
		t.Error("the cookie shows the login's ID")
	}
	// Use within SeenEvery does not write; later it records the time.
	clock.advance(SeenEvery / 2)
	userOf(l, c)
	if got, _, _ := l.Store.Get(t.Context(), "alice", rec.ID); !got.LastSeen.Equal(rec.LastSeen) {
		t.Errorf("LastSeen moved to %v within SeenEvery", got.LastSeen)
	}
	clock.advance(SeenEvery)
	if got := userOf(l, c); got != "alice" {
		t.Fatalf("User = %q", got)
	}
	if got, _, _ := l.Store.Get(t.Context(), "alice", rec.ID); !got.LastSeen.Equal(clock.now()) {
		t.Errorf("LastSeen = %v, want %v", got.LastSeen, clock.now())
	}
	// Ended by the store (an admin), the cookie logs in nobody.
	if _, err := l.Store.RemoveUser(t.Context(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	if got := userOf(l, c); got != "" {
		t.Errorf("after RemoveUser the cookie is %q", got)
	}
}

func TestNewLoginsRefusesBadKeys(t *testing.T) {
	if _, err := NewLogins(nil, nil, 0); err == nil {
		t.Error("NewLogins(nil) succeeded")
	}
	if _, err := NewLogins([][]byte{testKey(1), []byte("short")}, nil, 0); err == nil {
		t.Error("NewLogins accepted a 5-byte key")
	}
	if _, err := NewLogins([][]byte{bytes.Repeat([]byte{1}, 16)}, nil, 0); err != nil {
		t.Errorf("NewLogins refused a 16-byte key: %v", err)
	}
}

func TestLoadKeysFromEnv(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	std := base64.StdEncoding.EncodeToString
	type testCase struct {
		name    string
		env     []string
		want    [][]byte
		wantErr string
	}
	for _, tc := range []testCase{
		{name: "one key", env: []string{std(k1)}, want: [][]byte{k1}},
		{name: "newest first", env: []string{std(k2), std(k1)}, want: [][]byte{k2, k1}},
		{name: "spaces around keys", env: []string{" " + std(k1) + " ", "\t" + std(k2) + "\n"}, want: [][]byte{k1, k2}},
		{name: "URL-safe base64 without padding", env: []string{base64.RawURLEncoding.EncodeToString(k1)}, want: [][]byte{k1}},
		{name: "empty entries skipped", env: []string{"", std(k1)}, want: [][]byte{k1}},
		{name: "invalid base64", env: []string{std(k1), "not*base64!"}, wantErr: "key 2"},
		{name: "too short", env: []string{std([]byte("0123456789"))}, wantErr: "key 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			got, err := LoadKeys(tc.env, dir)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("LoadKeys(%q) = %d keys, want an error", tc.env, len(got))
				}
				for _, w := range []string{"BAYEUX_SESSION_KEYS", tc.wantErr} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("key %d = %x, want %x", i, got[i], tc.want[i])
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "session-keys")); err == nil {
				t.Error("keys from env were written to the data dir")
			}
		})
	}
}

func TestLoadKeysFileSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by LoadKeys
	first, err := LoadKeys(nil, dir)
	if err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	if len(first) != 1 || len(first[0]) < 32 {
		t.Fatalf("generated %d keys (first %d bytes), want one of at least 32 bytes", len(first), len(first[0]))
	}
	path := filepath.Join(dir, "session-keys")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file not created: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}

	// The server logs alice in, restarts, and still knows her (the
	// logins file keeps her login).
	logins := filepath.Join(dir, "logins")
	store, err := OpenFileLogins(logins, LoginLimits{})
	if err != nil {
		t.Fatal(err)
	}
	cookie := loginCookie(t, newTestLogins(t, store, first...), "alice", false)
	second, err := LoadKeys(nil, dir)
	if err != nil {
		t.Fatalf("second LoadKeys: %v", err)
	}
	if len(second) != 1 || !bytes.Equal(first[0], second[0]) {
		t.Fatal("the second LoadKeys returned another key")
	}
	store, err = OpenFileLogins(logins, LoginLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := userOf(newTestLogins(t, store, second...), cookie); got != "alice" {
		t.Errorf("after a restart User = %q, want alice", got)
	}
	// Env keys take precedence over the file.
	envKeys, err := LoadKeys([]string{base64.StdEncoding.EncodeToString(testKey(7))}, dir)
	if err != nil || !bytes.Equal(envKeys[0], testKey(7)) {
		t.Errorf("env keys with a key file: %v %x", err, envKeys)
	}
}

func TestLoadKeysFile(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	std := base64.StdEncoding.EncodeToString
	type testCase struct {
		name    string
		content string
		want    [][]byte
		wantErr bool
	}
	for _, tc := range []testCase{
		{name: "operator's file with comment and two keys", content: "# newest first\n" + std(k2) + "\n\n" + std(k1) + "\n", want: [][]byte{k2, k1}},
		{name: "CRLF", content: std(k1) + "\r\n", want: [][]byte{k1}},
		{name: "no key", content: "# nothing\n", wantErr: true},
		{name: "invalid", content: "???\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "session-keys")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKeys(nil, dir)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), path) {
					t.Fatalf("LoadKeys = %v, want an error naming %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("key %d = %x, want %x", i, got[i], tc.want[i])
				}
			}
		})
	}
}
