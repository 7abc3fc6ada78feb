package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/PuerkitoBio/goquery"

	"github.com/bayeux-go/bayeux/internal/admin"
	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/ui"
)

// adminSite is the site as the app wires it with the admin pages:
// users alice (admin through BAYEUX_ADMINS, with root who has no
// account), bob and carol (plain users), password NAME-pw.
type adminSite struct {
	*site
	users  *auth.Users
	admins *admin.Admins
	rec    *admin.Recorder
	ready  *admin.Ready
	dir    string
}

func newAdminSite(t *testing.T) *adminSite {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteUsers(t, filepath.Join(dir, "users"), "alice", "bob", "carol")
	users, err := auth.OpenUsers(filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	admins, err := admin.OpenAdmins(filepath.Join(dir, "admins"), []string{"alice", "root"})
	if err != nil {
		t.Fatal(err)
	}
	logins, err := auth.NewLogins([][]byte{bytes.Repeat([]byte{5}, 32)}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	authn := auth.NewAuthenticator(users)
	c := chat.New(authn, logins, log)
	rec := admin.NewRecorder(admin.RecorderOptions{})
	srv, err := server.New(server.Options{
		Authorize: rec.Authorize(c.Authorize),
		OnEvent:   rec.OnEvent,
		Channels:  chat.DefaultRules(),
		Services:  c.Services(), Logger: log, Authorizers: c.Authorizers(),
		PollTimeout: 20 * time.Second, ConnectTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(srv)
	rec.Attach(srv)
	pages := ui.NewPages(srv, logins, log)
	pages.UserExists = users.Exists
	ready := &admin.Ready{Server: srv}
	hs := httptest.NewServer(srv.Site(server.SiteOptions{ContentHandlers: map[string]http.Handler{
		"/login":  pages.Login(),
		"/logout": pages.Logout(),
		"/admin/": pages.Admin(ui.AdminOptions{
			Users: users, Admins: admins, Recorder: rec, FailedLogins: authn.Failed.Load,
			Version: "v0.0.0-test", Engine: "memory",
		}),
		"/metrics":    admin.Metrics(admin.MetricsOptions{Recorder: rec, FailedLogins: authn.Failed.Load, Version: "v0.0.0-test", Engine: "memory"}),
		"GET /readyz": ready,
	}}))
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		rec.Close()
	})
	return &adminSite{
		site:  &site{t: t, srv: srv, auth: authn, logins: logins, hs: hs},
		users: users, admins: admins, rec: rec, ready: ready, dir: dir,
	}
}

// token returns the form token from an admin page.
func (b *browser) token(path string) string {
	b.s.t.Helper()
	r := b.get(path)
	if r.StatusCode != http.StatusOK {
		b.s.t.Fatalf("GET %s: HTTP %d", path, r.StatusCode)
	}
	tok := r.doc(b.s.t).Find(`input[name="token"]`).First().AttrOr("value", "")
	if tok == "" {
		b.s.t.Fatalf("no form token on %s", path)
	}
	return tok
}

// post sends a same-origin form POST as a browser does.
func (b *browser) post(path string, form url.Values) *response {
	b.s.t.Helper()
	return b.do(http.MethodPost, path, form, map[string]string{"Origin": b.s.hs.URL, "Sec-Fetch-Site": "same-origin"})
}

// adminPost posts form with a valid token to an admin action.
func (b *browser) adminPost(path string, form url.Values) *response {
	b.s.t.Helper()
	form.Set("token", b.token("/admin/users"))
	return b.post(path, form)
}

func wantRedirect(t *testing.T, r *response, prefix string) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), prefix) {
		t.Fatalf("HTTP %d Location %q, want 303 to %s...; body: %s", r.StatusCode, r.Header.Get("Location"), prefix, r.body)
	}
}

