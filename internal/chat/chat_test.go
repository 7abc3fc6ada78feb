package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/chattest"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// wait bounds every wait for something that should happen promptly.
const wait = 5 * time.Second

// testUsers are the users of every test server; each password is the
// name followed by "-pw".
var testUsers = []string{"alice", "bob", "carol", "dave"}

// chatServer is a real Bayeux server with the chat's hooks behind an
// httptest.Server at /cometd.
type chatServer struct {
	t      *testing.T
	srv    *server.Server
	chat   *chat.Chat
	auth   *auth.Authenticator
	logins *auth.Logins
	hs     *httptest.Server
	url    string
}

func newChatServer(t *testing.T, connectTimeout time.Duration) *chatServer {
	t.Helper()
	return newChatServerEngine(t, connectTimeout, server.NewMemoryEngine(server.MemoryEngineOptions{SweepInterval: 50 * time.Millisecond}))
}

func newChatServerEngine(t *testing.T, connectTimeout time.Duration, engine server.Engine) *chatServer {
	t.Helper()
	return newChatServerWith(t, server.Options{ConnectTimeout: connectTimeout, Engine: engine}, nil)
}

// newChatServerWith starts a chat server with opts (the chat's hooks, a
// quiet log and a 2 s poll timeout are set here); setup, when not nil,
// configures the chat before it is attached.
func newChatServerWith(t *testing.T, opts server.Options, setup func(*chat.Chat)) *chatServer {
	t.Helper()
	return startChatServer(t, testutil.WriteUsers(t, "", testUsers...), opts, setup)
}

// newChatServerUsers is newChatServerEngine with the users file at path.
func newChatServerUsers(t *testing.T, connectTimeout time.Duration, engine server.Engine, path string) *chatServer {
	t.Helper()
	return startChatServer(t, path, server.Options{ConnectTimeout: connectTimeout, Engine: engine}, nil)
}

// startChatServer is newChatServerWith with the users file at path.
func startChatServer(t *testing.T, path string, opts server.Options, setup func(*chat.Chat)) *chatServer {
	t.Helper()
	c, a, logins := chattest.New(t, path)
	if setup != nil {
		setup(c)
	}
	srv, hs := chattest.Serve(t, c, opts)
	return &chatServer{t: t, srv: srv, chat: c, auth: a, logins: logins, hs: hs, url: hs.URL + "/cometd"}
}

// client is a Bayeux client over raw HTTP with its own cookie jar (one
// browser).
type client struct {
	t   *testing.T
	cs  *chatServer
	hc  *http.Client
	jar http.CookieJar
	id  string
}

func (cs *chatServer) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		cs.t.Fatal(err)
	}
	return &client{t: cs.t, cs: cs, jar: jar, hc: &http.Client{Jar: jar, Timeout: wait}}
}

var seq atomic.Int64

// post sends msgs and returns the response; it reports errors instead of
// failing the test so that it can run on any goroutine.
func (c *client) post(msgs ...*protocol.Message) ([]*protocol.Message, error) {
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = protocol.ID(strconv.FormatInt(seq.Add(1), 10))
		}
		if m.ClientID == "" && m.Channel != protocol.MetaHandshake {
			m.ClientID = c.id
		}
	}
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Post(c.cs.url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out []*protocol.Message
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("response %s: %v", b, err)
	}
	return out, nil
}

