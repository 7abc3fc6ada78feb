package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/PuerkitoBio/goquery"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/ui"
)

const wait = 5 * time.Second

// site is the server's web site as the app wires it: the Bayeux endpoint
// with the chat's hooks, /login, /logout, and a page behind RequireLogin.
type site struct {
	t      *testing.T
	srv    *server.Server
	auth   *auth.Authenticator
	logins *auth.Logins
	hs     *httptest.Server
}

func newSite(t *testing.T) *site {
	t.Helper()
	// Users alice and bob, password NAME-pw, hashed cheaply: a login
	// checks with the hash's own cost (cost 10 takes ~650 ms under -race).
	return newSiteUsers(t, testutil.WriteUsers(t, "", "alice", "bob"))
}

// newSiteUsers is newSite with the users file at path.
func newSiteUsers(t *testing.T, path string) *site {
	t.Helper()
	users, err := auth.OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	logins, err := auth.NewLogins([][]byte{bytes.Repeat([]byte{3}, 32)}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	authn := auth.NewAuthenticator(users)
	c := chat.New(authn, logins, log)
	srv, err := server.New(server.Options{
		Authorize: c.Authorize, Authorizers: c.Authorizers(), Channels: chat.DefaultRules(), Services: c.Services(), Logger: log,
		PollTimeout: 2 * time.Second, ConnectTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(srv)
	pages := ui.NewPages(srv, logins, log)
	chatPage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the chat") })
	hs := httptest.NewServer(srv.Site(server.SiteOptions{ContentHandlers: map[string]http.Handler{
		"/login":  pages.Login(),
		"/logout": pages.Logout(),
		"/chat/":  pages.RequireLogin(chatPage),
	}}))
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &site{t: t, srv: srv, auth: authn, logins: logins, hs: hs}
}

// browser is an HTTP client with its own cookie jar that does not follow
// redirects.
type browser struct {
	s   *site
	hc  *http.Client
	jar *cookiejar.Jar
}

func (s *site) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &browser{s: s, jar: jar, hc: &http.Client{
		Jar:           jar,
		Timeout:       wait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// browserFrom is a browser whose requests come from the loopback address
// ip (127.x.y.z), another client for the per-address limits.
func (s *site) browserFrom(ip string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &browser{s: s, jar: jar, hc: testutil.ClientFrom(ip, jar)}
}

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	body []byte
}

func (r *response) doc(t *testing.T) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// cookie returns the Set-Cookie of name in the response, or nil.
func (r *response) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) *response {
	b.s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.hs.URL+path, body)
	if err != nil {
		b.s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.s.t.Fatal(err)
	}
	return &response{Response: resp, body: data}
}

func (b *browser) get(path string) *response { return b.do(http.MethodGet, path, nil, nil) }

// sameOrigin are the headers a browser sends on a same-origin form POST.
var sameOrigin = map[string]string{"Sec-Fetch-Site": "same-origin"}

func (b *browser) postLogin(user, password, next string) *response {
	b.s.t.Helper()
	form := url.Values{"user": {user}, "password": {password}}
	if next != "" {
		form.Set("next", next)
	}
	hdr := map[string]string{"Origin": b.s.hs.URL, "Sec-Fetch-Site": "same-origin"}
	return b.do(http.MethodPost, "/login", form, hdr)
}

// loggedIn logs the browser in as user and returns it.
func (b *browser) loggedIn(user string) *browser {
	b.s.t.Helper()
	if r := b.postLogin(user, user+"-pw", ""); r.StatusCode != http.StatusSeeOther {
		b.s.t.Fatalf("login as %s: HTTP %d %s", user, r.StatusCode, r.body)
	}
	return b
}

// bayeux sends msgs to /cometd as this browser (with its cookies).
func (b *browser) bayeux(msgs ...*protocol.Message) []*protocol.Message {
	b.s.t.Helper()
	for i, m := range msgs {
		m.ID = protocol.ID(fmt.Sprint(i + 1))
	}
	body, _ := json.Marshal(msgs)
	req, err := http.NewRequest(http.MethodPost, b.s.hs.URL+"/cometd", bytes.NewReader(body))
	if err != nil {
		b.s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		b.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []*protocol.Message
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) == 0 {
		b.s.t.Fatalf("bayeux response: HTTP %d, %v", resp.StatusCode, err)
	}
	return out
}

// handshake opens a Bayeux session in this browser (authenticated by its
// login cookie, or by ext) and returns its clientId.
func (b *browser) handshake(ext map[string]json.RawMessage) string {
	b.s.t.Helper()
	r := b.bayeux(&protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
		SupportedConnectionTypes: []string{protocol.LongPolling}, Ext: ext})[0]
	if !r.IsSuccessful() {
		b.s.t.Fatalf("handshake: %s", r.Error)
	}
	return r.ClientID
}

func (b *browser) whoami(id string) string {
	b.s.t.Helper()
	for _, m := range b.bayeux(&protocol.Message{Channel: "/service/chat/whoami", ClientID: id, Data: json.RawMessage(`{}`)}) {
		if m.Data != nil {
			var d struct{ User string }
			_ = json.Unmarshal(m.Data, &d)
			return d.User
		}
	}
	b.s.t.Fatal("whoami: no answer")
	return ""
}

// connect sends a /meta/connect that returns at once and returns its reply.
func (b *browser) connect(id string) *protocol.Message {
	b.s.t.Helper()
	for _, m := range b.bayeux(&protocol.Message{Channel: protocol.MetaConnect, ClientID: id,
		ConnectionType: protocol.LongPolling, Advice: &protocol.Advice{Timeout: protocol.Ms(0)}}) {
		if m.Channel == protocol.MetaConnect {
			return m
		}
	}
	b.s.t.Fatal("connect: no reply")
	return nil
}

func (s *site) sessionCount() int {
	s.t.Helper()
	n, err := s.srv.Engine().(server.SessionLister).SessionCount(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

func TestSafeNext(t *testing.T) {
	type testCase struct {
		in, want string
	}
	for _, tc := range []testCase{
		{in: "", want: "/chat/"},
		{in: "/chat/", want: "/chat/"},
		{in: "/chat/?room=lobby", want: "/chat/?room=lobby"},
		{in: "/admin/", want: "/admin/"},
		{in: "/", want: "/"},
		{in: "//evil.com", want: "/chat/"},
		{in: "//evil.com/chat/", want: "/chat/"},
		{in: "https://evil.com", want: "/chat/"},
		{in: "http://evil.com/chat/", want: "/chat/"},
		{in: "javascript:alert(1)", want: "/chat/"},
		{in: "/\\evil", want: "/chat/"},
		{in: "\\\\evil.com", want: "/chat/"},
		{in: "evil.com", want: "/chat/"},
		{in: "chat/", want: "/chat/"},
		{in: "/\r\nSet-Cookie: x=y", want: "/chat/"},
		// Browsers drop tabs and newlines inside URLs (WHATWG URL
		// parsing), so "/<TAB>/evil.com" in a Location header leads to
		// //evil.com.
		{in: "/\t/evil.com", want: "/chat/"},
		{in: "/\n/evil.com", want: "/chat/"},
	} {
		if got := ui.SafeNext(tc.in); got != tc.want {
			t.Errorf("SafeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginForm(t *testing.T) {
	s := newSite(t)
	type testCase struct {
		name     string
		path     string
		wantNext string
	}
	for _, tc := range []testCase{
		{name: "no next", path: "/login", wantNext: "/chat/"},
		{name: "local next", path: "/login?next=" + url.QueryEscape("/chat/?room=lobby"), wantNext: "/chat/?room=lobby"},
		{name: "protocol-relative next", path: "/login?next=" + url.QueryEscape("//evil.com"), wantNext: "/chat/"},
		{name: "absolute next", path: "/login?next=" + url.QueryEscape("https://evil.com"), wantNext: "/chat/"},
		{name: "backslash next", path: "/login?next=" + url.QueryEscape("/\\evil"), wantNext: "/chat/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.browser().get(tc.path)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d", r.StatusCode)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			d := r.doc(t)
			form := d.Find("form")
			if method, _ := form.Attr("method"); form.Length() != 1 || !strings.EqualFold(method, "post") || form.AttrOr("action", "") != "/login" {
				t.Errorf("want one form POSTing to /login, got %d forms (method %q action %q)", form.Length(), method, form.AttrOr("action", ""))
			}
			user := form.Find(`input[data-testid="login-user"]`)
			if user.Length() != 1 || user.AttrOr("name", "") != "user" || user.AttrOr("value", "") != "" {
				t.Errorf("login-user: %d inputs, name %q value %q", user.Length(), user.AttrOr("name", ""), user.AttrOr("value", ""))
			}
			pw := form.Find(`input[data-testid="login-password"]`)
			if pw.Length() != 1 || pw.AttrOr("name", "") != "password" || pw.AttrOr("type", "") != "password" {
				t.Errorf("login-password: %d inputs, name %q type %q", pw.Length(), pw.AttrOr("name", ""), pw.AttrOr("type", ""))
			}
			if sub := form.Find(`[data-testid="login-submit"]`); sub.Length() != 1 || sub.AttrOr("type", "") != "submit" {
				t.Errorf("login-submit: %d elements, type %q", sub.Length(), sub.AttrOr("type", ""))
			}
			next := form.Find(`input[type="hidden"][name="next"]`)
			if next.Length() != 1 || next.AttrOr("value", "") != tc.wantNext {
				t.Errorf("hidden next: %d inputs, value %q, want %q", next.Length(), next.AttrOr("value", ""), tc.wantNext)
			}
			if d.Find(`[data-testid="login-error"]`).Length() != 0 {
				t.Error("a fresh form shows login-error")
			}
		})
	}
}

func TestLoginPost(t *testing.T) {
	s := newSite(t)
	type testCase struct {
		name, user, password, next string
		wantStatus                 int
		wantLocation               string // for 303
		wantError                  string // login-error text for 401
		wantNext                   string // hidden next refilled for 401
	}
	for _, tc := range []testCase{
		{name: "wrong password", user: "alice", password: "bob-pw", next: "/chat/?room=x", wantStatus: 401, wantError: "Wrong user name or password.", wantNext: "/chat/?room=x"},
		{name: "unknown user", user: "mallory", password: "mallory-secret", wantStatus: 401, wantError: "Wrong user name or password.", wantNext: "/chat/"},
		{name: "empty password", user: "bob", password: "", wantStatus: 401, wantError: "Wrong user name or password.", wantNext: "/chat/"},
		{name: "markup in the user name is escaped", user: `<b>x</b>"`, password: "markup-secret", wantStatus: 401, wantError: "Wrong user name or password.", wantNext: "/chat/"},
		{name: "right password", user: "alice", password: "alice-pw", wantStatus: 303, wantLocation: "/chat/"},
		{name: "right password with next", user: "bob", password: "bob-pw", next: "/chat/?room=lobby", wantStatus: 303, wantLocation: "/chat/?room=lobby"},
		{name: "right password with foreign next", user: "alice", password: "alice-pw", next: "https://evil.com/", wantStatus: 303, wantLocation: "/chat/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := s.browser()
			r := b.postLogin(tc.user, tc.password, tc.next)
			if r.StatusCode != tc.wantStatus {
				t.Fatalf("HTTP %d, want %d: %s", r.StatusCode, tc.wantStatus, r.body)
			}
			if n := s.sessionCount(); n != 0 {
				t.Errorf("%d Bayeux sessions left by the login check", n)
			}
			c := r.cookie(auth.LoginCookie)
			if tc.wantStatus != http.StatusSeeOther {
				if c != nil {
					t.Errorf("a failed login set %s", c)
				}
				d := r.doc(t)
				if e := strings.TrimSpace(d.Find(`[data-testid="login-error"]`).Text()); e != tc.wantError {
					t.Errorf("login-error %q, want %q", e, tc.wantError)
				}
				if u := d.Find(`input[data-testid="login-user"]`).AttrOr("value", ""); u != tc.user {
					t.Errorf("user name refilled as %q, want %q", u, tc.user)
				}
				if n := d.Find(`input[name="next"]`).AttrOr("value", ""); n != tc.wantNext {
					t.Errorf("next %q, want %q", n, tc.wantNext)
				}
				if strings.Contains(string(r.body), tc.password) && tc.password != "" {
					t.Error("the page shows the password")
				}
				if tc.user == `<b>x</b>"` && strings.Contains(string(r.body), "<b>x</b>") {
					t.Error("user name markup is not escaped")
				}
				return
			}
			if loc := r.Header.Get("Location"); loc != tc.wantLocation {
				t.Errorf("Location %q, want %q", loc, tc.wantLocation)
			}
			if c == nil {
				t.Fatal("no login cookie set")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
				t.Errorf("cookie %s: want HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP", c)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.AddCookie(c)
			if got := s.logins.User(req); got != tc.user {
				t.Errorf("cookie logs in %q, want %q", got, tc.user)
			}
			// The browser now reaches the chat.
			if r := b.get("/chat/"); r.StatusCode != http.StatusOK || string(r.body) != "the chat" {
				t.Errorf("GET /chat/ after login: HTTP %d %q", r.StatusCode, r.body)
			}
		})
	}
}

func TestLoginPageWhenLoggedIn(t *testing.T) {
	s := newSite(t)
	b := s.browser().loggedIn("alice")
	type testCase struct {
		name, path, want string
	}
	for _, tc := range []testCase{
		{name: "default", path: "/login", want: "/chat/"},
		{name: "next", path: "/login?next=" + url.QueryEscape("/chat/?room=r"), want: "/chat/?room=r"},
		{name: "foreign next", path: "/login?next=" + url.QueryEscape("//evil.com"), want: "/chat/"},
		// A browser drops the tab and goes to //evil.com.
		{name: "next with a tab", path: "/login?next=" + url.QueryEscape("/\t/evil.com"), want: "/chat/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get(tc.path)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != tc.want {
				t.Errorf("HTTP %d Location %q, want 303 to %q", r.StatusCode, r.Header.Get("Location"), tc.want)
			}
		})
	}
}

func TestLoginRateLimited(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	for i := range 5 {
		r := b.postLogin("alice", "wrong", "")
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: HTTP %d", i+1, r.StatusCode)
		}
	}
	r := b.postLogin("alice", "alice-pw", "")
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("right password after 5 failures: HTTP %d, want 401", r.StatusCode)
	}
	msg := r.doc(t).Find(`[data-testid="login-error"]`).Text()
	if !strings.Contains(strings.ToLower(msg), "try again") {
		t.Errorf("login-error %q does not say to try again later", msg)
	}
	if r.cookie(auth.LoginCookie) != nil {
		t.Error("a rate-limited login set the cookie")
	}
	s.browser().loggedIn("bob") // other users still log in
}

