package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/protocol"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// form posts message= parameters, form-encoded.
func (c *rawClient) form(values ...string) result {
	body := url.Values{"message": values}.Encode()
	return c.do(http.MethodPost, c.url, "application/x-www-form-urlencoded", []byte(body), nil)
}

// jsonp sends msgs over callback-polling and unwraps the callback.
func (c *rawClient) jsonp(callback string, msgs ...*protocol.Message) (result, []*protocol.Message) {
	c.t.Helper()
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = nextMsgID()
		}
	}
	q := url.Values{"message": {mustJSON(c.t, msgs)}}
	if callback != "" {
		q.Set("jsonp", callback)
	}
	r := c.do(http.MethodGet, c.url+"/connect?"+q.Encode(), "", nil, nil)
	r.req = msgs
	return r, c.unwrapJSONP(r, callback)
}

func (c *rawClient) unwrapJSONP(r result, callback string) []*protocol.Message {
	c.t.Helper()
	if r.err != nil || r.status != http.StatusOK {
		c.t.Fatalf("JSONP request: %v", r)
	}
	if callback == "" {
		callback = "jsonpcallback"
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		c.t.Errorf("JSONP Content-Type = %q", ct)
	}
	body := string(r.body)
	prefix := "/**/" + callback + "("
	if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, ");") {
		c.t.Fatalf("JSONP body %q is not %s[...]);", body, prefix)
	}
	inner := body[len(prefix) : len(body)-2]
	var msgs []*protocol.Message
	if err := json.Unmarshal([]byte(inner), &msgs); err != nil {
		c.t.Fatalf("JSONP payload %q: %v", inner, err)
	}
	checkInvariants(c.t, r.req, msgs, []byte(inner))
	return msgs
}

func TestFormEncodedPost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	r := c.form(mustJSON(t, handshakeMsg()))
	m := only(t, c.checkOK(r), protocol.MetaHandshake)
	if !m.IsSuccessful() {
		t.Fatalf("form handshake: %s", r.body)
	}
	c.id = m.ClientID
	// Several message parameters, one an array and one an object, are
	// processed in order.
	sub := subscribeMsg(c.id, "/form")
	sub.ID = "f1"
	pub := publishMsg(c.id, "/form", "via form")
	pub.ID = "f2"
	conn := connectMsg(c.id, &protocol.Advice{Timeout: protocol.Ms(0)})
	conn.ID = "f3"
	r = c.form(mustJSON(t, []*protocol.Message{sub}), mustJSON(t, pub), mustJSON(t, []*protocol.Message{conn}))
	msgs := c.checkOK(r)
	if len(msgs) != 4 {
		t.Fatalf("want delivery and 3 replies: %s", r.body)
	}
	if msgs[0].Channel != "/form" || string(msgs[0].Data) != `"via form"` || msgs[1].ID != "f1" || msgs[2].ID != "f2" || msgs[3].ID != "f3" {
		t.Errorf("replies out of order: %s", r.body)
	}
	for _, m := range msgs[1:] {
		if !m.IsSuccessful() {
			t.Errorf("%s failed: %s", m.Channel, r.body)
		}
	}
}

// A JSON body labelled as a form (curl -d does that) is still JSON.
func TestJSONLabelledAsForm(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	for _, body := range []string{mustJSON(t, []*protocol.Message{handshakeMsg()}), "  " + mustJSON(t, handshakeMsg())} {
		r := c.do(http.MethodPost, c.url, "application/x-www-form-urlencoded", []byte(body), nil)
		if m := only(t, c.checkOK(r), protocol.MetaHandshake); !m.IsSuccessful() {
			t.Errorf("handshake: %s", r.body)
		}
	}
	// Any other content type, or none, is read as JSON.
	for _, ct := range []string{"text/plain", ""} {
		r := c.do(http.MethodPost, c.url, ct, []byte(mustJSON(t, []*protocol.Message{handshakeMsg()})), nil)
		if m := only(t, c.checkOK(r), protocol.MetaHandshake); !m.IsSuccessful() {
			t.Errorf("Content-Type %q: %s", ct, r.body)
		}
	}
}