func (c *client) send(msgs ...*protocol.Message) []*protocol.Message {
	c.t.Helper()
	out, err := c.post(msgs...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// reply returns the reply to m in resp (the one with data for services).
func reply(t *testing.T, resp []*protocol.Message, m *protocol.Message) *protocol.Message {
	t.Helper()
	var found *protocol.Message
	for _, r := range resp {
		if r.ID == m.ID && r.Channel == m.Channel && r.Successful != nil {
			if found == nil || r.Data != nil {
				found = r
			}
		}
	}
	if found == nil {
		t.Fatalf("no reply to %s id %s in %s", m.Channel, m.ID, dump(resp))
	}
	return found
}

func dump(msgs []*protocol.Message) string {
	b, _ := json.Marshal(msgs)
	return string(b)
}

func authExt(user, password string) map[string]json.RawMessage {
	b, _ := json.Marshal(map[string]string{"user": user, "password": password})
	return map[string]json.RawMessage{"auth": b}
}

// handshake sends a handshake with ext and returns its reply; on success
// the client keeps the clientId.
func (c *client) handshake(ext map[string]json.RawMessage) *protocol.Message {
	c.t.Helper()
	m := &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
		SupportedConnectionTypes: []string{protocol.LongPolling}, Ext: ext}
	r := reply(c.t, c.send(m), m)
	if r.IsSuccessful() {
		c.id = r.ClientID
	}
	return r
}

// login handshakes as user with the right password.
func (c *client) login(user string) *client {
	c.t.Helper()
	if r := c.handshake(authExt(user, user+"-pw")); !r.IsSuccessful() {
		c.t.Fatalf("handshake as %s failed: %s", user, r.Error)
	}
	return c
}

func (c *client) anonymous() *client {
	c.t.Helper()
	if r := c.handshake(nil); !r.IsSuccessful() {
		c.t.Fatalf("anonymous handshake failed: %s", r.Error)
	}
	return c
}

func (c *client) subscribe(channels ...string) *protocol.Message {
	c.t.Helper()
	m := &protocol.Message{Channel: protocol.MetaSubscribe, Subscription: protocol.Subscription{Channels: channels}}
	return reply(c.t, c.send(m), m)
}

func (c *client) mustSubscribe(channels ...string) {
	c.t.Helper()
	if r := c.subscribe(channels...); !r.IsSuccessful() {
		c.t.Fatalf("subscribe %q: %s", channels, r.Error)
	}
}

func (c *client) unsubscribe(channels ...string) {
	c.t.Helper()
	m := &protocol.Message{Channel: protocol.MetaUnsubscribe, Subscription: protocol.Subscription{Channels: channels}}
	if r := reply(c.t, c.send(m), m); !r.IsSuccessful() {
		c.t.Fatalf("unsubscribe %q: %s", channels, r.Error)
	}
}

func publishMsg(channel string, data any) *protocol.Message {
	b, ok := data.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(data); err != nil {
			panic(err)
		}
	}
	return &protocol.Message{Channel: channel, Data: b}
}

func (c *client) publish(channel string, data any) *protocol.Message {
	c.t.Helper()
	m := publishMsg(channel, data)
	return reply(c.t, c.send(m), m)
}

func (c *client) disconnect() {
	c.t.Helper()
	m := &protocol.Message{Channel: protocol.MetaDisconnect}
	if r := reply(c.t, c.send(m), m); !r.IsSuccessful() {
		c.t.Fatalf("disconnect: %s", r.Error)
	}
}

// connect sends a /meta/connect held at most hold and returns the
// deliveries it brought.
func (c *client) connect(hold time.Duration) []*protocol.Message {
	c.t.Helper()
	m := &protocol.Message{Channel: protocol.MetaConnect, ConnectionType: protocol.LongPolling,
		Advice: &protocol.Advice{Timeout: protocol.Ms(hold.Milliseconds())}}
	resp := c.send(m)
	if r := reply(c.t, resp, m); !r.IsSuccessful() {
		c.t.Fatalf("connect: %s", r.Error)
	}
	var out []*protocol.Message
	for _, d := range resp {
		if d.Successful == nil {
			out = append(out, d)
		}
	}
	return out
}

// collect connects until done says the deliveries so far are enough, or
// fails after wait.
func (c *client) collect(what string, done func([]*protocol.Message) bool) []*protocol.Message {
	c.t.Helper()
	var got []*protocol.Message
	deadline := time.Now().Add(wait)
	for !done(got) {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s; got %s", what, dump(got))
		}
		got = append(got, c.connect(200*time.Millisecond)...)
	}
	return got
}

func (c *client) whoami() string {
	c.t.Helper()
	m := publishMsg("/service/chat/whoami", map[string]any{})
	r := reply(c.t, c.send(m), m)
	var out struct{ User string }
	if !r.IsSuccessful() || json.Unmarshal(r.Data, &out) != nil {
		c.t.Fatalf("whoami: %+v", r)
	}
	return out.User
}

// wantDenied requires r to be refused by a channel rule for reason,
// whichever operation (create, subscribe, publish) refused it.
func wantDenied(t *testing.T, r *protocol.Message, reason string) {
	t.Helper()
	e, err := protocol.ParseError(r.Error)
	if r.IsSuccessful() || err != nil || e.Code != 403 || !slices.Equal(e.Args, []string{reason}) || !strings.HasSuffix(e.Message, "_denied") {
		t.Errorf("%s: successful %v error %q, want a 403 denial for %s", r.Channel, r.IsSuccessful(), r.Error, reason)
	}
}

func wantError(t *testing.T, r *protocol.Message, want string) {
	t.Helper()
	if r.IsSuccessful() || r.Error != want {
		t.Errorf("%s: successful %v error %q, want error %q", r.Channel, r.IsSuccessful(), r.Error, want)
	}
}

