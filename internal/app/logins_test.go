package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/redistest"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// These tests run the attacks of issue 13's finding 4 (logins cannot be
// revoked) against the handler stack the binary serves.

// soon bounds what must happen "at once": well under the poll timeout
// (30 s), so a held connect answered by it would not pass.
const soon = 5 * time.Second

// startUsers starts the app on a data directory holding users alice
// (admin through BAYEUX_ADMINS), bob and carol (password NAME-pw).
func startUsers(t *testing.T, vars map[string]string) *running {
	t.Helper()
	if vars == nil {
		vars = map[string]string{}
	}
	if vars["BAYEUX_DATA_DIR"] == "" {
		vars["BAYEUX_DATA_DIR"] = t.TempDir()
	}
	testutil.WriteUsers(t, filepath.Join(vars["BAYEUX_DATA_DIR"], "users"), "alice", "bob", "carol")
	vars["BAYEUX_ADMINS"] = "alice"
	return start(t, vars)
}

// web is a browser: its own cookie jar, redirects not followed.
type web struct {
	t    *testing.T
	base string
	jar  *cookiejar.Jar
	hc   *http.Client
}

func newWeb(t *testing.T, base string) *web {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &web{t: t, base: base, jar: jar, hc: testutil.ClientFrom("127.0.0.1", jar)}
	t.Cleanup(w.hc.CloseIdleConnections) // before the server stops (see chatClient)
	return w
}