func TestJSONP(t *testing.T) {
	t.Parallel()
	var transport atomic.Value
	h := newHarness(t, Options{Services: map[string]ServiceFunc{"t": func(_ context.Context, c *Client, _ *protocol.Message) ([]*protocol.Message, error) {
		transport.Store(c.Transport())
		return nil, nil
	}}})
	c := h.client()
	hs := handshakeMsg()
	hs.SupportedConnectionTypes = []string{protocol.CallbackPolling}
	_, msgs := c.jsonp("$cb_1", hs)
	m := only(t, msgs, protocol.MetaHandshake)
	if !m.IsSuccessful() {
		t.Fatalf("JSONP handshake: %s", dump(msgs))
	}
	c.id = m.ClientID
	conn := connectMsg(c.id, &protocol.Advice{Timeout: protocol.Ms(0)})
	conn.ConnectionType = protocol.CallbackPolling
	if _, msgs = c.jsonp("cb", conn); !replyTo(t, msgs, protocol.MetaConnect).IsSuccessful() {
		t.Errorf("JSONP connect: %s", dump(msgs))
	}
	if _, msgs = c.jsonp("", subscribeMsg(c.id, "/jp")); !replyTo(t, msgs, protocol.MetaSubscribe).IsSuccessful() {
		t.Errorf("JSONP subscribe with the default callback: %s", dump(msgs))
	}
	if _, msgs = c.jsonp("cb", publishMsg(c.id, "/jp", "<script>")); !replyTo(t, msgs, "/jp").IsSuccessful() {
		t.Errorf("JSONP publish: %s", dump(msgs))
	}
	if _, msgs = c.jsonp("cb", publishMsg(c.id, "/service/t", 1)); !replyTo(t, msgs, "/service/t").IsSuccessful() {
		t.Errorf("JSONP service: %s", dump(msgs))
	}
	if got, _ := transport.Load().(string); got != protocol.CallbackPolling {
		t.Errorf("Client.Transport() = %q, want callback-polling", got)
	}
	if got := dataOf(t, c.connectNow(), "/jp"); len(got) != 1 || got[0] != "<script>" {
		t.Errorf("delivered %v", got)
	}

	// Invalid callbacks are refused.
	q := url.Values{"message": {mustJSON(t, []*protocol.Message{handshakeMsg()})}}
	// Only plain identifiers: no member access (opener.x), no dashes, no
	// leading digit.
	for _, cb := range [][]string{{"a(b)"}, {"alert(1);x"}, {"a b"}, {strings.Repeat("a", 65)}, {"a", "b"}, {""},
		{"opener.x"}, {"cb.x"}, {"a-b"}, {"1a"}, {"a[0]"}} {
		q["jsonp"] = cb
		r := c.do(http.MethodGet, c.url+"?"+q.Encode(), "", nil, nil)
		if r.status != http.StatusBadRequest {
			t.Errorf("jsonp=%q: HTTP %d, want 400: %s", cb, r.status, r.body)
		}
		if strings.Contains(string(r.body), cb[0]+"(") && cb[0] != "" {
			t.Errorf("invalid callback reflected: %s", r.body)
		}
	}
}