func TestAnonymousHandshakeButNoChat(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	anon := cs.client().anonymous()
	if u := anon.whoami(); u != "" {
		t.Errorf("anonymous whoami = %q", u)
	}
	// Channels that do not exist yet are refused at their creation,
	// others at the subscription; the reason is the same.
	type testCase struct {
		name    string
		channel string
		want    string
	}
	for _, tc := range []testCase{
		{name: "default room", channel: "/chat/demo", want: "403:login_required:create_denied"},
		{name: "room wildcard", channel: "/chat/*", want: "403:login_required:create_denied"},
		{name: "deep room wildcard", channel: "/chat/**", want: "403:login_required:create_denied"},
		{name: "members", channel: "/presence/chat/demo", want: "403:login_required:create_denied"},
		{name: "members wildcard", channel: "/presence/chat/**", want: "403:login_required:create_denied"},
		{name: "presence wildcard", channel: "/presence/**", want: "403:login_required:subscribe_denied"},
		{name: "root wildcard", channel: "/**", want: "403:login_required:subscribe_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, anon.subscribe(tc.channel), tc.want)
		})
	}
	t.Run("publish", func(t *testing.T) {
		wantError(t, anon.publish("/chat/demo", map[string]string{"chat": "hi"}), "403:login_required:channel_create_denied")
		alice := cs.client().login("alice")
		alice.mustSubscribe("/chat/demo") // now the room exists
		wantError(t, anon.subscribe("/chat/demo"), "403:login_required:subscribe_denied")
		wantError(t, anon.publish("/chat/demo", map[string]string{"chat": "hi"}), "403:login_required:publish_denied")
	})
	t.Run("other channels stay open", func(t *testing.T) {
		if r := anon.subscribe("/news"); !r.IsSuccessful() {
			t.Errorf("subscribe /news: %s", r.Error)
		}
		if r := anon.publish("/news", map[string]string{"x": "y"}); !r.IsSuccessful() {
			t.Errorf("publish /news: %s", r.Error)
		}
	})
}

// An anonymous session must not read the chat through a wildcard that
// covers /chat/** either.
func TestAnonymousCannotReadChatThroughRootWildcard(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	alice := cs.client().login("alice")
	anon := cs.client().anonymous()
	r := anon.subscribe("/**")
	if r.IsSuccessful() {
		if pr := alice.publish("/chat/demo", map[string]string{"chat": "secret"}); !pr.IsSuccessful() {
			t.Fatalf("publish: %s", pr.Error)
		}
		for _, d := range anon.connect(300 * time.Millisecond) {
			if strings.HasPrefix(d.Channel, "/chat/") || strings.HasPrefix(d.Channel, "/presence/") {
				t.Errorf("an anonymous subscriber of /** received %s %s", d.Channel, d.Data)
			}
		}
	}
}

func TestHandshakeCredentials(t *testing.T) {
	type testCase struct {
		name     string
		ext      map[string]json.RawMessage
		wantErr  string // "" = success
		wantUser string
	}
	for _, tc := range []testCase{
		{name: "right password", ext: authExt("alice", "alice-pw"), wantUser: "alice"},
		{name: "wrong password", ext: authExt("alice", "bob-pw"), wantErr: "403::invalid_credentials"},
		{name: "unknown user", ext: authExt("mallory", "x"), wantErr: "403::invalid_credentials"},
		{name: "invalid user name", ext: authExt("al ice", "x"), wantErr: "403::invalid_credentials"},
		{name: "auth not an object", ext: map[string]json.RawMessage{"auth": json.RawMessage(`"alice:alice-pw"`)}, wantErr: "400::auth_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := newChatServer(t, 10*time.Second)
			c := cs.client()
			r := c.handshake(tc.ext)
			if tc.wantErr != "" {
				if r.IsSuccessful() || r.Error != tc.wantErr {
					t.Fatalf("handshake: successful %v error %q, want %q", r.IsSuccessful(), r.Error, tc.wantErr)
				}
				if r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectNone {
					t.Errorf("advice %+v, want reconnect none", r.Advice)
				}
				if r.ClientID != "" {
					t.Errorf("a refused handshake got clientId %q", r.ClientID)
				}
				if n, _ := cs.srv.Engine().(server.SessionLister).SessionCount(context.Background()); n != 0 {
					t.Errorf("%d sessions after a refused handshake", n)
				}
				return
			}
			if !r.IsSuccessful() {
				t.Fatalf("handshake failed: %s", r.Error)
			}
			if u := c.whoami(); u != tc.wantUser {
				t.Errorf("whoami = %q, want %q", u, tc.wantUser)
			}
			c.mustSubscribe("/chat/demo")
		})
	}
}