func TestLoginCrossOrigin(t *testing.T) {
	s := newSite(t)
	type testCase struct {
		name       string
		hdr        map[string]string
		wantStatus int
	}
	for _, tc := range []testCase{
		{name: "cross-site", hdr: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, wantStatus: http.StatusForbidden},
		{name: "foreign origin, old browser", hdr: map[string]string{"Origin": "https://evil.example"}, wantStatus: http.StatusForbidden},
		{name: "same-origin", hdr: map[string]string{"Origin": s.hs.URL, "Sec-Fetch-Site": "same-origin"}, wantStatus: http.StatusSeeOther},
		{name: "not a browser", hdr: nil, wantStatus: http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := s.browser()
			form := url.Values{"user": {"alice"}, "password": {"alice-pw"}}
			r := b.do(http.MethodPost, "/login", form, tc.hdr)
			if r.StatusCode != tc.wantStatus {
				t.Fatalf("HTTP %d, want %d", r.StatusCode, tc.wantStatus)
			}
			if got := r.cookie(auth.LoginCookie) != nil; got != (tc.wantStatus == http.StatusSeeOther) {
				t.Errorf("login cookie set: %v", got)
			}
		})
	}
}

func TestLoginMethods(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	if r := b.do(http.MethodHead, "/login", nil, nil); r.StatusCode != http.StatusOK || len(r.body) != 0 {
		t.Errorf("HEAD: HTTP %d, %d bytes", r.StatusCode, len(r.body))
	}
	r := b.do(http.MethodPut, "/login", nil, nil)
	if r.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(r.Header.Get("Allow"), "POST") {
		t.Errorf("PUT: HTTP %d Allow %q, want 405 with Allow", r.StatusCode, r.Header.Get("Allow"))
	}
}