// Callback-polling is a script any page may load with the user's
// cookies: the server refuses it when the browser says another site asked
// for it, and never shows Authorize its cookies, so no hook can log a
// JSONP client in by cookie.
func TestJSONPCrossSiteAndCookies(t *testing.T) {
	t.Parallel()
	var seen sync.Map // transport -> Cookie header Authorize saw at handshake
	h := newHarness(t, Options{Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
		if m.Channel == protocol.MetaHandshake {
			seen.Store(c.Transport(), c.Request().Header.Get("Cookie")+"|"+c.Request().Header.Get("Authorization"))
		}
		return nil
	}})
	c := h.noCookies()
	hs := handshakeMsg()
	hs.SupportedConnectionTypes = []string{protocol.CallbackPolling}
	q := url.Values{"jsonp": {"cb"}, "message": {mustJSON(t, []*protocol.Message{hs})}}
	type testCase struct {
		site   string
		status int
	}
	refused := 0
	for _, tc := range []testCase{
		{"cross-site", http.StatusForbidden},
		{"same-site", http.StatusForbidden},
		{"something-new", http.StatusForbidden},
		{"", http.StatusOK},
		{"same-origin", http.StatusOK},
		{"none", http.StatusOK},
	} {
		hdr := http.Header{"Cookie": {"bayeux_login=secret"}, "Authorization": {"Basic YTpi"}}
		if tc.site != "" {
			hdr.Set("Sec-Fetch-Site", tc.site)
		}
		seen.Delete(protocol.CallbackPolling)
		r := c.do(http.MethodGet, c.url+"?"+q.Encode(), "", nil, hdr)
		if r.status != tc.status {
			t.Errorf("Sec-Fetch-Site %q: %v, want HTTP %d", tc.site, r, tc.status)
			continue
		}
		if tc.status != http.StatusOK {
			refused++
			if _, ran := seen.Load(protocol.CallbackPolling); ran {
				t.Errorf("Sec-Fetch-Site %q: refused, but the handshake ran", tc.site)
			}
			continue
		}
		if got, _ := seen.Load(protocol.CallbackPolling); got != "|" {
			t.Errorf("Sec-Fetch-Site %q: Authorize saw credentials %q over callback-polling", tc.site, got)
		}
	}
	if n := h.srv.Stats().Refused.Load(RefusedJSONPSite); n != int64(refused) {
		t.Errorf("refused %s: %d, want %d", RefusedJSONPSite, n, refused)
	}
	// Long-polling (which browsers send with Origin, checked by CORS)
	// still shows the cookies.
	r := c.do(http.MethodPost, c.url, "application/json", []byte(mustJSON(t, []*protocol.Message{handshakeMsg()})),
		http.Header{"Cookie": {"bayeux_login=secret"}})
	if r.status != http.StatusOK {
		t.Fatalf("long-polling handshake: %v", r)
	}
	if got, _ := seen.Load(protocol.LongPolling); got != "bayeux_login=secret|" {
		t.Errorf("long-polling: Authorize saw %q, want the cookie", got)
	}
}

// A JSONP request of a session with a held connect releases that connect,
// because the browser runs scripts in order.
func TestJSONPReleasesHeldConnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 5 * time.Second})
	c := h.client().start()
	conn := connectMsg(c.id, nil)
	conn.ConnectionType = protocol.CallbackPolling
	conn.ID = nextMsgID()
	q := url.Values{"jsonp": {"cb"}, "message": {mustJSON(t, []*protocol.Message{conn})}}
	held := make(chan result, 1)
	go func() { held <- c.do(http.MethodGet, c.url+"?"+q.Encode(), "", nil, nil) }()
	h.waitHeld(1)
	if _, msgs := c.jsonp("cb", subscribeMsg(c.id, "/j")); !replyTo(t, msgs, protocol.MetaSubscribe).IsSuccessful() {
		t.Fatalf("subscribe: %s", dump(msgs))
	}
	select {
	case r := <-held:
		r.req = []*protocol.Message{conn}
		msgs := c.unwrapJSONP(r, "cb")
		if !replyTo(t, msgs, protocol.MetaConnect).IsSuccessful() {
			t.Errorf("released connect: %s", r.body)
		}
	case <-time.After(time.Second):
		t.Fatal("held JSONP connect was not released by the next JSONP request")
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxBatch: 3})
	c := h.client()
	hs := mustJSON(t, []*protocol.Message{handshakeMsg()})
	four := mustJSON(t, []*protocol.Message{handshakeMsg(), handshakeMsg(), handshakeMsg(), handshakeMsg()})
	type testCase struct {
		name   string
		method string
		target string
		ctype  string
		body   string
		status int
	}
	tests := []testCase{
		{"GET without message", http.MethodGet, "", "", "", 400},
		{"GET with jsonp only", http.MethodGet, "?jsonp=cb", "", "", 400},
		{"GET with invalid JSON", http.MethodGet, "?message=%5B%7B", "", "", 400},
		{"GET with invalid query", http.MethodGet, "?message=%zz", "", "", 400},
		{"invalid JSON", http.MethodPost, "", "application/json", `[{"channel":`, 400},
		{"empty array", http.MethodPost, "", "application/json", `[]`, 400},
		{"null element", http.MethodPost, "", "application/json", `[null]`, 400},
		{"empty body", http.MethodPost, "", "application/json", ``, 400},
		{"number", http.MethodPost, "", "application/json", `42`, 400},
		{"form without message", http.MethodPost, "", "application/x-www-form-urlencoded", `foo=bar`, 400},
		{"form with empty array", http.MethodPost, "", "application/x-www-form-urlencoded", `message=%5B%5D`, 400},
		{"batch over MaxBatch", http.MethodPost, "", "application/json", four, 400},
		{"PUT", http.MethodPut, "", "application/json", hs, 405},
		{"DELETE", http.MethodDelete, "", "", "", 405},
		{"PATCH", http.MethodPatch, "", "application/json", hs, 405},
	}
	for _, tc := range tests {
		r := c.do(tc.method, c.url+tc.target, tc.ctype, []byte(tc.body), nil)
		if r.err != nil || r.status != tc.status {
			t.Errorf("%s: %v, want HTTP %d", tc.name, r, tc.status)
		}
		if tc.status == 405 && !strings.Contains(r.header.Get("Allow"), "POST") {
			t.Errorf("%s: Allow = %q", tc.name, r.header.Get("Allow"))
		}
	}
	if n := h.sessionCount(); n != 0 {
		t.Errorf("bad requests created %d sessions", n)
	}
	// MaxBatch itself is fine (the handshake batch is refused by Bayeux,
	// not by HTTP).
	three := mustJSON(t, []*protocol.Message{publishMsg("", "/a", 1), publishMsg("", "/a", 1), publishMsg("", "/a", 1)})
	if r := c.do(http.MethodPost, c.url, "application/json", []byte(three), nil); r.status != 200 {
		t.Errorf("batch of MaxBatch: %v", r)
	}
}