// on returns a browser with the same cookies talking to another node.
func (w *web) on(base string) *web {
	return &web{t: w.t, base: base, jar: w.jar, hc: w.hc}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (w *web) do(method, path string, form url.Values) page {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Origin", w.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("User-Agent", "test-browser/1.0 ("+w.t.Name()+")")
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (w *web) get(path string) page { return w.do(http.MethodGet, path, nil) }

// login logs in through /login and returns the login cookie's value.
func (w *web) login(user string) string {
	w.t.Helper()
	p := w.do(http.MethodPost, "/login", url.Values{"user": {user}, "password": {testutil.Password(user)}})
	if p.status != http.StatusSeeOther {
		w.t.Fatalf("login as %s: HTTP %d", user, p.status)
	}
	return w.cookie()
}

func (w *web) cookie() string {
	u, _ := url.Parse(w.base)
	for _, c := range w.jar.Cookies(u) {
		if c.Name == auth.LoginCookie {
			return c.Value
		}
	}
	return ""
}

// loggedIn reports whether the browser gets past the chat's login guard
// (else it is sent to /login). Past it, the page is the chat, or a 503
// saying the chat is not built when app.wasm is missing (tests run
// without make build).
func (w *web) loggedIn() bool {
	w.t.Helper()
	switch p := w.get("/chat/"); p.status {
	case http.StatusOK, http.StatusServiceUnavailable:
		return true
	case http.StatusSeeOther:
		if !strings.HasPrefix(p.header.Get("Location"), "/login") {
			w.t.Fatalf("GET /chat/: redirect to %s", p.header.Get("Location"))
		}
		return false
	default:
		w.t.Fatalf("GET /chat/: HTTP %d", p.status)
		return false
	}
}

// token returns the admin form token of an admin page.
func (w *web) token(path string) string {
	w.t.Helper()
	p := w.get(path)
	if p.status != http.StatusOK {
		w.t.Fatalf("GET %s: HTTP %d", path, p.status)
	}
	d, err := goquery.NewDocumentFromReader(strings.NewReader(p.body))
	if err != nil {
		w.t.Fatal(err)
	}
	tok := d.Find(`input[name="token"]`).First().AttrOr("value", "")
	if tok == "" {
		w.t.Fatalf("no form token on %s", path)
	}
	return tok
}

// admin posts an admin form with a fresh token.
func (w *web) admin(action string, form url.Values) page {
	w.t.Helper()
	form.Set("token", w.token("/admin/users"))
	return w.do(http.MethodPost, "/admin/users/"+action, form)
}

// bayeuxUser handshakes over /cometd with the browser's cookies and
// returns who the session is ("" for anonymous).
func (w *web) bayeuxUser() string {
	w.t.Helper()
	send := func(msgs ...*protocol.Message) []*protocol.Message {
		b, _ := json.Marshal(msgs)
		resp, err := w.hc.Post(w.base+"/cometd", "application/json", bytes.NewReader(b))
		if err != nil {
			w.t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []*protocol.Message
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) == 0 {
			w.t.Fatalf("bayeux: HTTP %d %v", resp.StatusCode, err)
		}
		return out
	}
	hs := send(&protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0", SupportedConnectionTypes: []string{protocol.LongPolling}})[0]
	if !hs.IsSuccessful() {
		w.t.Fatalf("handshake: %s", hs.Error)
	}
	for _, m := range send(&protocol.Message{Channel: "/service/chat/whoami", ClientID: hs.ClientID, Data: json.RawMessage(`{}`)}) {
		if m.Data != nil {
			var d struct{ User string }
			_ = json.Unmarshal(m.Data, &d)
			return d.User
		}
	}
	w.t.Fatal("whoami: no answer")
	return ""
}

// replay is a browser that has only the given login cookie.
func replay(t *testing.T, base, cookie string) *web {
	t.Helper()
	w := newWeb(t, base)
	u, _ := url.Parse(base)
	w.jar.SetCookies(u, []*http.Cookie{{Name: auth.LoginCookie, Value: cookie, Path: "/"}})
	return w
}

// TestLogoutEndsTheLoginForGood: after /logout, the saved cookie replayed
// reaches neither the chat, nor the admin pages, nor a Bayeux session, the
// logout response carries no valid cookie, and the admin's old form token
// is refused, even after a new login.
func TestLogoutEndsTheLoginForGood(t *testing.T) {
	r := startUsers(t, nil)
	alice := newWeb(t, r.url)
	saved := alice.login("alice")
	tok := alice.token("/admin/users")
	if !alice.loggedIn() || alice.bayeuxUser() != "alice" {
		t.Fatal("not logged in after login")
	}

	out := alice.get("/logout")
	if out.status != http.StatusSeeOther {
		t.Fatalf("logout: HTTP %d", out.status)
	}
	for _, c := range (&http.Response{Header: out.header}).Cookies() {
		if c.Name != auth.LoginCookie {
			continue
		}
		if c.Value != "" || c.MaxAge >= 0 {
			t.Errorf("the logout response sets %s=%q (Max-Age %d), want an empty, expired cookie", c.Name, c.Value, c.MaxAge)
		}
		if c.Value != "" && replay(t, r.url, c.Value).loggedIn() {
			t.Error("the cookie the logout response set logs in")
		}
	}

	thief := replay(t, r.url, saved)
	if thief.loggedIn() {
		t.Error("the logged-out cookie replayed reaches /chat/")
	}
	if p := thief.get("/admin/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("the logged-out cookie replayed on /admin/: HTTP %d %s, want 303 to /login", p.status, p.header.Get("Location"))
	}
	if u := thief.bayeuxUser(); u != "" {
		t.Errorf("a Bayeux handshake with the logged-out cookie is %q, want anonymous", u)
	}
	grant := url.Values{"name": {"carol"}, "token": {tok}}
	if p := thief.do(http.MethodPost, "/admin/users/grant", grant); p.status != http.StatusForbidden {
		t.Errorf("the old cookie and form token: HTTP %d, want 403", p.status)
	}
	// Logged in again, the old token is still refused.
	alice.login("alice")
	if p := alice.do(http.MethodPost, "/admin/users/grant", grant); p.status != http.StatusForbidden {
		t.Errorf("the form token of the ended login with a new login: HTTP %d, want 403", p.status)
	}
	// carol's row offers "Revoke admin" only if she became admin.
	d, err := goquery.NewDocumentFromReader(strings.NewReader(alice.get("/admin/users").body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Find(`tr[data-user="carol"] [data-testid="admin-user-revoke"]`).Length() > 0 {
		t.Error("carol was made admin with a dead form token")
	}
}

// chatClient is a chat client: long-polling or WebSocket,
// logged in by its browser's cookie (jar) or as bob by ext.auth (jar nil),
// subscribed to /chat/demo.
func chatClient(t *testing.T, base string, jar http.CookieJar, ws bool) *wasmclient.Client {
	t.Helper()
	opts := wasmclient.Options{WebSocket: ws}
	tr := &wasmclient.HTTPTransport{Client: &http.Client{Transport: &http.Transport{}}}
	if jar != nil {
		tr.Client.Jar = jar
	} else {
		tr.Client.Jar, _ = cookiejar.New(nil)
		opts.Ext = map[string]any{"auth": map[string]string{"user": "bob", "password": "bob-pw"}}
	}
	opts.Transport = tr
	c := wasmclient.New(base+"/cometd", opts)
	ctx, cancel := context.WithTimeout(t.Context(), soon)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Disconnect(ctx)
		// A connection dialed but never used would hold up the server's
		// shutdown for 5 s (http.Server treats it as not idle).
		tr.Client.CloseIdleConnections()
	})
	sctx, scancel := context.WithTimeout(t.Context(), soon)
	defer scancel()
	if _, err := c.Subscribe(sctx, "/chat/demo", func(*protocol.Message) {}); err != nil {
		t.Fatalf("subscribe: %v (the session is not bob's?)", err)
	}
	return c
}

// ended reports whether the server ended c's session (reconnect: none).
func ended(c *wasmclient.Client) bool {
	s := c.State()
	return s.State == wasmclient.Disconnected && errors.Is(s.LastError, wasmclient.ErrSessionEnded)
}

// TestAdminEndsEveryLoginAndSession: an admin's password reset or
// deletion of bob ends all of bob's logins and, at once, his live Bayeux
// sessions, over long-polling and WebSocket, by cookie and by ext.auth.
func TestAdminEndsEveryLoginAndSession(t *testing.T) {
	type testCase struct {
		action string
		form   url.Values
	}
	for _, tc := range []testCase{
		{action: "password", form: url.Values{"name": {"bob"}, "password": {"new-bob-pw"}}},
		{action: "delete", form: url.Values{"name": {"bob"}}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			r := startUsers(t, nil)
			alice := newWeb(t, r.url)
			alice.login("alice")
			laptop, phone := newWeb(t, r.url), newWeb(t, r.url)
			laptop.login("bob")
			phone.login("bob")
			clients := map[string]*wasmclient.Client{
				"long-polling by cookie": chatClient(t, r.url, laptop.jar, false),
				"WebSocket by cookie":    chatClient(t, r.url, phone.jar, true),
				"WebSocket by ext.auth":  chatClient(t, r.url, nil, true),
			}
			carol := newWeb(t, r.url)
			carol.login("carol")
			carolClient := chatClient(t, r.url, carol.jar, false)
			users := alice.get("/admin/users").body
			if n := strings.Count(users, `data-testid="admin-login-row" data-user="bob"`); n != 2 {
				t.Errorf("the Users page lists %d logins of bob, want 2", n)
			}

			if p := alice.admin(tc.action, tc.form); p.status != http.StatusSeeOther {
				t.Fatalf("%s: HTTP %d", tc.action, p.status)
			}
			for name, c := range clients {
				testutil.Eventually(t, soon, func() bool { return ended(c) }, "bob's "+name+" session ended")
			}
			for name, w := range map[string]*web{"laptop": laptop, "phone": phone} {
				if w.loggedIn() {
					t.Errorf("bob's %s is still logged in", name)
				}
			}
			if strings.Contains(alice.get("/admin/users").body, `data-testid="admin-login-row" data-user="bob"`) {
				t.Error("the Users page still lists a login of bob")
			}
			infos, err := r.app.Bayeux.Engine().(server.SessionLister).ListSessions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range infos {
				if in.User == "bob" {
					t.Errorf("bob still has session %s", in.ID)
				}
			}
			// Others are not affected.
			if !alice.loggedIn() || !carol.loggedIn() || ended(carolClient) {
				t.Error("another user's login or session ended too")
			}
		})
	}
}

// TestAdminChangesOwnPassword: an admin who sets their own password stays
// logged in where they did it; their other logins end.
func TestAdminChangesOwnPassword(t *testing.T) {
	r := startUsers(t, nil)
	here, there := newWeb(t, r.url), newWeb(t, r.url)
	here.login("alice")
	there.login("alice")
	if p := here.admin("password", url.Values{"name": {"alice"}, "password": {"new-alice-pw"}}); p.status != http.StatusSeeOther {
		t.Fatalf("HTTP %d", p.status)
	}
	if !here.loggedIn() {
		t.Error("the admin was logged out where they changed their password")
	}
	if there.loggedIn() {
		t.Error("the admin's other login survived the password change")
	}
}

// TestAdminEndsOneLogin: the Users page lists each login with its IP and
// browser; its button ends that login and its sessions, not the others.
func TestAdminEndsOneLogin(t *testing.T) {
	r := startUsers(t, nil)
	alice := newWeb(t, r.url)
	alice.login("alice")
	laptop, phone := newWeb(t, r.url), newWeb(t, r.url)
	laptop.login("bob")
	phone.login("bob")
	lc := chatClient(t, r.url, laptop.jar, false)
	pc := chatClient(t, r.url, phone.jar, false)

	d, err := goquery.NewDocumentFromReader(strings.NewReader(alice.get("/admin/users").body))
	if err != nil {
		t.Fatal(err)
	}
	rows := d.Find(`tr[data-testid="admin-login-row"][data-user="bob"]`)
	if rows.Length() != 2 {
		t.Fatalf("%d login rows for bob, want 2", rows.Length())
	}
	row := rows.First()
	if ip := strings.TrimSpace(row.Find(`td[data-label="IP"]`).Text()); ip != "127.0.0.1" {
		t.Errorf("IP %q", ip)
	}
	if ua := row.Find(`td[data-label="Browser"]`).Text(); !strings.Contains(ua, "test-browser/1.0") {
		t.Errorf("browser %q", ua)
	}
	for _, label := range []string{"Logged in", "Last seen"} {
		if v := row.Find(`td[data-label="` + label + `"]`).Text(); !strings.HasSuffix(strings.TrimSpace(v), "ago") {
			t.Errorf("%s %q", label, v)
		}
	}
	// The newest row is the phone's login.
	id := row.AttrOr("data-login", "")
	if p := alice.admin("logout", url.Values{"name": {"bob"}, "id": {id}}); p.status != http.StatusSeeOther ||
		!strings.Contains(p.header.Get("Location"), "msg=login-ended") {
		t.Fatalf("end login: HTTP %d %s", p.status, p.header.Get("Location"))
	}
	testutil.Eventually(t, soon, func() bool { return ended(pc) }, "the phone's session ended")
	if phone.loggedIn() {
		t.Error("the ended login still logs in")
	}
	if !laptop.loggedIn() || ended(lc) {
		t.Error("the laptop's login or session ended too")
	}
	// "End all logins" ends the rest.
	if p := alice.admin("logout-all", url.Values{"name": {"bob"}}); p.status != http.StatusSeeOther {
		t.Fatalf("end all: HTTP %d", p.status)
	}
	testutil.Eventually(t, soon, func() bool { return ended(lc) }, "the laptop's session ended")
	if laptop.loggedIn() {
		t.Error("End all logins left one")
	}
}

// TestAdminRevocationAppliesAtOnce: an admin whose rights are revoked is
// refused on the next request, pages and forms alike.
func TestAdminRevocationAppliesAtOnce(t *testing.T) {
	r := startUsers(t, nil)
	alice, carol := newWeb(t, r.url), newWeb(t, r.url)
	alice.login("alice")
	carol.login("carol")
	if p := alice.admin("grant", url.Values{"name": {"carol"}}); p.status != http.StatusSeeOther {
		t.Fatalf("grant: HTTP %d", p.status)
	}
	tok := carol.token("/admin/users")
	if p := alice.admin("revoke", url.Values{"name": {"carol"}}); p.status != http.StatusSeeOther {
		t.Fatalf("revoke: HTTP %d", p.status)
	}
	if p := carol.get("/admin/users"); p.status != http.StatusForbidden {
		t.Errorf("carol's next admin page: HTTP %d, want 403", p.status)
	}
	if p := carol.do(http.MethodPost, "/admin/users/add", url.Values{"name": {"mallory"}, "password": {"x"}, "token": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("carol's form after the revocation: HTTP %d, want 403", p.status)
	}
	if !carol.loggedIn() {
		t.Error("revoking admin rights logged carol out of the chat")
	}
}

// TestLoginsSurviveRestart: a login made before a restart still logs in
// after it, and a logout before a restart stays a logout after it.
func TestLoginsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	r := startUsers(t, map[string]string{"BAYEUX_DATA_DIR": dir})
	bob, carol := newWeb(t, r.url), newWeb(t, r.url)
	bob.login("bob")
	saved := carol.login("carol")
	carol.get("/logout")
	r.stop(t)

	r = start(t, map[string]string{"BAYEUX_DATA_DIR": dir, "BAYEUX_ADMINS": "alice"})
	if !bob.on(r.url).loggedIn() {
		t.Error("bob's login did not survive the restart")
	}
	if replay(t, r.url, saved).loggedIn() {
		t.Error("carol's logged-out cookie logs in after the restart")
	}
}

// TestLoginsSharedOnRedis: with the Redis engine a login made on one node
// logs in on another, its logout there is seen on the first at once, and
// failed logins count for the cluster, not per node.
func TestLoginsSharedOnRedis(t *testing.T) {
	rs := redistest.Start(t)
	keys := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	node := func() *running {
		return startUsers(t, map[string]string{"BAYEUX_ENGINE": rs.URL, "BAYEUX_SESSION_KEYS": keys})
	}
	n1, n2 := node(), node()
	one := newWeb(t, n1.url)
	one.login("bob")
	two := one.on(n2.url)
	if !two.loggedIn() || two.bayeuxUser() != "bob" {
		t.Fatal("a login made on node 1 does not log in on node 2")
	}
	if p := two.get("/logout"); p.status != http.StatusSeeOther {
		t.Fatalf("logout on node 2: HTTP %d", p.status)
	}
	if one.loggedIn() {
		t.Error("after a logout on node 2 the login still works on node 1")
	}

	// Failed logins: 3 on node 1 and 3 on node 2 make 6, more than the
	// limit of 5 for one user from one address.
	for i, w := range []*web{one, one, one, two, two, two} {
		p := w.do(http.MethodPost, "/login", url.Values{"user": {"carol"}, "password": {"wrong"}})
		if i < 5 && !strings.Contains(p.body, "Wrong user name or password.") {
			t.Errorf("guess %d: HTTP %d, want it checked", i+1, p.status)
		}
		if i == 5 && !strings.Contains(p.body, "Too many failed logins") {
			t.Errorf("the 6th guess, on the other node: HTTP %d, want it refused unchecked", p.status)
		}
	}
	// The refusal is in node 2's metrics.
	if m := two.get("/metrics").body; !strings.Contains(m, `bayeux_refused_total{reason="login_user_ip"} 1`+"\n") ||
		!strings.Contains(m, `bayeux_refused_total{reason="login_ip"} 0`+"\n") || !strings.Contains(m, `bayeux_refused_total{reason="login_user"} 0`+"\n") {
		t.Errorf("/metrics lacks the login refusals:\n%s", grepLines(m, "bayeux_refused_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