func TestLogout(t *testing.T) {
	type testCase struct {
		name   string
		method string
	}
	for _, tc := range []testCase{{name: "link", method: http.MethodGet}, {name: "form", method: http.MethodPost}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			b := s.browser().loggedIn("alice")
			id := b.handshake(nil) // the chat, logged in by the cookie
			if u := b.whoami(id); u != "alice" {
				t.Fatalf("session of the logged-in browser is %q", u)
			}
			// alice in another browser, and bob, keep their sessions.
			other := s.browser()
			otherID := other.handshake(authExt("alice"))
			bob := s.browser().loggedIn("bob")
			bobID := bob.handshake(nil)
			if n := s.sessionCount(); n != 3 {
				t.Fatalf("%d sessions, want 3", n)
			}

			var form url.Values
			if tc.method == http.MethodPost {
				form = url.Values{}
			}
			r := b.do(tc.method, "/logout", form, sameOrigin)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
				t.Fatalf("logout: HTTP %d Location %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
			}
			c := r.cookie(auth.LoginCookie)
			if c == nil || c.MaxAge >= 0 {
				t.Errorf("logout cookie %v, want %s with Max-Age < 0", c, auth.LoginCookie)
			}
			if n := s.sessionCount(); n != 2 {
				t.Errorf("%d sessions after logout, want 2", n)
			}
			if rep := b.connect(id); rep.IsSuccessful() || !strings.HasPrefix(rep.Error, "402::") {
				t.Errorf("connect of the logged-out session: successful %v error %q, want 402", rep.IsSuccessful(), rep.Error)
			}
			if rep := other.connect(otherID); !rep.IsSuccessful() {
				t.Errorf("alice's session in another browser ended: %s", rep.Error)
			}
			if rep := bob.connect(bobID); !rep.IsSuccessful() {
				t.Errorf("bob's session ended: %s", rep.Error)
			}
			// The browser is logged out: the chat leads to /login, and a
			// new handshake is anonymous.
			if r := b.get("/chat/"); r.StatusCode != http.StatusSeeOther {
				t.Errorf("GET /chat/ after logout: HTTP %d, want 303", r.StatusCode)
			}
			if u := b.whoami(b.handshake(nil)); u != "" {
				t.Errorf("handshake after logout is %q, want anonymous", u)
			}
		})
	}
}