func TestAdminAnonymousRedirectsToLogin(t *testing.T) {
	s := newAdminSite(t)
	for _, path := range []string{"/admin/", "/admin/clients?user=bob", "/admin/users", "/admin/live", "/admin/nope"} {
		r := s.browser().get(path)
		want := "/login?next=" + url.QueryEscape(path)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
			t.Errorf("GET %s: HTTP %d Location %q, want 303 to %s", path, r.StatusCode, r.Header.Get("Location"), want)
		}
	}
	// /admin without the slash leads to /admin/.
	if r := s.browser().get("/admin"); r.StatusCode/100 != 3 || r.Header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: HTTP %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	// A POST without a login changes nothing.
	r := s.browser().post("/admin/users/add", url.Values{"name": {"mallory"}, "password": {"x"}, "token": {"x"}})
	if r.StatusCode != http.StatusForbidden || s.users.Exists("mallory") {
		t.Errorf("anonymous POST: HTTP %d, user added %v", r.StatusCode, s.users.Exists("mallory"))
	}
	// The assets need no login.
	if r := s.browser().get("/admin/assets/admin.css"); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") {
		t.Errorf("admin.css: HTTP %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

func TestAdminNonAdminForbidden(t *testing.T) {
	s := newAdminSite(t)
	b := s.browser().loggedIn("bob")
	for _, path := range []string{"/admin/", "/admin/clients", "/admin/users", "/admin/live"} {
		r := b.get(path)
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s as bob: HTTP %d, want 403", path, r.StatusCode)
			continue
		}
		if path != "/admin/live" && r.doc(t).Find(`[data-testid="admin-forbidden"]`).Length() != 1 {
			t.Errorf("GET %s: no forbidden page", path)
		}
	}
	r := b.post("/admin/users/grant", url.Values{"name": {"bob"}, "token": {"anything"}})
	if r.StatusCode != http.StatusForbidden || s.admins.IsAdmin("bob") {
		t.Errorf("bob granting himself: HTTP %d, admin %v", r.StatusCode, s.admins.IsAdmin("bob"))
	}
}

func TestAdminOverview(t *testing.T) {
	s := newAdminSite(t)
	b := s.browser().loggedIn("alice")
	bob := s.browser().loggedIn("bob")
	bob.handshake(nil)
	s.rec.Sample(time.Now())
	r := b.get("/admin/")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", r.StatusCode)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	d := r.doc(t)
	stat := func(id string) string {
		return strings.TrimSpace(d.Find(`[data-stat="` + id + `"] dd`).Text())
	}
	if got := stat("version"); got != "v0.0.0-test" {
		t.Errorf("version %q", got)
	}
	if got := stat("engine"); got != "memory" {
		t.Errorf("engine %q", got)
	}
	if got := stat("sessions"); got != "1" {
		t.Errorf("sessions %q, want 1", got)
	}
	for _, id := range []string{"uptime", "held", "channels", "in", "out", "published", "handshakes", "failed-logins", "errors", "dropped", "heap", "sys", "goroutines", "queued"} {
		if stat(id) == "" {
			t.Errorf("figure %s missing", id)
		}
	}
	if d.Find(`[data-transport]`).Length() != 1 {
		t.Errorf("sessions by transport: %q", d.Find(`[data-testid="admin-transports"]`).Text())
	}
	if d.Find(`svg[data-testid="admin-chart"]`).Length() != 1 {
		t.Error("no rate chart")
	}
	if live := d.Find(`[data-live]`).AttrOr("data-live", ""); live != "/admin/live" {
		t.Errorf("data-live %q", live)
	}
	src := d.Find(`script[src^="/admin/assets/admin.js?v="]`).AttrOr("src", "")
	if src == "" {
		t.Fatal("no admin.js")
	}
	if js := b.get(src); js.StatusCode != http.StatusOK || !strings.Contains(js.Header.Get("Cache-Control"), "immutable") ||
		!strings.Contains(string(js.body), "data-live") {
		t.Errorf("admin.js: HTTP %d %q", js.StatusCode, js.Header.Get("Cache-Control"))
	}
	if d.Find(`[data-testid="admin-user"]`).Text() != "alice" {
		t.Error("the page does not say who is logged in")
	}

	// The live fragment: figures and chart, no page around them.
	frag := b.get("/admin/live")
	if frag.StatusCode != http.StatusOK || bytes.Contains(frag.body, []byte("<html")) {
		t.Fatalf("live: HTTP %d, %d bytes", frag.StatusCode, len(frag.body))
	}
	fd := frag.doc(t)
	if fd.Find(`[data-testid="admin-stats"]`).Length() != 1 || fd.Find(`svg[data-testid="admin-chart"]`).Length() != 1 {
		t.Errorf("live fragment lacks the figures or the chart: %s", frag.body)
	}

	// HEAD works; unknown pages are 404 for admins.
	if h := b.do(http.MethodHead, "/admin/", nil, nil); h.StatusCode != http.StatusOK || len(h.body) != 0 {
		t.Errorf("HEAD: HTTP %d, %d bytes", h.StatusCode, len(h.body))
	}
	if nf := b.get("/admin/nope"); nf.StatusCode != http.StatusNotFound {
		t.Errorf("GET /admin/nope: HTTP %d", nf.StatusCode)
	}
}