func TestMaxMessageSize(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxMessageSize: 1024})
	a := h.client().start()
	big := strings.Repeat("x", 2000)
	body := mustJSON(t, []*protocol.Message{publishMsg(a.id, "/big", big)})
	r := a.do(http.MethodPost, a.url, "application/json", []byte(body), nil)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %v, want 413", r)
	}
	q := url.Values{"jsonp": {"cb"}, "message": {body}}
	r = a.do(http.MethodGet, a.url+"?"+q.Encode(), "", nil, nil)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("large JSONP query: %v, want 413", r)
	}
	// The server is still fine.
	h.client().handshake()
	a.publish("/big", "small")
}

func TestClientMaxConnections(t *testing.T) {
	t.Parallel()
	t.Run("limited", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Options{ClientMaxConnections: 1})
		a := h.client().start()
		a.subscribe("/cmc")
		held := a.connectAsync()
		h.waitHeld(1)
		b := h.client()
		r := b.send(handshakeMsg())
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("second concurrent request: %v, want 429", r)
		}
		if r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		if n := h.srv.Stats().Refused.Load(RefusedIPRequests); n != 1 {
			t.Errorf("refused for ip_requests: %d, want 1", n)
		}
		if _, err := h.srv.Publish(context.Background(), "/cmc", 1); err != nil {
			t.Fatal(err)
		}
		a.wait(held, time.Second)
		// The slot is free again once the connect returned.
		testutil.Eventually(t, hWait, func() bool { return b.send(handshakeMsg()).status == http.StatusOK }, "a free slot")
	})
	t.Run("unlimited", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Options{ClientMaxConnections: 0, MaxSessionsPerBrowser: -1})
		var held []<-chan result
		for range 4 {
			c := h.client().start()
			held = append(held, c.connectAsync())
		}
		h.waitHeld(4)
		h.client().handshake()
		if n := h.srv.Stats().RequestsDenied.Load(); n != 0 {
			t.Errorf("%d requests denied", n)
		}
	})
}

func TestHandlerPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	base := h.hs.URL
	hs := []byte(mustJSON(t, []*protocol.Message{handshakeMsg()}))
	for _, p := range []string{"/cometd", "/cometd/", "/cometd/handshake", "/cometd/meta/handshake"} {
		r := c.do(http.MethodPost, base+p, "application/json", hs, nil)
		if r.status != http.StatusOK {
			t.Errorf("POST %s: %v", p, r)
			continue
		}
		if m := only(t, c.checkOK(r), protocol.MetaHandshake); !m.IsSuccessful() {
			t.Errorf("POST %s: %s", p, r.body)
		}
	}
	for _, p := range []string{"/other", "/", "/cometdx", "/comet", "/x/cometd"} {
		if r := c.do(http.MethodPost, base+p, "application/json", hs, nil); r.status != http.StatusNotFound {
			t.Errorf("POST %s: %v, want 404", p, r)
		}
	}
	// Responses are not cacheable.
	r := c.do(http.MethodPost, base+"/cometd/handshake", "application/json", hs, nil)
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-cache") {
		t.Errorf("Cache-Control = %q", cc)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{AllowedOrigins: []string{"https://app.example"}})
	c := h.client()
	hs := []byte(mustJSON(t, []*protocol.Message{handshakeMsg()}))
	self := "http://" + h.hs.Listener.Addr().String()
	type testCase struct {
		name      string
		method    string
		origin    string
		reqHdrs   string
		status    int
		allowOrig string // expected Access-Control-Allow-Origin
	}
	tests := []testCase{
		{"no origin", http.MethodPost, "", "", 200, ""},
		{"same origin", http.MethodPost, self, "", 200, ""},
		{"allowed origin", http.MethodPost, "https://app.example", "", 200, "https://app.example"},
		{"disallowed origin", http.MethodPost, "https://evil.example", "", 403, ""},
		{"allowed origin, other scheme", http.MethodPost, "http://app.example", "", 403, ""},
		{"null origin", http.MethodPost, "null", "", 403, ""},
		{"preflight allowed", http.MethodOptions, "https://app.example", "content-type,x-custom", 204, "https://app.example"},
		{"preflight disallowed", http.MethodOptions, "https://evil.example", "content-type", 403, ""},
		{"GET disallowed", http.MethodGet, "https://evil.example", "", 403, ""},
	}
	for _, tc := range tests {
		hdr := http.Header{}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		if tc.method == http.MethodOptions {
			hdr.Set("Access-Control-Request-Method", "POST")
			hdr.Set("Access-Control-Request-Headers", tc.reqHdrs)
		}
		target := c.url
		var body []byte
		if tc.method == http.MethodPost {
			body = hs
		} else if tc.method == http.MethodGet {
			target += "?message=" + url.QueryEscape(string(hs))
		}
		r := c.do(tc.method, target, "application/json", body, hdr)
		if r.err != nil || r.status != tc.status {
			t.Errorf("%s: %v, want HTTP %d", tc.name, r, tc.status)
			continue
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != tc.allowOrig {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", tc.name, got, tc.allowOrig)
		}
		if tc.allowOrig != "" {
			if r.header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("%s: no Access-Control-Allow-Credentials", tc.name)
			}
			if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
				t.Errorf("%s: no Vary: Origin", tc.name)
			}
		}
		if tc.method == http.MethodOptions && tc.status == 204 {
			if m := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "GET") {
				t.Errorf("%s: Access-Control-Allow-Methods = %q", tc.name, m)
			}
			if got := r.header.Get("Access-Control-Allow-Headers"); got != tc.reqHdrs {
				t.Errorf("%s: Access-Control-Allow-Headers = %q", tc.name, got)
			}
		}
		if tc.status == 200 {
			if m := only(t, c.checkOK(r), protocol.MetaHandshake); !m.IsSuccessful() {
				t.Errorf("%s: %s", tc.name, r.body)
			}
		}
	}
	// Every 403 above is counted as an origin refusal (for /metrics).
	if n := h.srv.Stats().Refused.Load(RefusedOrigin); n != 5 {
		t.Errorf("refused for origin: %d, want 5", n)
	}

}