func authExt(user string) map[string]json.RawMessage {
	b, _ := json.Marshal(map[string]string{"user": user, "password": user + "-pw"})
	return map[string]json.RawMessage{"auth": b}
}

func TestLogoutCrossSiteRefused(t *testing.T) {
	s := newSite(t)
	b := s.browser().loggedIn("alice")
	id := b.handshake(nil)
	type testCase struct {
		name   string
		method string
		hdr    map[string]string
	}
	for _, tc := range []testCase{
		{name: "GET cross-site", method: http.MethodGet, hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{name: "POST cross-site", method: http.MethodPost, hdr: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{name: "POST foreign origin", method: http.MethodPost, hdr: map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var form url.Values
			if tc.method == http.MethodPost {
				form = url.Values{}
			}
			r := b.do(tc.method, "/logout", form, tc.hdr)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("HTTP %d, want 403", r.StatusCode)
			}
			if c := r.cookie(auth.LoginCookie); c != nil {
				t.Errorf("a refused logout set %s", c)
			}
		})
	}
	if rep := b.connect(id); !rep.IsSuccessful() {
		t.Errorf("a refused logout ended the session: %s", rep.Error)
	}
	if r := b.get("/chat/"); r.StatusCode != http.StatusOK {
		t.Errorf("still logged in? GET /chat/: HTTP %d", r.StatusCode)
	}
}