// bobSession opens a Bayeux session for bob (logged in by cookie),
// subscribed to channels.
func bobSession(t *testing.T, s *adminSite, channels ...string) (*browser, string) {
	t.Helper()
	b := s.browser().loggedIn("bob")
	id := b.handshake(nil)
	for _, ch := range channels {
		r := b.bayeux(&protocol.Message{Channel: protocol.MetaSubscribe, ClientID: id, Subscription: protocol.Subscription{Channels: []string{ch}}})
		if !r[0].IsSuccessful() {
			t.Fatalf("subscribe %s: %s", ch, r[0].Error)
		}
	}
	if rep := b.connect(id); !rep.IsSuccessful() {
		t.Fatalf("connect: %s", rep.Error)
	}
	return b, id
}

func TestAdminClientsTable(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	_, id := bobSession(t, s, "/chat/demo")
	carol := s.browser().loggedIn("carol")
	carol.handshake(nil)

	d := a.get("/admin/clients").doc(t)
	table := d.Find(`table[data-testid="admin-clients"]`)
	if table.Length() != 1 {
		t.Fatal("no admin-clients table")
	}
	rows := table.Find(`tr[data-testid="admin-client-row"]`)
	if rows.Length() != 2 {
		t.Fatalf("%d rows, want 2", rows.Length())
	}
	row := table.Find(`tr[data-user="bob"]`)
	cell := func(label string) string {
		return strings.TrimSpace(row.Find(`td[data-label="` + label + `"]`).Text())
	}
	if got := cell("Client"); got != id[:8] {
		t.Errorf("client %q, want %q", got, id[:8])
	}
	if got := cell("Transport"); got != protocol.LongPolling {
		t.Errorf("transport %q", got)
	}
	if got := cell("Subscriptions"); got != "/chat/demo" {
		t.Errorf("subscriptions %q", got)
	}
	if got := cell("IP"); got != "127.0.0.1" {
		t.Errorf("IP %q", got)
	}
	if got := cell("Queue"); got == "" {
		t.Error("no queue cell")
	}
	if got := cell("Last activity"); !strings.HasSuffix(got, "ago") {
		t.Errorf("last activity %q", got)
	}
	if row.Find(`button[data-testid="admin-disconnect"]`).Length() != 1 {
		t.Error("no disconnect button")
	}
	if bytes.Contains(a.get("/admin/clients").body, []byte("bob-pw")) {
		t.Error("a password on the page")
	}

	type testCase struct {
		query string
		users []string
	}
	for _, tc := range []testCase{
		{query: "user=bob", users: []string{"bob"}},
		{query: "user=carol", users: []string{"carol"}},
		{query: "user=nobody", users: nil},
		{query: "channel=%2Fchat%2Fdemo", users: []string{"bob"}},
		{query: "channel=%2Fchat%2Fother", users: nil},
		{query: "user=carol&channel=%2Fchat%2Fdemo", users: nil},
	} {
		d := a.get("/admin/clients?" + tc.query).doc(t)
		var got []string
		d.Find(`tr[data-testid="admin-client-row"]`).Each(func(_ int, s *goquery.Selection) {
			got = append(got, s.AttrOr("data-user", ""))
		})
		if !slices.Equal(got, tc.users) {
			t.Errorf("?%s: rows for %q, want %q", tc.query, got, tc.users)
		}
	}
}