func TestHandshakeRateLimited(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	for range 5 {
		wantError(t, cs.client().handshake(authExt("alice", "wrong")), "403::invalid_credentials")
	}
	r := cs.client().handshake(authExt("alice", "alice-pw"))
	wantError(t, r, "403::rate_limited")
	if r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectNone {
		t.Errorf("advice %+v, want reconnect none", r.Advice)
	}
	if n := cs.srv.Stats().Refused.Load(auth.RefusedLoginUserIP); n != 1 {
		t.Errorf("refusals counted as %s: %d, want 1", auth.RefusedLoginUserIP, n)
	}
	cs.client().login("bob") // another user is not affected
}

// TestHandshakeConcurrentGuessesAreCounted is finding 1 of issue 13
// through /cometd: 89 handshakes with a wrong password for alice from one
// address, at once, then one with the right password while they are
// being checked. No more than the limit (5) are checked, and the right
// password, coming after them, is refused like the rest: on the old code
// about half were checked and the right one got in.
func TestHandshakeConcurrentGuessesAreCounted(t *testing.T) {
	// Real-cost hashes (for -race), so that the checks overlap.
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("alice:"+testutil.HashCost(t, "alice-pw", 8)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := newChatServerUsers(t, 10*time.Second, server.NewMemoryEngine(server.MemoryEngineOptions{}), path)
	hs := func(password string) string {
		c := cs.client()
		m := &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
			SupportedConnectionTypes: []string{protocol.LongPolling}, Ext: authExt("alice", password)}
		out, err := c.post(m)
		if err != nil || len(out) == 0 {
			return fmt.Sprint(err)
		}
		if out[0].IsSuccessful() {
			return "ok"
		}
		return out[0].Error
	}
	results := make(chan string, 89)
	var wg sync.WaitGroup
	for range 89 {
		wg.Go(func() { results <- hs("wrong") })
	}
	// The wrong ones are being checked: the right one comes last.
	testutil.Eventually(t, wait, func() bool { return cs.auth.Checked.Load() >= 5 }, "5 passwords being checked")
	last := hs("alice-pw")
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if last != "403::rate_limited" {
		t.Errorf("the right password sent last in the burst: %s, want 403::rate_limited", last)
	}
	if counts["403::invalid_credentials"] > 5 || counts["403::invalid_credentials"]+counts["403::rate_limited"] != 89 {
		t.Errorf("89 concurrent wrong passwords: %v; want at most 5 checked, the rest rate-limited", counts)
	}
	if n := cs.auth.Checked.Load(); n > 5 {
		t.Errorf("%d passwords checked, want at most 5", n)
	}
}