func TestLogoutWithoutLogin(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.handshake(authExt("alice")) // a session, but no login cookie
	r := b.get("/logout")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Errorf("HTTP %d Location %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
	}
	if n := s.sessionCount(); n != 1 {
		t.Errorf("%d sessions, want 1: without a login, logout ends no session", n)
	}
}

func TestRequireLogin(t *testing.T) {
	s := newSite(t)
	type testCase struct {
		name, path string
	}
	for _, tc := range []testCase{
		{name: "root", path: "/chat/"},
		{name: "query", path: "/chat/?room=a%20b&x=1"},
		{name: "sub-path", path: "/chat/web/app.js"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.browser().get(tc.path)
			want := "/login?next=" + url.QueryEscape(tc.path)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
				t.Errorf("without login: HTTP %d Location %q, want 303 to %q", r.StatusCode, r.Header.Get("Location"), want)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			// Following the redirect offers the form that leads back.
			loc, _ := url.Parse(r.Header.Get("Location"))
			form := s.browser().get(loc.RequestURI())
			if next := form.doc(t).Find(`input[name="next"]`).AttrOr("value", ""); next != tc.path {
				t.Errorf("login form next %q, want %q", next, tc.path)
			}
		})
	}
	b := s.browser().loggedIn("alice")
	if r := b.get("/chat/?room=x"); r.StatusCode != http.StatusOK || string(r.body) != "the chat" {
		t.Errorf("with login: HTTP %d %q, want the page", r.StatusCode, r.body)
	}
	// A forged cookie does not pass.
	forged := s.browser()
	u, _ := url.Parse(s.hs.URL)
	forged.jar.SetCookies(u, []*http.Cookie{{Name: auth.LoginCookie, Value: "alice", Path: "/"}})
	if r := forged.get("/chat/"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("forged cookie: HTTP %d, want 303", r.StatusCode)
	}
}