func TestAdminDisconnect(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	bob, id := bobSession(t, s, "/chat/demo")

	// Bob's client holds a connect, as a real client does.
	type result struct {
		msgs []*protocol.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		body, _ := json.Marshal([]*protocol.Message{{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling}})
		req, _ := http.NewRequest(http.MethodPost, s.hs.URL+"/cometd", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := bob.hc.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var msgs []*protocol.Message
		err = json.NewDecoder(resp.Body).Decode(&msgs)
		done <- result{msgs, err}
	}()
	deadline := time.Now().Add(wait)
	for s.srv.Stats().HeldConnects.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connect was not held")
		}
		time.Sleep(5 * time.Millisecond)
	}

	tok := a.token("/admin/clients")
	r := a.post("/admin/clients/disconnect", url.Values{"id": {id}, "token": {tok}, "user": {"bob"}})
	wantRedirect(t, r, "/admin/clients?")
	loc, _ := url.Parse(r.Header.Get("Location"))
	if loc.Query().Get("msg") != "disconnected" || loc.Query().Get("user") != "bob" {
		t.Errorf("redirect to %s, want msg=disconnected keeping the filter", loc)
	}

	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("held connect: %v", res.err)
		}
		var rep *protocol.Message
		for _, m := range res.msgs {
			if m.Channel == protocol.MetaConnect {
				rep = m
			}
		}
		if rep == nil || rep.Advice == nil || rep.Advice.Reconnect != protocol.ReconnectNone {
			t.Errorf("held connect answered %+v, want advice reconnect none", rep)
		}
	case <-time.After(wait):
		t.Fatal("the held connect was not answered after the disconnect")
	}
	if _, ok, _ := s.srv.Engine().Session(context.Background(), id); ok {
		t.Error("the session still exists")
	}
	// The page says so and no longer lists it.
	d := a.get(loc.RequestURI()).doc(t)
	if !strings.Contains(d.Find(`[data-testid="admin-flash"]`).Text(), "Session ended") {
		t.Errorf("flash %q", d.Find(`[data-testid="admin-flash"]`).Text())
	}
	if n := d.Find(`tr[data-testid="admin-client-row"]`).Length(); n != 0 {
		t.Errorf("%d rows after the disconnect", n)
	}
	// Again: the session is gone.
	r = a.post("/admin/clients/disconnect", url.Values{"id": {id}, "token": {tok}})
	wantRedirect(t, r, "/admin/clients?msg=gone")
}

func TestAdminDisconnectRefusesLocalClients(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	lc, err := s.srv.NewLocalClient("svc")
	if err != nil {
		t.Fatal(err)
	}
	d := a.get("/admin/clients").doc(t)
	if row := d.Find(`tr[data-testid="admin-client-row"]`); row.Length() != 1 || row.Find(`[data-testid="admin-disconnect"]`).Length() != 0 {
		t.Errorf("local client row: %d rows, a disconnect button: %v", row.Length(), row.Find(`[data-testid="admin-disconnect"]`).Length() > 0)
	}
	r := a.post("/admin/clients/disconnect", url.Values{"id": {lc.ID()}, "token": {a.token("/admin/users")}})
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("HTTP %d, want 400", r.StatusCode)
	}
	if _, ok, _ := s.srv.Engine().Session(context.Background(), lc.ID()); !ok {
		t.Error("the local client's session was removed")
	}
}

func TestAdminPostCrossOriginRefused(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	tok := a.token("/admin/users")
	type testCase struct {
		name string
		hdr  map[string]string
	}
	for _, tc := range []testCase{
		{name: "cross-site", hdr: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{name: "same-site other origin", hdr: map[string]string{"Origin": "https://sub.example", "Sec-Fetch-Site": "same-site"}},
		{name: "foreign origin, old browser", hdr: map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(http.MethodPost, "/admin/users/add", url.Values{"name": {"mallory"}, "password": {"pw"}, "token": {tok}}, tc.hdr)
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("HTTP %d, want 403", r.StatusCode)
			}
			if s.users.Exists("mallory") {
				t.Fatal("a cross-origin POST added a user")
			}
		})
	}
}