// "*" in AllowedOrigins allows any origin, but never with credentials:
// only origins listed by name get Access-Control-Allow-Credentials, and
// the others' requests reach Authorize without cookies.
func TestCORSStarWithoutCredentials(t *testing.T) {
	t.Parallel()
	var cookies sync.Map // Origin header -> Cookie header Authorize saw
	h := newHarness(t, Options{AllowedOrigins: []string{"*", "https://app.example:443"},
		Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake {
				cookies.Store(c.Request().Header.Get("Origin"), c.Request().Header.Get("Cookie"))
			}
			return nil
		}})
	c := h.client()
	hs := []byte(mustJSON(t, []*protocol.Message{handshakeMsg()}))
	type testCase struct {
		name      string
		method    string
		origin    string
		allowOrig string
		creds     bool
	}
	for _, tc := range []testCase{
		{"any origin", http.MethodPost, "https://any.example", "*", false},
		{"any origin, preflight", http.MethodOptions, "https://any.example", "*", false},
		{"listed origin", http.MethodPost, "https://app.example", "https://app.example", true},
		{"listed origin with default port", http.MethodPost, "https://app.example:443", "https://app.example:443", true},
		{"listed origin, preflight", http.MethodOptions, "https://app.example", "https://app.example", true},
		{"listed host, other scheme", http.MethodPost, "http://app.example", "*", false},
		{"listed host, other port", http.MethodPost, "https://app.example:8443", "*", false},
	} {
		hdr := http.Header{"Origin": {tc.origin}, "Cookie": {"bayeux_login=secret"}}
		var body []byte
		if tc.method == http.MethodPost {
			body = hs
		} else {
			hdr.Set("Access-Control-Request-Method", "POST")
		}
		r := c.do(tc.method, c.url, "application/json", body, hdr)
		if r.err != nil || r.status >= 300 {
			t.Errorf("%s: %v", tc.name, r)
			continue
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != tc.allowOrig {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", tc.name, got, tc.allowOrig)
		}
		if got := r.header.Get("Access-Control-Allow-Credentials"); (got == "true") != tc.creds {
			t.Errorf("%s: Access-Control-Allow-Credentials = %q, want credentials %v", tc.name, got, tc.creds)
		}
		if tc.method != http.MethodPost {
			continue
		}
		seen, _ := cookies.Load(tc.origin)
		if hasLogin := strings.Contains(fmt.Sprint(seen), "bayeux_login"); hasLogin != tc.creds {
			t.Errorf("%s: Authorize saw Cookie %q, want cookies %v", tc.name, seen, tc.creds)
		}
	}
}

// An AllowedOrigins entry that is not an origin is a configuration error.
func TestAllowedOriginsInvalid(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"app.example", "https://app.example/path", "null"} {
		if _, err := New(Options{AllowedOrigins: []string{o}}); err == nil {
			t.Errorf("New with AllowedOrigins %q: no error", o)
		}
	}
}

// A JSONP request naming someone else's clientId must not release that
// session's held connect: only the session's own browser may.
func TestJSONPForeignClientIDDoesNotReleaseHeldConnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 3 * time.Second})
	a := h.client().start()
	held := a.connectAsync()
	h.waitHeld(1)
	thief := h.noCookies()
	_, msgs := thief.jsonp("cb", publishMsg(a.id, "/x", 1))
	wantError(t, replyTo(t, msgs, "/x"), "402::session_unknown")
	a.pending(held, 300*time.Millisecond, "held connect after a foreign JSONP request")
}

// Over HTTP/2 one browser may hold any number of connects.
func TestHTTP2NotLimitedPerBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	srv := httptest.NewUnstartedServer(h.srv.Handler("/cometd"))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		h.srv.BeginShutdown()
		srv.Close()
	})
	a := h.client()
	a.url = srv.URL + "/cometd"
	a.hc.Transport = srv.Client().Transport
	a.start()
	a2 := a.sibling().start()
	r := a.send(handshakeMsg())
	if r.err != nil || r.status != 200 {
		t.Fatalf("HTTP/2 handshake: %v", r)
	}
	held1 := a.connectAsync()
	held2 := a2.connectAsync()
	h.waitHeld(2)
	a.pending(held1, 200*time.Millisecond, "first session over HTTP/2")
	a2.pending(held2, 10*time.Millisecond, "second session over HTTP/2")
}