func TestChatMessageIsStamped(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	alice := cs.client().login("alice")
	bob := cs.client().login("bob")
	bob.mustSubscribe("/chat/demo")

	before := time.Now().Add(-time.Second)
	if r := alice.publish("/chat/demo", map[string]any{"user": "mallory", "chat": "  hi \n", "extra": 1}); !r.IsSuccessful() {
		t.Fatalf("publish: %s", r.Error)
	}
	got := bob.collect("alice's message", func(ms []*protocol.Message) bool { return len(ms) > 0 })
	if len(got) != 1 || got[0].Channel != "/chat/demo" {
		t.Fatalf("bob received %s, want one message on /chat/demo", dump(got))
	}
	var data map[string]any
	if err := json.Unmarshal(got[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["user"] != "alice" {
		t.Errorf("user = %v, want alice (the authenticated name)", data["user"])
	}
	if data["chat"] != "hi" {
		t.Errorf("chat = %q, want the trimmed text \"hi\"", data["chat"])
	}
	ts, _ := data["time"].(string)
	when, err := time.Parse(time.RFC3339, ts)
	if err != nil || when.Before(before) || when.After(time.Now().Add(time.Second)) {
		t.Errorf("time = %q (%v), want an RFC 3339 time of now", ts, err)
	}
	if id, _ := data["id"].(string); id == "" {
		t.Errorf("id = %v, want a message id", data["id"])
	}
	for k := range data {
		if k != "user" && k != "chat" && k != "time" && k != "id" {
			t.Errorf("delivered data has the client's field %q: %s", k, got[0].Data)
		}
	}
	// Every message gets its own id.
	alice.publish("/chat/demo", map[string]any{"chat": "again"})
	again := bob.collect("the second message", func(ms []*protocol.Message) bool { return len(ms) > 0 })
	var second chat.Message
	if err := json.Unmarshal(again[0].Data, &second); err != nil {
		t.Fatal(err)
	}
	if second.ID == "" || second.ID == data["id"] {
		t.Errorf("second message id %q, first %q: want distinct ids", second.ID, data["id"])
	}
}

func TestChatPublishRefused(t *testing.T) {
	// bob, an admin, may read every room through a wildcard.
	cs := newChatServerWith(t, server.Options{ConnectTimeout: 10 * time.Second},
		func(c *chat.Chat) { c.IsAdmin = func(u string) bool { return u == "bob" } })
	alice := cs.client().login("alice")
	bob := cs.client().login("bob")
	bob.mustSubscribe("/chat/**", "/presence/chat/**")
	bob.connect(0) // drain the presence messages of bob's own subscription

	type testCase struct {
		name    string
		channel string
		data    json.RawMessage
		want    string
	}
	for _, tc := range []testCase{
		{name: "empty text", channel: "/chat/demo", data: json.RawMessage(`{"chat":""}`), want: "400::chat_invalid"},
		{name: "blank text", channel: "/chat/demo", data: json.RawMessage(`{"chat":" \n\t "}`), want: "400::chat_invalid"},
		{name: "too long", channel: "/chat/demo", data: json.RawMessage(`{"chat":"` + strings.Repeat("a", 2001) + `"}`), want: "400::chat_invalid"},
		{name: "number", channel: "/chat/demo", data: json.RawMessage(`{"chat":5}`), want: "400::chat_invalid"},
		{name: "null", channel: "/chat/demo", data: json.RawMessage(`{"chat":null}`), want: "400::chat_invalid"},
		{name: "object", channel: "/chat/demo", data: json.RawMessage(`{"chat":{"text":"hi"}}`), want: "400::chat_invalid"},
		{name: "no chat field", channel: "/chat/demo", data: json.RawMessage(`{"text":"hi"}`), want: "400::chat_invalid"},
		{name: "data is a string", channel: "/chat/demo", data: json.RawMessage(`"hi"`), want: "400::chat_invalid"},
		{name: "data is an array", channel: "/chat/demo", data: json.RawMessage(`["hi"]`), want: "400::chat_invalid"},
		{name: "nested room", channel: "/chat/a/b", data: json.RawMessage(`{"chat":"hi"}`), want: "403:room_invalid:channel_create_denied"},
		{name: "no room", channel: "/chat", data: json.RawMessage(`{"chat":"hi"}`), want: "403:room_invalid:publish_denied"}, // exists: its rule is on its name
		{name: "long room", channel: "/chat/" + strings.Repeat("r", 65), data: json.RawMessage(`{"chat":"hi"}`), want: "403:room_invalid:channel_create_denied"},
		{name: "members", channel: "/presence/chat/demo", data: json.RawMessage(`{"channel":"/chat/demo","members":["mallory"]}`), want: "403:denied_by_security_policy:publish_denied"},
		{name: "members of another room", channel: "/presence/chat/x", data: json.RawMessage(`{"chat":"hi"}`), want: "403:denied_by_security_policy:publish_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, alice.publish(tc.channel, tc.data), tc.want)
		})
	}
	if got := bob.connect(100 * time.Millisecond); len(got) != 0 {
		t.Errorf("refused publishes were delivered: %s", dump(got))
	}

	t.Run("longest text", func(t *testing.T) {
		text := strings.Repeat("é", 2000) // characters, not bytes
		if r := alice.publish("/chat/demo", map[string]string{"chat": text}); !r.IsSuccessful() {
			t.Fatalf("2000 characters refused: %s", r.Error)
		}
		got := bob.collect("the message", func(ms []*protocol.Message) bool { return len(ms) > 0 })
		var m chat.Message
		if err := json.Unmarshal(got[0].Data, &m); err != nil || m.Chat != text {
			t.Errorf("delivered %d characters (%v)", len([]rune(m.Chat)), err)
		}
	})
}

func TestLoginCookieHandshake(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	cookieFor := func(l *auth.Logins, user string) *http.Cookie {
		w := httptest.NewRecorder()
		if _, err := l.Login(w, httptest.NewRequest(http.MethodPost, "/login", nil), user, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		return w.Result().Cookies()[0]
	}
	// A login that was ended (logged out): its cookie is still signed.
	ended := cookieFor(cs.logins, "alice")
	logout := httptest.NewRequest(http.MethodGet, "/logout", nil)
	logout.AddCookie(ended)
	if _, ok, err := cs.logins.Logout(httptest.NewRecorder(), logout); !ok || err != nil {
		t.Fatalf("Logout: %v %v", ok, err)
	}
	otherLogins, err := auth.NewLogins([][]byte{bytes.Repeat([]byte{8}, 32)}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	good := cookieFor(cs.logins, "alice")
	tampered := *good
	tampered.Value = good.Value[:len(good.Value)-3] + "AAA"

	type testCase struct {
		name     string
		cookie   *http.Cookie
		ext      map[string]json.RawMessage
		wantErr  string
		wantUser string
	}
	for _, tc := range []testCase{
		{name: "login cookie", cookie: good, wantUser: "alice"},
		{name: "cookie of a user not in the users file", cookie: cookieFor(cs.logins, "ghost"), wantUser: ""},
		{name: "tampered cookie", cookie: &tampered, wantUser: ""},
		{name: "cookie of another key", cookie: cookieFor(otherLogins, "alice"), wantUser: ""},
		{name: "cookie of an ended login", cookie: ended, wantUser: ""},
		{name: "ext.auth wins over the cookie", cookie: good, ext: authExt("bob", "bob-pw"), wantUser: "bob"},
		{name: "wrong ext.auth with a cookie fails", cookie: good, ext: authExt("bob", "wrong"), wantErr: "403::invalid_credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cs.client()
			u, _ := url.Parse(cs.hs.URL)
			c.jar.SetCookies(u, []*http.Cookie{tc.cookie})
			r := c.handshake(tc.ext)
			if tc.wantErr != "" {
				wantError(t, r, tc.wantErr)
				return
			}
			if !r.IsSuccessful() {
				t.Fatalf("handshake: %s", r.Error)
			}
			if got := c.whoami(); got != tc.wantUser {
				t.Fatalf("whoami = %q, want %q", got, tc.wantUser)
			}
			sub := c.subscribe("/chat/demo")
			if tc.wantUser == "" {
				wantDenied(t, sub, chat.DeniedLoginRequired)
			} else if !sub.IsSuccessful() {
				t.Errorf("subscribe: %s", sub.Error)
			}
		})
	}
}

// members decodes the member lists delivered on /presence/chat/<room>.
func members(t *testing.T, room string, msgs []*protocol.Message) [][]string {
	t.Helper()
	var lists [][]string
	for _, m := range msgs {
		if m.Channel != chat.PresencePrefix+room {
			continue
		}
		var d struct {
			Channel string   `json:"channel"`
			Members []string `json:"members"`
		}
		if err := json.Unmarshal(m.Data, &d); err != nil || d.Channel != chat.RoomPrefix+room || d.Members == nil {
			t.Fatalf("member list %s: %v (want channel /chat/%s and a members array)", m.Data, err, room)
		}
		lists = append(lists, d.Members)
	}
	return lists
}

// lastIs returns a condition for collect: the last member list is want.
func lastIs(t *testing.T, room string, want ...string) func([]*protocol.Message) bool {
	return func(ms []*protocol.Message) bool {
		lists := members(t, room, ms)
		return len(lists) > 0 && slices.Equal(lists[len(lists)-1], want)
	}
}

func TestPresence(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	dave := cs.client().login("dave")
	dave.mustSubscribe("/presence/chat/demo")
	alice := cs.client().login("alice")
	bob := cs.client().login("bob")
	alice.mustSubscribe("/chat/demo")
	bob.mustSubscribe("/chat/demo")
	got := members(t, "demo", dave.collect("[alice bob]", lastIs(t, "demo", "alice", "bob")))
	if want := [][]string{{"alice"}, {"alice", "bob"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("member lists %q, want %q", got, want)
	}

	// A second session of alice (another tab) changes nothing, nor does
	// its end.
	alice2 := cs.client().login("alice")
	alice2.mustSubscribe("/chat/demo")
	alice2.disconnect()
	// Another room does not show here.
	bob2 := cs.client().login("bob")
	bob2.mustSubscribe("/chat/other")

	bob.disconnect()
	got = members(t, "demo", dave.collect("[alice]", lastIs(t, "demo", "alice")))
	if want := [][]string{{"alice"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after bob's disconnect: member lists %q, want %q", got, want)
	}

	// Unsubscribing leaves the room too; the empty room is announced.
	alice.unsubscribe("/chat/demo")
	got = members(t, "demo", dave.collect("[]", lastIs(t, "demo")))
	if want := [][]string{{}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after alice left: member lists %q, want %q", got, want)
	}
}

func TestPresenceDropsExpiredSession(t *testing.T) {
	const connectTimeout = time.Second
	cs := newChatServer(t, connectTimeout)
	dave := cs.client().login("dave")
	dave.mustSubscribe("/presence/chat/demo")
	alice := cs.client().login("alice")
	alice.mustSubscribe("/chat/demo")
	carol := cs.client().login("carol")
	carol.mustSubscribe("/chat/demo") // and never connects

	var got []*protocol.Message
	start := time.Now()
	deadline := start.Add(connectTimeout + wait)
	for !lastIs(t, "demo", "alice")(got) {
		if time.Now().After(deadline) {
			t.Fatalf("carol's session did not leave the room: %q", members(t, "demo", got))
		}
		alice.connect(0) // alice stays alive
		got = append(got, dave.connect(100*time.Millisecond)...)
	}
	if elapsed := time.Since(start); elapsed < connectTimeout/2 {
		t.Errorf("carol left after %v, before her session could expire", elapsed)
	}
	lists := members(t, "demo", got)
	if want := [][]string{{"alice"}, {"alice", "carol"}, {"alice"}}; !slices.EqualFunc(lists, want, slices.Equal) {
		t.Errorf("member lists %q, want %q", lists, want)
	}
}

func TestPresenceConcurrentSubscribes(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	dave := cs.client().login("dave")
	dave.mustSubscribe("/presence/chat/demo")
	var clients []*client
	for _, u := range []string{"alice", "bob", "carol"} {
		for range 3 {
			clients = append(clients, cs.client().login(u))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for _, c := range clients {
		wg.Go(func() {
			resp, err := c.post(&protocol.Message{Channel: protocol.MetaSubscribe,
				Subscription: protocol.Subscription{Channels: []string{"/chat/demo"}}})
			if err == nil && (len(resp) != 1 || !resp[0].IsSuccessful()) {
				err = fmt.Errorf("subscribe: %s", dump(resp))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every change is published; the last list must be the final state.
	got := dave.collect("[alice bob carol]", lastIs(t, "demo", "alice", "bob", "carol"))
	got = append(got, dave.connect(200*time.Millisecond)...)
	lists := members(t, "demo", got)
	if last := lists[len(lists)-1]; !slices.Equal(last, []string{"alice", "bob", "carol"}) {
		t.Errorf("last member list %q after all subscribed (all lists %q)", last, lists)
	}
}

// gatedEngine can hold one Subscribers call after it has read its
// result, as a slow (remote) engine would, to order concurrent presence
// updates deterministically.
type gatedEngine struct {
	*server.MemoryEngine
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when the armed call has its result
	release chan struct{} // the armed call returns when this is closed
}

func (e *gatedEngine) arm() {
	e.mu.Lock()
	e.armed, e.held, e.release = true, make(chan struct{}), make(chan struct{})
	e.mu.Unlock()
}

func (e *gatedEngine) Subscribers(ctx context.Context, channel string) ([]*server.SessionInfo, error) {
	infos, err := e.MemoryEngine.Subscribers(ctx, channel)
	e.mu.Lock()
	armed := e.armed
	e.armed = false
	held, release := e.held, e.release
	e.mu.Unlock()
	if armed {
		close(held)
		<-release
	}
	return infos, err
}

// Two members join at about the same time; the update for the first one
// computes its list before the second joined but publishes after the
// update for the second. The last list published must still be the
// room's real membership.
func TestPresenceUpdatesDoNotGoStale(t *testing.T) {
	engine := &gatedEngine{MemoryEngine: server.NewMemoryEngine(server.MemoryEngineOptions{SweepInterval: 50 * time.Millisecond})}
	cs := newChatServerEngine(t, 10*time.Second, engine)
	dave := cs.client().login("dave")
	dave.mustSubscribe("/presence/chat/demo")
	alice := cs.client().login("alice")
	bob := cs.client().login("bob")

	subscribe := func(c *client) <-chan error {
		done := make(chan error, 1)
		go func() {
			resp, err := c.post(&protocol.Message{Channel: protocol.MetaSubscribe,
				Subscription: protocol.Subscription{Channels: []string{"/chat/demo"}}})
			if err == nil && (len(resp) != 1 || !resp[0].IsSuccessful()) {
				err = fmt.Errorf("subscribe: %s", dump(resp))
			}
			done <- err
		}()
		return done
	}
	engine.arm()
	aliceDone := subscribe(alice)
	select {
	case <-engine.held: // alice's update read [alice] and waits
	case <-time.After(wait):
		close(engine.release)
		t.Fatal("alice's presence update never looked up the members")
	}
	// bob joins and his update publishes [alice bob] (or, if updates are
	// serialized, waits for alice's).
	bobDone := subscribe(bob)
	select {
	case err := <-bobDone:
		bobDone = nil
		if err != nil {
			t.Error(err)
		}
	case <-time.After(300 * time.Millisecond):
	}
	close(engine.release) // alice's update goes on with [alice]
	for _, done := range []<-chan error{aliceDone, bobDone} {
		if done == nil {
			continue
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(wait):
			t.Fatal("a subscribe did not return")
		}
	}
	got := members(t, "demo", dave.collect("two lists", func(ms []*protocol.Message) bool { return len(members(t, "demo", ms)) >= 2 }))
	got = append(got, members(t, "demo", dave.connect(200*time.Millisecond))...)
	if last := got[len(got)-1]; !slices.Equal(last, []string{"alice", "bob"}) {
		t.Errorf("member lists %q: the last says %q while alice and bob are both in the room", got, last)
	}
}

// history reads a room's newest messages with /service/history.
func (c *client) history(room string, limit int) []chat.Message {
	c.t.Helper()
	m := publishMsg("/service/history", map[string]any{"channel": "/chat/" + room, "limit": limit})
	r := reply(c.t, c.send(m), m)
	if !r.IsSuccessful() {
		c.t.Fatalf("history of %s: %s", room, r.Error)
	}
	var h struct {
		Channel  string
		Messages []struct {
			Channel string       `json:"channel"`
			Data    chat.Message `json:"data"`
		}
	}
	if err := json.Unmarshal(r.Data, &h); err != nil || h.Channel != "/chat/"+room {
		c.t.Fatalf("history data %s: %v", r.Data, err)
	}
	out := make([]chat.Message, len(h.Messages))
	for i, d := range h.Messages {
		out[i] = d.Data
	}
	return out
}

// TestHistory: a room keeps the messages of the chat's channel rules,
// as the chat stamped them, and only logged-in users may read them.
func TestHistory(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	alice := cs.client().login("alice")
	alice.mustSubscribe("/chat/demo")
	batch := make([]*protocol.Message, 60)
	for i := range batch {
		batch[i] = publishMsg("/chat/demo", map[string]string{"chat": fmt.Sprintf("msg %d", i)})
	}
	resp := alice.send(batch...) // one request carries all 60
	for _, m := range batch {
		if r := reply(t, resp, m); !r.IsSuccessful() {
			t.Fatalf("publish: %s", r.Error)
		}
	}
	// A refused message is not kept.
	wantError(t, alice.publish("/chat/demo", map[string]string{"chat": ""}), "400::chat_invalid")

	bob := cs.client().login("bob")
	h := bob.history("demo", 50)
	if len(h) != 50 {
		t.Fatalf("%d messages, want the last 50", len(h))
	}
	for i, msg := range h {
		if want := fmt.Sprintf("msg %d", i+10); msg.Chat != want || msg.User != "alice" || msg.ID == "" || msg.Time == "" {
			t.Fatalf("message %d = %+v, want %q by alice with id and time", i, msg, want)
		}
	}
	if h := bob.history("quiet", 50); len(h) != 0 {
		t.Errorf("an empty room has %+v", h)
	}
	t.Run("anonymous", func(t *testing.T) {
		anon := cs.client().anonymous()
		m := publishMsg("/service/history", map[string]string{"channel": "/chat/demo"})
		wantError(t, reply(t, anon.send(m), m), "403:login_required:subscribe_denied")
	})
	t.Run("members", func(t *testing.T) {
		m := publishMsg("/service/presence", map[string]string{"channel": "/chat/demo"})
		r := reply(t, bob.send(m), m)
		var p struct{ Members []string }
		if !r.IsSuccessful() || json.Unmarshal(r.Data, &p) != nil || !slices.Equal(p.Members, []string{"alice"}) {
			t.Errorf("presence: %s", dump([]*protocol.Message{r}))
		}
		anon := cs.client().anonymous()
		m = publishMsg("/service/presence", map[string]string{"channel": "/chat/demo"})
		wantError(t, reply(t, anon.send(m), m), "403:login_required:subscribe_denied")
	})
}

func TestHistoryKeepsServerPublishesAndRooms(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	alice := cs.client().login("alice")
	alice.publish("/chat/one", map[string]string{"chat": "in one"})
	alice.publish("/chat/two", map[string]string{"chat": "in two"})
	if _, err := cs.srv.Publish(context.Background(), "/chat/two", chat.Message{User: "server", Chat: "from the server"}); err != nil {
		t.Fatal(err)
	}
	if h := alice.history("one", 10); len(h) != 1 || h[0].Chat != "in one" {
		t.Errorf("history of one = %+v", h)
	}
	if h := alice.history("two", 10); len(h) != 2 || h[0].Chat != "in two" || h[1].Chat != "from the server" {
		t.Errorf("history of two = %+v", h)
	}
}

func TestRoomOf(t *testing.T) {
	type testCase struct {
		channel, want string
	}
	for _, tc := range []testCase{
		{channel: "/chat/demo", want: "demo"},
		{channel: "/chat/a-b_c.d", want: "a-b_c.d"},
		{channel: "/chat/" + strings.Repeat("r", 64), want: strings.Repeat("r", 64)},
		{channel: "/chat/" + strings.Repeat("r", 65), want: ""},
		{channel: "/chat/a/b", want: ""},
		{channel: "/chat/*", want: ""},
		{channel: "/chat/**", want: ""},
		{channel: "/chat/", want: ""},
		{channel: "/chat", want: ""},
		{channel: "/presence/chat/demo", want: ""},
		{channel: "/chatroom/demo", want: ""},
	} {
		if got := chat.RoomOf(tc.channel); got != tc.want {
			t.Errorf("RoomOf(%q) = %q, want %q", tc.channel, got, tc.want)
		}
	}
}