func TestAdminFormToken(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	other := s.browser().loggedIn("alice") // another login of the same user
	tok := a.token("/admin/users")
	otherTok := other.token("/admin/users")
	if tok == otherTok {
		t.Fatal("two logins share a form token")
	}
	if again := a.token("/admin/channels"); again != tok {
		t.Errorf("the token changed between pages of one login: %q %q", tok, again)
	}
	type testCase struct {
		name, token string
		want        int
	}
	for _, tc := range []testCase{
		{name: "missing", token: "", want: http.StatusForbidden},
		{name: "wrong", token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", want: http.StatusForbidden},
		{name: "another login's", token: otherTok, want: http.StatusForbidden},
		{name: "valid", token: tok, want: http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"name": {"carol"}}
			if tc.token != "" {
				form.Set("token", tc.token)
			}
			r := a.post("/admin/users/grant", form)
			if r.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d", r.StatusCode, tc.want)
			}
			if got := s.admins.IsAdmin("carol"); got != (tc.want == http.StatusSeeOther) {
				t.Errorf("carol admin = %v", got)
			}
		})
	}
	// After logout and a new login the old token is dead.
	a.get("/logout")
	a.loggedIn("alice")
	r := a.post("/admin/users/revoke", url.Values{"name": {"carol"}, "token": {tok}})
	if r.StatusCode != http.StatusForbidden || !s.admins.IsAdmin("carol") {
		t.Errorf("old token after a new login: HTTP %d, carol admin %v", r.StatusCode, s.admins.IsAdmin("carol"))
	}
}

func TestAdminPublish(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	bob, id := bobSession(t, s, "/chat/demo", "/news")
	// A server-side subscriber too.
	got := make(chan *protocol.Message, 4)
	lc, err := s.srv.NewLocalClient("listener")
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Subscribe("/news", func(m *protocol.Message, _ string) { got <- m }); err != nil {
		t.Fatal(err)
	}

	d := a.get("/admin/channels").doc(t)
	form := d.Find(`form[data-testid="admin-publish"]`)
	if form.Length() != 1 || form.Find(`[name="channel"]`).AttrOr("value", "") != "/chat/demo" || form.Find(`textarea[name="text"]`).Length() != 1 {
		t.Fatal("no publish form prefilled with /chat/demo")
	}
	tok := form.Find(`input[name="token"]`).AttrOr("value", "")

	before := time.Now().UTC()
	r := a.post("/admin/channels/publish", url.Values{"channel": {"/chat/demo"}, "text": {"  Maintenance at 5 <b>pm</b>  "}, "token": {tok}})
	wantRedirect(t, r, "/admin/channels?")

	// Bob's next connect carries the chat message, stamped as the chat does.
	var msg *chat.Message
	for _, m := range bob.bayeux(&protocol.Message{Channel: protocol.MetaConnect, ClientID: id,
		ConnectionType: protocol.LongPolling, Advice: &protocol.Advice{Timeout: protocol.Ms(0)}}) {
		if m.Channel == "/chat/demo" {
			msg = new(chat.Message)
			if err := json.Unmarshal(m.Data, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if msg == nil {
		t.Fatal("bob did not receive the announcement")
	}
	if msg.User != "alice (admin)" || msg.Chat != "Maintenance at 5 <b>pm</b>" || len(msg.ID) != 16 {
		t.Errorf("chat message %+v", msg)
	}
	if ts, err := time.Parse(time.RFC3339Nano, msg.Time); err != nil || ts.Before(before.Add(-time.Second)) {
		t.Errorf("time %q: %v", msg.Time, err)
	}
	// It is in the room's history like any chat message.
	hist, err := s.srv.History(context.Background(), "/chat/demo", server.HistoryQuery{Limit: 10})
	if err != nil || len(hist.Messages) != 1 || !bytes.Contains(hist.Messages[0].JSON, []byte(`"alice (admin)"`)) {
		t.Errorf("history %+v, %v", hist.Messages, err)
	}

	// Other channels: JSON as JSON, other text as a JSON string.
	type pubCase struct{ text, want string }
	for _, pc := range []pubCase{
		{text: `{"level": "info", "n": 1}`, want: `{"level": "info", "n": 1}`},
		{text: "hello", want: `"hello"`},
	} {
		r := a.post("/admin/channels/publish", url.Values{"channel": {"/news"}, "text": {pc.text}, "token": {tok}})
		wantRedirect(t, r, "/admin/channels?")
		select {
		case m := <-got:
			if string(m.Data) != pc.want {
				t.Errorf("data %s, want %s", m.Data, pc.want)
			}
		case <-time.After(wait):
			t.Fatalf("the listener got nothing for %q", pc.text)
		}
	}

	// The channels table lists them with their activity.
	d = a.get("/admin/channels").doc(t)
	table := d.Find(`table[data-testid="admin-channels"]`)
	demo := table.Find(`tr[data-channel="/chat/demo"]`)
	if demo.Length() != 1 {
		t.Fatalf("no /chat/demo row in %q", table.Text())
	}
	if got := strings.TrimSpace(demo.Find(`td[data-label="Subscribers"]`).Text()); got != "1" {
		t.Errorf("/chat/demo subscribers %q", got)
	}
	if got := strings.TrimSpace(demo.Find(`td[data-label="Published"]`).Text()); got != "1" {
		t.Errorf("/chat/demo published %q", got)
	}
	if got := strings.TrimSpace(demo.Find(`td[data-label="Last message"]`).Text()); !strings.HasSuffix(got, "ago") {
		t.Errorf("/chat/demo last message %q", got)
	}
	if got := strings.TrimSpace(table.Find(`tr[data-channel="/news"] td[data-label="Subscribers"]`).Text()); got != "2" {
		t.Errorf("/news subscribers %q, want 2", got)
	}

	// Refused: not a channel one may publish to, or no text.
	type badCase struct{ channel, text string }
	for _, bc := range []badCase{
		{"/meta/connect", "x"}, {"/service/echo", "x"}, {"/presence/chat/demo", `{"members":[]}`}, {"/chat", "x"},
		{"/chat/a/b", "x"}, {"/news/*", "x"}, {"news", "x"}, {"", "x"}, {"/news", "   "},
		{"/news", strings.Repeat("x", 2001)},
	} {
		r := a.post("/admin/channels/publish", url.Values{"channel": {bc.channel}, "text": {bc.text}, "token": {tok}})
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("publish %q on %q: HTTP %d, want 400", bc.text, bc.channel, r.StatusCode)
			continue
		}
		if fl := r.doc(t).Find(`[data-testid="admin-flash"]`); !fl.HasClass("error") {
			t.Errorf("publish on %q: no error shown", bc.channel)
		}
	}
	select {
	case m := <-got:
		t.Errorf("a refused publish arrived: %s", m.Data)
	default:
	}
}

func TestAdminUsers(t *testing.T) {
	s := newAdminSite(t)
	a := s.browser().loggedIn("alice")
	usersFile := filepath.Join(s.dir, "users")
	adminsFile := filepath.Join(s.dir, "admins")
	fileLists := func(path, name string) bool {
		t.Helper()
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(b)) {
			if n, _, _ := strings.Cut(strings.TrimSpace(l), ":"); n == name {
				return true
			}
		}
		return false
	}

	// Add a user, and one with admin rights.
	wantRedirect(t, a.adminPost("/admin/users/add", url.Values{"name": {"dave"}, "password": {"dave-pw"}}), "/admin/users?msg=user-added")
	wantRedirect(t, a.adminPost("/admin/users/add", url.Values{"name": {"erin"}, "password": {"erin-pw"}, "admin": {"1"}}), "/admin/users?msg=user-added")
	if !fileLists(usersFile, "dave") || !fileLists(usersFile, "erin") {
		t.Error("the users file does not list dave and erin")
	}
	if fileLists(adminsFile, "dave") || !fileLists(adminsFile, "erin") {
		t.Error("the admins file should list erin only")
	}
	// Refused adds.
	type addCase struct {
		name, password string
		want           int
	}
	for _, ac := range []addCase{
		{"dave", "x", http.StatusConflict},
		{"bad name", "x", http.StatusBadRequest},
		{"", "x", http.StatusBadRequest},
		{"frank", "", http.StatusBadRequest},
		{"frank", strings.Repeat("x", 73), http.StatusBadRequest},
	} {
		r := a.adminPost("/admin/users/add", url.Values{"name": {ac.name}, "password": {ac.password}})
		if r.StatusCode != ac.want {
			t.Errorf("add %q: HTTP %d, want %d", ac.name, r.StatusCode, ac.want)
		}
	}
	if s.users.Exists("frank") {
		t.Error("a refused add created frank")
	}

	// Reset bob's password: the file changes and the new one works.
	old, _ := os.ReadFile(usersFile)
	wantRedirect(t, a.adminPost("/admin/users/password", url.Values{"name": {"bob"}, "password": {"new-bob-pw"}}), "/admin/users?msg=password-set")
	now, _ := os.ReadFile(usersFile)
	if bytes.Equal(old, now) || !s.users.Check("bob", "new-bob-pw") {
		t.Error("bob's password was not changed in the file")
	}
	if r := a.adminPost("/admin/users/password", url.Values{"name": {"nobody"}, "password": {"x"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("password for nobody: HTTP %d", r.StatusCode)
	}

	// Grant carol: she gets in at once, without logging in again.
	carol := s.browser().loggedIn("carol")
	if r := carol.get("/admin/"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("carol before the grant: HTTP %d", r.StatusCode)
	}
	wantRedirect(t, a.adminPost("/admin/users/grant", url.Values{"name": {"carol"}}), "/admin/users?msg=admin-granted")
	if !fileLists(adminsFile, "carol") {
		t.Error("the admins file does not list carol")
	}
	if r := carol.get("/admin/"); r.StatusCode != http.StatusOK {
		t.Errorf("carol after the grant: HTTP %d", r.StatusCode)
	}
	if r := a.adminPost("/admin/users/grant", url.Values{"name": {"nobody"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("grant nobody: HTTP %d", r.StatusCode)
	}

	// The users page shows the roles.
	d := a.get("/admin/users").doc(t)
	role := func(name string) string {
		return strings.TrimSpace(d.Find(`tr[data-user="` + name + `"] td[data-role]`).Text())
	}
	for name, want := range map[string]string{"alice": "admin (BAYEUX_ADMINS)", "carol": "admin", "erin": "admin", "bob": "user", "dave": "user"} {
		if got := role(name); got != want {
			t.Errorf("%s: role %q, want %q", name, got, want)
		}
	}
	self := d.Find(`tr[data-user="alice"]`)
	if self.Find(`[data-testid="admin-user-delete"], [data-testid="admin-user-revoke"]`).Length() != 0 {
		t.Error("alice may delete or revoke herself on the page")
	}
	if d.Find(`tr[data-user="carol"] [data-testid="admin-user-revoke"]`).Length() != 1 ||
		d.Find(`tr[data-user="bob"] [data-testid="admin-user-grant"]`).Length() != 1 {
		t.Error("missing grant/revoke buttons")
	}
	if !strings.Contains(d.Find(`[data-testid="admin-orphans"]`).Text(), "root") {
		t.Error("root (BAYEUX_ADMINS, no account) not shown")
	}
	// The logins: alice's own (this page's) and carol's, each with an
	// end button; carol's row offers to end all her logins.
	mine := d.Find(`tr[data-testid="admin-login-row"][data-user="alice"]`)
	if mine.Length() != 1 || !strings.Contains(mine.Text(), "(this login)") || mine.Find(`[data-testid="admin-login-end"]`).Length() != 1 {
		t.Errorf("alice's login row: %d rows %q", mine.Length(), mine.Text())
	}
	if ip := strings.TrimSpace(mine.Find(`td[data-label="IP"]`).Text()); ip != "127.0.0.1" {
		t.Errorf("alice's login IP %q", ip)
	}
	if d.Find(`tr[data-testid="admin-login-row"][data-user="carol"]`).Length() != 1 ||
		d.Find(`tr[data-user="carol"] [data-testid="admin-user-logout-all"]`).Length() != 1 {
		t.Error("carol's login or her End all logins button is missing")
	}
	if d.Find(`tr[data-user="dave"] [data-testid="admin-user-logout-all"]`).Length() != 0 {
		t.Error("dave, never logged in, has an End all logins button")
	}
	for _, id := range []string{"", "no-such-login"} {
		wantRedirect(t, a.adminPost("/admin/users/logout", url.Values{"name": {"carol"}, "id": {id}}), "/admin/users?msg=login-gone")
	}
	if r := carol.get("/admin/"); r.StatusCode != http.StatusOK {
		t.Errorf("ending no login ended carol's: HTTP %d", r.StatusCode)
	}

	// Revoke carol: she is out at once.
	wantRedirect(t, a.adminPost("/admin/users/revoke", url.Values{"name": {"carol"}}), "/admin/users?msg=admin-revoked")
	if fileLists(adminsFile, "carol") {
		t.Error("the admins file still lists carol")
	}
	if r := carol.get("/admin/"); r.StatusCode != http.StatusForbidden {
		t.Errorf("carol after the revoke: HTTP %d", r.StatusCode)
	}
	// Refused revokes: an admin from the environment, oneself, a non-admin.
	for _, name := range []string{"root", "alice", "bob"} {
		if r := a.adminPost("/admin/users/revoke", url.Values{"name": {name}}); r.StatusCode != http.StatusBadRequest {
			t.Errorf("revoke %s: HTTP %d, want 400", name, r.StatusCode)
		}
	}
	if !s.admins.IsAdmin("root") || !s.admins.IsAdmin("alice") {
		t.Error("an admin from the environment was revoked")
	}

	// Delete erin (an admin with a session): gone from both files, her
	// session ended, her login no longer counts.
	erin := s.browser()
	erinID := erin.handshake(authExt("erin"))
	wantRedirect(t, a.adminPost("/admin/users/delete", url.Values{"name": {"erin"}}), "/admin/users?msg=user-deleted")
	if fileLists(usersFile, "erin") || fileLists(adminsFile, "erin") {
		t.Error("erin is still in a file")
	}
	if _, ok, _ := s.srv.Engine().Session(context.Background(), erinID); ok {
		t.Error("erin's session survived her deletion")
	}
	if r := a.adminPost("/admin/users/delete", url.Values{"name": {"erin"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: HTTP %d", r.StatusCode)
	}
	if r := a.adminPost("/admin/users/delete", url.Values{"name": {"alice"}}); r.StatusCode != http.StatusBadRequest || !s.users.Exists("alice") {
		t.Errorf("self-delete: HTTP %d", r.StatusCode)
	}
	if r := a.adminPost("/admin/users/frobnicate", url.Values{"name": {"bob"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown action: HTTP %d", r.StatusCode)
	}
}

func TestMetricsAndReadyz(t *testing.T) {
	s := newAdminSite(t)
	s.browser().postLogin("alice", "wrong", "")
	bobSession(t, s, "/chat/demo")
	b := s.browser()
	r := b.get("/metrics")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", r.StatusCode)
	}
	body := string(r.body)
	for _, name := range append(admin.MetricNames, "go_goroutines", "go_memstats_alloc_bytes") {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for _, line := range []string{"bayeux_failed_logins_total 1", "bayeux_sessions 1", "bayeux_channels 1"} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	ready := func() int {
		resp, err := http.Get(s.hs.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := ready(); code != http.StatusOK {
		t.Errorf("/readyz: HTTP %d", code)
	}
	s.ready.BeginShutdown()
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during shutdown: HTTP %d", code)
	}
}
