package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/protocol"
)

// ---- handshake ----

func TestHandshakeReply(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 2 * time.Second, PollInterval: 250 * time.Millisecond})
	c := h.client()
	req := handshakeMsg()
	req.ID = "hs1"
	r := c.send(req)
	m := only(t, c.checkOK(r), protocol.MetaHandshake)

	if !m.IsSuccessful() {
		t.Fatalf("handshake failed: %s", r.body)
	}
	if m.ID != "hs1" {
		t.Errorf("id = %q, want the request's hs1", m.ID)
	}
	if len(m.ClientID) < 20 {
		t.Errorf("clientId %q is shorter than 20 characters", m.ClientID)
	}
	for _, ch := range m.ClientID {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
			t.Errorf("clientId %q is not alphanumeric", m.ClientID)
			break
		}
	}
	if m.Version != "1.0" {
		t.Errorf("version = %q", m.Version)
	}
	if !slices.Contains(m.SupportedConnectionTypes, protocol.LongPolling) || !slices.Contains(m.SupportedConnectionTypes, protocol.CallbackPolling) {
		t.Errorf("supportedConnectionTypes = %q", m.SupportedConnectionTypes)
	}
	a := m.Advice
	if a == nil || a.Reconnect != protocol.ReconnectRetry || a.Interval == nil || *a.Interval != 250 || a.Timeout == nil || *a.Timeout != 2000 {
		t.Errorf("advice = %s, want reconnect retry, interval 250, timeout 2000", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}

	// The BAYEUX_BROWSER cookie is set, HttpOnly, for the whole site.
	var browser *http.Cookie
	for _, line := range r.header.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err == nil && ck.Name == BrowserCookie {
			browser = ck
		}
	}
	if browser == nil {
		t.Fatalf("no %s cookie in %q", BrowserCookie, r.header.Values("Set-Cookie"))
	}
	if !browser.HttpOnly || browser.Path != "/" || len(browser.Value) < 16 {
		t.Errorf("cookie = %+v, want HttpOnly, Path=/ and a value of 16+ characters", browser)
	}

	// A second handshake from the same browser gets a new session and
	// keeps the cookie.
	r2 := c.send(handshakeMsg())
	m2 := only(t, c.checkOK(r2), protocol.MetaHandshake)
	if !m2.IsSuccessful() || m2.ClientID == m.ClientID {
		t.Errorf("second handshake: %s", r2.body)
	}
	if len(r2.header.Values("Set-Cookie")) != 0 {
		t.Errorf("cookie set again: %q", r2.header.Values("Set-Cookie"))
	}
	if n := h.sessionCount(); n != 2 {
		t.Errorf("SessionCount = %d, want 2", n)
	}
	ev := h.events.wait(t, "client_connect", func(ev Event) bool {
		return ev.Kind == EventClientConnect && ev.ClientID == m.ClientID
	})
	if ev.RemoteAddr != "127.0.0.1" || ev.Local {
		t.Errorf("client_connect event = %+v", ev)
	}
}

func TestHandshakeErrors(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name     string
		msg      *protocol.Message
		code     int
		errSufix string
	}
	noVersion := handshakeMsg()
	noVersion.Version = ""
	wsOnly := handshakeMsg()
	wsOnly.SupportedConnectionTypes = []string{"flash", "iframe"}
	tests := []testCase{
		{"without version", noVersion, 400, "version_missing"},
		{"only unsupported connection types", wsOnly, 405, "no_transport"},
	}
	h := newHarness(t, Options{})
	for _, tc := range tests {
		c := h.client()
		r := c.send(tc.msg)
		m := only(t, c.checkOK(r), protocol.MetaHandshake)
		if m.IsSuccessful() || m.ClientID != "" {
			t.Errorf("%s: handshake succeeded: %s", tc.name, r.body)
			continue
		}
		e, err := protocol.ParseError(m.Error)
		if err != nil || e.Code != tc.code || !strings.HasSuffix(m.Error, ":"+tc.errSufix) {
			t.Errorf("%s: error = %q, want %d...:%s", tc.name, m.Error, tc.code, tc.errSufix)
		}
		if m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectNone {
			t.Errorf("%s: advice = %+v, want reconnect none", tc.name, m.Advice)
		}
		if len(r.header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s: failed handshake set a cookie", tc.name)
		}
	}
	if n := h.sessionCount(); n != 0 {
		t.Errorf("SessionCount = %d after failed handshakes", n)
	}
	if _, ok := h.events.find(func(ev Event) bool { return ev.Kind == EventClientConnect }); ok {
		t.Error("client_connect emitted for a failed handshake")
	}
}

// A handshake must travel alone: batched with anything, everything fails
// and no session is created.
func TestHandshakeBatched(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	batches := [][]*protocol.Message{
		{handshakeMsg(), connectMsg("", nil)},
		{subscribeMsg("", "/a"), handshakeMsg()},
		{handshakeMsg(), handshakeMsg()},
	}
	for i, b := range batches {
		r := c.send(b...)
		msgs := c.checkOK(r)
		if len(msgs) != len(b) {
			t.Errorf("batch %d: %d replies for %d messages: %s", i, len(msgs), len(b), r.body)
		}
		for _, m := range msgs {
			if m.IsSuccessful() || m.ClientID != "" {
				t.Errorf("batch %d: %s succeeded: %s", i, m.Channel, r.body)
			}
		}
		if len(r.header.Values("Set-Cookie")) != 0 {
			t.Errorf("batch %d set a cookie", i)
		}
	}
	if n := h.sessionCount(); n != 0 {
		t.Errorf("SessionCount = %d, want 0", n)
	}

	// An existing session's connect in such a batch is not run either.
	a := h.client().start()
	r := a.send(handshakeMsg(), connectMsg(a.id, nil))
	for _, m := range a.checkOK(r) {
		if m.IsSuccessful() {
			t.Errorf("%s succeeded: %s", m.Channel, r.body)
		}
	}
	if r.elapsed > time.Second {
		t.Errorf("batched connect was held for %v", r.elapsed)
	}
	if n := h.sessionCount(); n != 1 {
		t.Errorf("SessionCount = %d, want 1", n)
	}
}

// ---- connect ----

func TestFirstConnectTimeoutZero(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	c.handshake()
	r := c.send(connectMsg(c.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
	m := replyTo(t, c.checkOK(r), protocol.MetaConnect)
	if r.elapsed > time.Second {
		t.Errorf("connect with timeout 0 took %v", r.elapsed)
	}
	if !m.IsSuccessful() || m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectRetry ||
		m.Advice.Timeout == nil || *m.Advice.Timeout != hPollTimeout.Milliseconds() {
		t.Errorf("connect reply = %s, want successful with the server's advice", r.body)
	}
}

func TestConnectHeldUntilPublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/chat/a")
	b := h.client().start()

	held := a.connectAsync()
	h.waitHeld(1)
	a.pending(held, 150*time.Millisecond, "connect with nothing queued")
	b.publish("/chat/a", map[string]string{"text": "hi"})
	r := a.wait(held, time.Second)
	msgs := r.msgs
	if len(msgs) != 2 {
		t.Fatalf("want [delivery, connect reply], got %s", r.body)
	}
	if msgs[0].Channel != "/chat/a" || msgs[0].Successful != nil || string(msgs[0].Data) != `{"text":"hi"}` {
		t.Errorf("first message is not the delivery: %s", r.body)
	}
	if msgs[1].Channel != protocol.MetaConnect || !msgs[1].IsSuccessful() {
		t.Errorf("second message is not the connect reply: %s", r.body)
	}
}

func TestConnectReturnsAfterPollTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: time.Second})
	a := h.client().start()
	r := a.wait(a.connectAsync(), 3*time.Second)
	if r.elapsed < 900*time.Millisecond {
		t.Errorf("connect returned after %v, before the 1s poll timeout", r.elapsed)
	}
	m := only(t, r.msgs, protocol.MetaConnect)
	if !m.IsSuccessful() || m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectRetry {
		t.Errorf("reply = %s", r.body)
	}
	// Advice timeout larger than PollTimeout is capped.
	r = a.send(connectMsg(a.id, &protocol.Advice{Timeout: protocol.Ms(60000)}))
	a.checkOK(r)
	if r.elapsed > 2500*time.Millisecond {
		t.Errorf("connect asking for 60s was held %v, longer than PollTimeout", r.elapsed)
	}
}

// A connect batched with other messages is answered at once; two connects
// in one batch are refused.
func TestConnectBatched(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	r := a.send(subscribeMsg(a.id, "/b"), connectMsg(a.id, nil))
	msgs := a.checkOK(r)
	if r.elapsed > time.Second {
		t.Errorf("connect batched with a subscribe was held %v", r.elapsed)
	}
	if !replyTo(t, msgs, protocol.MetaSubscribe).IsSuccessful() || !replyTo(t, msgs, protocol.MetaConnect).IsSuccessful() {
		t.Errorf("replies: %s", r.body)
	}
	r = a.send(connectMsg(a.id, nil), connectMsg(a.id, nil))
	msgs = a.checkOK(r)
	ok, failed := 0, 0
	for _, m := range msgs {
		if m.Channel == protocol.MetaConnect && m.IsSuccessful() {
			ok++
		} else if m.Channel == protocol.MetaConnect {
			failed++
		}
	}
	if ok != 1 || failed != 1 || r.elapsed > time.Second {
		t.Errorf("two connects in a batch: %s after %v, want one success and one failure at once", r.body, r.elapsed)
	}
}

// A newer connect of the same session completes the held one at once; the
// newer one is held and gets the next event.
func TestConnectSuperseded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 3 * time.Second})
	a := h.client().start()
	a.subscribe("/s")
	b := h.client().start()

	first := a.connectAsync()
	h.waitHeld(1)
	second := a.connectAsync()
	r1 := a.wait(first, time.Second)
	if r1.elapsed > 1500*time.Millisecond {
		t.Errorf("older connect returned after %v, not at once", r1.elapsed)
	}
	m := only(t, r1.msgs, protocol.MetaConnect)
	if !m.IsSuccessful() {
		t.Errorf("older connect reply = %s", r1.body)
	}

	// The newer connect is held: it must not come back on its own.
	select {
	case r2 := <-second:
		t.Fatalf("newer connect was not held: it returned after %v with %s", r2.elapsed, r2.body)
	case <-time.After(300 * time.Millisecond):
	}
	b.publish("/s", "next")
	r2 := a.wait(second, time.Second)
	if got := dataOf(t, r2.msgs, "/s"); !reflect.DeepEqual(got, []any{"next"}) {
		t.Errorf("newer connect delivered %v, want [next]: %s", got, r2.body)
	}
}

// When a connect is superseded, writing the old connect's reply must not
// shorten the session's life while the newer connect is still held.
func TestSupersededConnectKeepsSessionAlive(t *testing.T) {
	t.Parallel()
	// MaxSessionsPerBrowser -1 keeps the browser limit out of the way.
	h := newHarness(t, Options{PollTimeout: 4 * time.Second, ConnectTimeout: 600 * time.Millisecond, MaxSessionsPerBrowser: -1})
	a := h.client().start()
	a.subscribe("/s")

	first := a.connectAsync()
	h.waitHeld(1)
	second := a.connectAsync()
	a.wait(first, time.Second)

	// Well past ConnectTimeout plus a few sweeps: the newer connect is
	// still held, so the session must live on.
	select {
	case r2 := <-second:
		t.Fatalf("newer connect ended after %v with %s; the session was expired while its connect was held", r2.elapsed, r2.body)
	case <-time.After(1500 * time.Millisecond):
	}
	if _, ok := h.events.find(func(ev Event) bool { return ev.Kind == EventClientDisconnect }); ok {
		t.Fatalf("session expired while a connect was held: %+v", h.events.all())
	}
	if _, err := h.srv.Publish(context.Background(), "/s", "late"); err != nil {
		t.Fatal(err)
	}
	r2 := a.wait(second, time.Second)
	if got := dataOf(t, r2.msgs, "/s"); !reflect.DeepEqual(got, []any{"late"}) {
		t.Errorf("newer connect delivered %v: %s", got, r2.body)
	}
}

// ---- unknown sessions and cookie binding ----

func TestUnknownClientID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	const bogus = "nosuchclient0000000000000"
	msgs := []*protocol.Message{
		connectMsg(bogus, nil),
		connectMsg("", nil),
		subscribeMsg(bogus, "/a"),
		unsubscribeMsg(bogus, "/a"),
		publishMsg(bogus, "/a", 1),
		publishMsg("", "/a", 1),
		disconnectMsg(bogus),
	}
	for _, m := range msgs {
		r := c.send(m)
		rep := replyTo(t, c.checkOK(r), m.Channel)
		wantError(t, rep, "402::session_unknown")
		wantHandshakeAdvice(t, rep)
		if r.elapsed > time.Second {
			t.Errorf("%s with unknown client took %v", m.Channel, r.elapsed)
		}
	}
}

func TestCookieBinding(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/bound")

	// The right clientId without the cookie, or with another browser's.
	thief := h.noCookies()
	thief.id = a.id
	otherCookie := http.Header{"Cookie": {BrowserCookie + "=abcdefghijklmnopqrstuvwxyz"}}
	for _, hdr := range []http.Header{nil, otherCookie} {
		for _, m := range []*protocol.Message{
			connectMsg(a.id, &protocol.Advice{Timeout: protocol.Ms(0)}),
			subscribeMsg(a.id, "/x"),
			publishMsg(a.id, "/bound", "stolen"),
			disconnectMsg(a.id),
		} {
			r := thief.sendH(hdr, m)
			rep := replyTo(t, thief.checkOK(r), m.Channel)
			wantError(t, rep, "402::session_unknown")
			wantHandshakeAdvice(t, rep)
		}
	}
	// The owner is unaffected and nothing was published in its name.
	msgs := a.connectNow()
	if d := deliveries(msgs); len(d) != 0 {
		t.Errorf("hijacked publish was delivered: %s", dump(msgs))
	}
	if n := h.sessionCount(); n != 1 {
		t.Errorf("SessionCount = %d", n)
	}
}

func TestTrustClientSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{TrustClientSession: true})
	a := h.client().start()
	other := h.noCookies()
	other.id = a.id
	other.connectNow()
	other.subscribe("/t")
	other.publish("/t", 1)
	if got := dataOf(t, a.connectNow(), "/t"); !reflect.DeepEqual(got, []any{1.0}) {
		t.Errorf("delivered %v", got)
	}
}

// ---- expiry ----

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	const ct = 300 * time.Millisecond
	var expiredAt atomic.Int64
	h := newHarness(t, Options{ConnectTimeout: ct, OnEvent: func(ev Event) {
		if ev.Kind == EventClientDisconnect {
			expiredAt.Store(time.Now().UnixNano())
		}
	}})
	a := h.client()
	a.handshake()
	a.must(subscribeMsg(a.id, "/e"))
	a.connectNow()
	replied := time.Now()
	ev := h.events.wait(t, "client_disconnect", func(ev Event) bool {
		return ev.Kind == EventClientDisconnect && ev.ClientID == a.id
	})
	if ev.Reason != "expired" || !slices.Equal(ev.Channels, []string{"/e"}) {
		t.Errorf("client_disconnect = %+v, want reason expired and channels [/e]", ev)
	}
	if n, _ := h.srv.Publish(context.Background(), "/e", 1); n != 0 {
		t.Errorf("expired session still subscribed")
	}
	if after := time.Duration(expiredAt.Load() - replied.UnixNano()); after < ct-50*time.Millisecond {
		t.Errorf("session expired %v after the connect reply, before ConnectTimeout %v", after, ct)
	}
	r := a.send(connectMsg(a.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
	rep := replyTo(t, a.checkOK(r), protocol.MetaConnect)
	wantError(t, rep, "402::session_unknown")
	wantHandshakeAdvice(t, rep)
	if n := h.sessionCount(); n != 0 {
		t.Errorf("SessionCount = %d", n)
	}
}

// A session that handshakes but never connects expires too.
func TestSessionExpiryWithoutConnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{ConnectTimeout: 200 * time.Millisecond})
	a := h.client()
	a.handshake()
	h.events.wait(t, "expiry", func(ev Event) bool {
		return ev.Kind == EventClientDisconnect && ev.ClientID == a.id && ev.Reason == "expired"
	})
}

func TestHeldConnectDoesNotExpire(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 1500 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond})
	a := h.client().start()
	r := a.wait(a.connectAsync(), 4*time.Second)
	if r.elapsed < 1400*time.Millisecond {
		t.Errorf("held connect returned after %v: %s", r.elapsed, r.body)
	}
	m := only(t, r.msgs, protocol.MetaConnect)
	if !m.IsSuccessful() || m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectRetry {
		t.Errorf("held connect reply = %s", r.body)
	}
	if ev, ok := h.events.find(func(ev Event) bool { return ev.Kind == EventClientDisconnect }); ok {
		t.Errorf("session expired while its connect was held: %+v", ev)
	}
	a.connectNow()
}

// ---- subscribe / publish ----

func TestSubscribeEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	type testCase struct {
		name string
		msg  *protocol.Message
		want string // the subscription field as it must be echoed
	}
	tests := []testCase{
		{"string", subscribeMsg(a.id, "/a/b"), `"/a/b"`},
		{"array of one", &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: a.id,
			Subscription: protocol.Subscription{Channels: []string{"/c"}, Array: true}}, `["/c"]`},
		{"array", subscribeMsg(a.id, "/d", "/e/*"), `["/d","/e/*"]`},
		{"unsubscribe string", unsubscribeMsg(a.id, "/a/b"), `"/a/b"`},
		{"unsubscribe array", unsubscribeMsg(a.id, "/d", "/e/*"), `["/d","/e/*"]`},
	}
	for _, tc := range tests {
		r := a.send(tc.msg)
		a.checkOK(r)
		var raw []map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &raw); err != nil || len(raw) != 1 {
			t.Fatalf("%s: %s", tc.name, r.body)
		}
		if string(raw[0]["subscription"]) != tc.want || string(raw[0]["successful"]) != "true" {
			t.Errorf("%s: reply %s, want subscription %s echoed", tc.name, r.body, tc.want)
		}
	}
	subs, err := h.srv.Engine().(SessionLister).Subscriptions(context.Background(), a.id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(subs, []string{"/c"}) {
		t.Errorf("subscriptions = %q, want [/c]", subs)
	}
}

func TestWildcardDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	one := h.client().start()
	one.subscribe("/w/*")
	many := h.client().start()
	many.subscribe("/w/**")
	all := h.client().start()
	all.subscribe("/**")
	exact := h.client().start()
	exact.subscribe("/w/x")
	p := h.client().start()

	p.publish("/w", 0)
	p.publish("/w/x", 1)
	p.publish("/w/x/y", 2)
	p.publish("/wx", 3)
	p.publish("/v/x", 4)

	type testCase struct {
		c    *rawClient
		want []any
	}
	for name, tc := range map[string]testCase{
		"/w/*":  {one, []any{1.0}},
		"/w/**": {many, []any{1.0, 2.0}},
		"/**":   {all, []any{0.0, 1.0, 2.0, 3.0, 4.0}},
		"/w/x":  {exact, []any{1.0}},
	} {
		var got []any
		for _, d := range deliveries(tc.c.connectNow()) {
			var v any
			_ = json.Unmarshal(d.Data, &v)
			got = append(got, v)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("subscriber of %s got %v, want %v", name, got, tc.want)
		}
	}
}

func TestOverlappingSubscriptionsOneCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/x/*")
	a.subscribe("/x/y")
	a.subscribe("/x/**", "/**")
	b := h.client().start()
	b.publish("/x/y", "once")
	msgs := a.connectNow()
	if got := dataOf(t, msgs, "/x/y"); !reflect.DeepEqual(got, []any{"once"}) {
		t.Errorf("delivered %v, want one copy: %s", got, dump(msgs))
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/u", "/v/*")
	b := h.client().start()
	b.publish("/u", 1)
	b.publish("/v/a", 2)
	a.unsubscribe("/u", "/v/*")
	b.publish("/u", 3)
	b.publish("/v/a", 4)
	msgs := a.connectNow()
	if got := append(dataOf(t, msgs, "/u"), dataOf(t, msgs, "/v/a")...); !reflect.DeepEqual(got, []any{1.0, 2.0}) {
		t.Errorf("delivered %v, want [1 2]: %s", got, dump(msgs))
	}
	// Unsubscribing what is not subscribed is harmless.
	a.unsubscribe("/never")
}

func TestSubscribeMetaRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	for _, ch := range []string{"/meta/*", "/meta/**", "/meta/connect", "/meta/handshake", "/meta"} {
		rep := replyTo(t, a.must(subscribeMsg(a.id, ch)), protocol.MetaSubscribe)
		if rep.IsSuccessful() {
			t.Errorf("subscribe %s succeeded", ch)
			continue
		}
		if e, err := protocol.ParseError(rep.Error); err != nil || e.Code != 403 {
			t.Errorf("subscribe %s: error %q, want a 403", ch, rep.Error)
		}
	}
	subs, _ := h.srv.Engine().(SessionLister).Subscriptions(context.Background(), a.id)
	if len(subs) != 0 {
		t.Errorf("meta subscriptions recorded: %q", subs)
	}
	// A handshake by someone else is not delivered to the client.
	h.client().handshake()
	if d := deliveries(a.connectNow()); len(d) != 0 {
		t.Errorf("meta traffic delivered: %s", dump(d))
	}
}

func TestServiceSubscriptionNotBroadcast(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/service/x")
	a.subscribe("/service/**")
	b := h.client().start()
	b.publish("/service/x", "private")
	if d := deliveries(a.connectNow()); len(d) != 0 {
		t.Errorf("publish to /service/x was broadcast: %s", dump(d))
	}
	subs, _ := h.srv.Engine().(SessionLister).Subscriptions(context.Background(), a.id)
	if len(subs) != 0 {
		t.Errorf("service subscriptions recorded: %q", subs)
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxChannelLength: 40})
	a := h.client().start()
	a.subscribe("/**")
	long := "/" + strings.Repeat("l", 50)
	type testCase struct {
		name string
		msg  *protocol.Message
		err  string // exact error, or "403" for any 403
	}
	noChannel := publishMsg(a.id, "", 1)
	badID := publishMsg(a.id, "/ok", 1)
	badID.ID = "has space"
	tests := []testCase{
		{"meta channel", publishMsg(a.id, "/meta/foo", 1), "403"},
		{"meta root", publishMsg(a.id, "/meta", 1), "403"},
		{"data missing", publishMsg(a.id, "/ok", nil), "400::data_missing"},
		{"wildcard", publishMsg(a.id, "/a/*", 1), "405::channel_invalid"},
		{"deep wildcard", publishMsg(a.id, "/a/**", 1), "405::channel_invalid"},
		{"empty segment", publishMsg(a.id, "/a//b", 1), "405::channel_invalid"},
		{"trailing slash", publishMsg(a.id, "/a/", 1), "405::channel_invalid"},
		{"no slash", publishMsg(a.id, "abc", 1), "405::channel_invalid"},
		{"space", publishMsg(a.id, "/a b", 1), "405::channel_invalid"},
		{"unicode", publishMsg(a.id, "/caf\u00e9", 1), "405::channel_invalid"},
		{"too long", publishMsg(a.id, long, 1), "405:too_long:channel_invalid"},
		{"channel missing", noChannel, "400::channel_missing"},
		{"invalid id", badID, "405::message_id_invalid"},
	}
	for _, tc := range tests {
		r := a.send(tc.msg)
		msgs := a.checkOK(r)
		if len(msgs) != 1 || msgs[0].Successful == nil {
			t.Errorf("%s: want one reply, got %s", tc.name, r.body)
			continue
		}
		rep := msgs[0]
		if rep.IsSuccessful() {
			t.Errorf("%s: publish succeeded", tc.name)
			continue
		}
		if tc.err == "403" {
			if !strings.HasPrefix(rep.Error, "403:") {
				t.Errorf("%s: error %q, want a 403", tc.name, rep.Error)
			}
		} else if rep.Error != tc.err {
			t.Errorf("%s: error %q, want %q", tc.name, rep.Error, tc.err)
		}
		if tc.name == "invalid id" && rep.ID != "" {
			t.Errorf("invalid id echoed: %s", r.body)
		}
	}
	if d := deliveries(a.connectNow()); len(d) != 0 {
		t.Errorf("refused publishes were delivered: %s", dump(d))
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxChannelLength: 40})
	a := h.client().start()
	for _, sub := range []string{"/a/*/b", "/**/a", "//", "/", "a", "/a/", "/a b", "/caf\u00e9", "/" + strings.Repeat("l", 50)} {
		rep := replyTo(t, a.must(subscribeMsg(a.id, sub)), protocol.MetaSubscribe)
		wantError(t, rep, "403::subscription_invalid")
	}
	rep := replyTo(t, a.must(&protocol.Message{Channel: protocol.MetaSubscribe, ClientID: a.id}), protocol.MetaSubscribe)
	wantError(t, rep, "403::subscription_missing")
	rep = replyTo(t, a.must(&protocol.Message{Channel: protocol.MetaUnsubscribe, ClientID: a.id}), protocol.MetaUnsubscribe)
	wantError(t, rep, "403::subscription_missing")
	subs, _ := h.srv.Engine().(SessionLister).Subscriptions(context.Background(), a.id)
	if len(subs) != 0 {
		t.Errorf("invalid subscriptions recorded: %q", subs)
	}
}

func TestMaxSubscriptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxSubscriptions: 2})
	a := h.client().start()
	a.subscribe("/a")
	a.subscribe("/b/*")
	a.subscribe("/a")          // already there: not counted again
	a.subscribe("/service/no") // service subscriptions are not recorded
	rep := replyTo(t, a.must(subscribeMsg(a.id, "/c")), protocol.MetaSubscribe)
	wantError(t, rep, "403::subscription_limit")
	rep = replyTo(t, a.must(subscribeMsg(a.id, "/d", "/e")), protocol.MetaSubscribe)
	wantError(t, rep, "403::subscription_limit")
	a.unsubscribe("/a")
	a.subscribe("/c")
}

// Deliveries carry channel, data and ext only: no clientId, no id.
func TestDeliveryFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/f")
	b := h.client().start()
	m := publishMsg(b.id, "/f", map[string]any{"n": 1})
	m.ID = "pub7"
	m.Ext = map[string]json.RawMessage{"trace": json.RawMessage(`"t1"`)}
	rep := replyTo(t, b.must(m), "/f")
	if !rep.IsSuccessful() || rep.ID != "pub7" {
		t.Errorf("publish reply = %+v", rep)
	}
	r := a.send(connectMsg(a.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
	a.checkOK(r)
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw) != 2 {
		t.Fatalf("response %s", r.body)
	}
	d := raw[0]
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range d {
			if !yield(k) {
				return
			}
		}
	})
	if !reflect.DeepEqual(keys, []string{"channel", "data", "ext"}) {
		t.Errorf("delivery has keys %q, want channel, data, ext: %s", keys, r.body)
	}
	if string(d["data"]) != `{"n":1}` || string(d["ext"]) != `{"trace":"t1"}` {
		t.Errorf("delivery = %s", r.body)
	}
	if strings.Contains(string(r.body), b.id) {
		t.Errorf("publisher's clientId leaked: %s", r.body)
	}
}

// ---- multiple clients in one browser ----

func TestMultipleClientsOneBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MultiSessionInterval: 1500 * time.Millisecond})
	a := h.client().start()
	a2 := a.sibling().start()
	other := h.client().start()

	held := a.connectAsync()
	h.waitHeld(1)
	r := a2.send(connectMsg(a2.id, nil))
	m := only(t, a2.checkOK(r), protocol.MetaConnect)
	if r.elapsed > time.Second {
		t.Errorf("second session's connect was held %v", r.elapsed)
	}
	adv := m.Advice
	if !m.IsSuccessful() || adv == nil || !adv.MultipleClients || adv.Interval == nil || *adv.Interval != 1500 || adv.Reconnect != protocol.ReconnectRetry {
		t.Errorf("second session's reply = %s, want multiple-clients:true, interval 1500, reconnect retry", r.body)
	}
	if !strings.Contains(string(r.body), `"multiple-clients":true`) {
		t.Errorf("multiple-clients missing from %s", r.body)
	}
	// Another browser is not limited.
	otherHeld := other.connectAsync()
	h.waitHeld(2)
	a.pending(held, 100*time.Millisecond, "first session's connect")
	other.pending(otherHeld, 10*time.Millisecond, "other browser's connect")
}

func TestMultipleClientsUnlimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxSessionsPerBrowser: -1})
	a := h.client().start()
	a2 := a.sibling().start()
	held1 := a.connectAsync()
	held2 := a2.connectAsync()
	h.waitHeld(2)
	a.pending(held1, 200*time.Millisecond, "first session")
	a2.pending(held2, 10*time.Millisecond, "second session")
}

// ---- disconnect ----

func TestDisconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/d")
	held := a.connectAsync()
	h.waitHeld(1)

	rep := replyTo(t, a.must(disconnectMsg(a.id)), protocol.MetaDisconnect)
	if !rep.IsSuccessful() {
		t.Fatalf("disconnect failed: %+v", rep)
	}
	r := a.wait(held, time.Second)
	m := only(t, r.msgs, protocol.MetaConnect)
	if m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectNone {
		t.Errorf("held connect after disconnect = %s, want reconnect none", r.body)
	}
	ev := h.events.wait(t, "client_disconnect", func(ev Event) bool {
		return ev.Kind == EventClientDisconnect && ev.ClientID == a.id
	})
	if ev.Reason != "disconnect" || !slices.Equal(ev.Channels, []string{"/d"}) {
		t.Errorf("client_disconnect = %+v, want reason disconnect and channels [/d]", ev)
	}
	rep = replyTo(t, a.must(publishMsg(a.id, "/d", 1)), "/d")
	wantError(t, rep, "402::session_unknown")
	wantHandshakeAdvice(t, rep)
	if n := h.sessionCount(); n != 0 {
		t.Errorf("SessionCount = %d", n)
	}
	if n, _ := h.srv.Publish(context.Background(), "/d", 1); n != 0 {
		t.Errorf("publish after disconnect reached %d sessions", n)
	}
}

// Server.Disconnect removes a session: its held connect is told
// reconnect:"none" and client_disconnect has reason "server".
func TestServerDisconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	held := a.connectAsync()
	h.waitHeld(1)
	ok, err := h.srv.Disconnect(context.Background(), a.id)
	if !ok || err != nil {
		t.Fatalf("Disconnect = %v, %v", ok, err)
	}
	r := a.wait(held, time.Second)
	if m := only(t, r.msgs, protocol.MetaConnect); m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectNone {
		t.Errorf("held connect = %s", r.body)
	}
	h.events.wait(t, "client_disconnect", func(ev Event) bool {
		return ev.Kind == EventClientDisconnect && ev.ClientID == a.id && ev.Reason == "server"
	})
	if ok, _ := h.srv.Disconnect(context.Background(), a.id); ok {
		t.Error("second Disconnect reported the session")
	}
}

// ---- services ----

func TestEchoService(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	watcher := h.client().start()
	watcher.subscribe("/service/echo")
	m := publishMsg(a.id, "/service/echo", map[string]any{"x": []int{1, 2}})
	m.ID = "e1"
	r := a.send(m)
	msgs := a.checkOK(r)
	var data, reply *protocol.Message
	for _, m := range msgs {
		if m.Data != nil {
			data = m
		} else {
			reply = m
		}
	}
	if len(msgs) != 2 || data == nil || reply == nil {
		t.Fatalf("want the echo and the publish reply, got %s", r.body)
	}
	if data.Channel != "/service/echo" || data.ID != "e1" || string(data.Data) != `{"x":[1,2]}` {
		t.Errorf("echo = %s", r.body)
	}
	if reply.Channel != "/service/echo" || reply.ID != "e1" || !reply.IsSuccessful() {
		t.Errorf("publish reply = %s", r.body)
	}
	if slices.Index(msgs, data) > slices.Index(msgs, reply) {
		t.Errorf("echo comes after the publish reply: %s", r.body)
	}
	if d := deliveries(a.connectNow()); len(d) != 0 {
		t.Errorf("echo also queued: %s", dump(d))
	}
	if d := deliveries(watcher.connectNow()); len(d) != 0 {
		t.Errorf("echo reached another client: %s", dump(d))
	}
}

func TestCustomServices(t *testing.T) {
	t.Parallel()
	type call struct {
		id, transport string
		hasReq        bool
	}
	calls := make(chan call, 10)
	h := newHarness(t, Options{Services: map[string]ServiceFunc{
		"x/y": func(_ context.Context, c *Client, m *protocol.Message) ([]*protocol.Message, error) {
			calls <- call{c.ID(), c.Transport(), c.Request() != nil}
			return []*protocol.Message{
				{Data: json.RawMessage(`"xy"`)},
				{Channel: "/service/other", ID: "custom", Data: json.RawMessage(`2`), Successful: new(bool), Error: "409::custom"},
			}, nil
		},
		"_handler": func(_ context.Context, _ *Client, m *protocol.Message) ([]*protocol.Message, error) {
			b, _ := json.Marshal("fallback " + m.Channel)
			return []*protocol.Message{{Data: b}}, nil
		},
	}})
	a := h.client().start()

	m := publishMsg(a.id, "/service/x/y", 1)
	m.ID = "s1"
	msgs := a.must(m)
	if len(msgs) != 3 {
		t.Fatalf("want 2 service replies and the publish reply: %s", dump(msgs))
	}
	if msgs[0].Channel != "/service/x/y" || msgs[0].ID != "s1" || string(msgs[0].Data) != `"xy"` || !msgs[0].IsSuccessful() {
		t.Errorf("first service reply = %s", dump(msgs))
	}
	if msgs[1].Channel != "/service/other" || msgs[1].ID != "custom" || msgs[1].Successful == nil || *msgs[1].Successful || msgs[1].Error != "409::custom" {
		t.Errorf("explicit fields were overwritten: %s", dump(msgs))
	}
	select {
	case c := <-calls:
		if c.id != a.id || c.transport != protocol.LongPolling || !c.hasReq {
			t.Errorf("service saw client %+v", c)
		}
	default:
		t.Error("service not called")
	}

	for _, ch := range []string{"/service/zzz", "/service/x/y/z", "/service/x"} {
		msgs := a.must(publishMsg(a.id, ch, 1))
		if len(msgs) != 2 || msgs[0].Channel != ch || string(msgs[0].Data) != `"fallback `+ch+`"` {
			t.Errorf("%s: want the fallback's reply, got %s", ch, dump(msgs))
		}
	}
	// echo is still built in.
	msgs = a.must(publishMsg(a.id, "/service/echo", "e"))
	if string(msgs[0].Data) != `"e"` {
		t.Errorf("echo: %s", dump(msgs))
	}
}

func TestServiceError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Services: map[string]ServiceFunc{
		"plain": func(context.Context, *Client, *protocol.Message) ([]*protocol.Message, error) {
			return []*protocol.Message{{Data: json.RawMessage(`1`)}}, errors.New("out of stock")
		},
		"bayeux": func(context.Context, *Client, *protocol.Message) ([]*protocol.Message, error) {
			return nil, &protocol.Error{Code: 409, Args: []string{"item7"}, Message: "conflict"}
		},
	}})
	a := h.client().start()
	for ch, want := range map[string]string{"/service/plain": "403::out of stock", "/service/bayeux": "409:item7:conflict"} {
		msgs := a.must(publishMsg(a.id, ch, 1))
		if len(msgs) != 1 {
			t.Errorf("%s: replies sent along with the error: %s", ch, dump(msgs))
		}
		wantError(t, replyTo(t, msgs, ch), want)
	}
}

func TestNoEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{NoEcho: true})
	a := h.client().start()
	msgs := a.must(publishMsg(a.id, "/service/echo", "e"))
	if len(msgs) != 1 || !msgs[0].IsSuccessful() || msgs[0].Data != nil {
		t.Errorf("with NoEcho, /service/echo replied %s", dump(msgs))
	}
}

// ---- Authorize ----

func TestAuthorizeHandshakeRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
		if m.Channel == protocol.MetaHandshake && string(m.Ext["token"]) != `"secret"` {
			return errors.New("bad credentials")
		}
		return nil
	}})
	c := h.client()
	r := c.send(handshakeMsg())
	m := only(t, c.checkOK(r), protocol.MetaHandshake)
	wantError(t, m, "403::bad credentials")
	if m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectNone {
		t.Errorf("advice = %+v, want reconnect none", m.Advice)
	}
	if len(r.header.Values("Set-Cookie")) != 0 || h.sessionCount() != 0 {
		t.Errorf("rejected handshake left a cookie or a session")
	}
	ok := handshakeMsg()
	ok.Ext = map[string]json.RawMessage{"token": json.RawMessage(`"secret"`)}
	if m := only(t, c.must(ok), protocol.MetaHandshake); !m.IsSuccessful() {
		t.Errorf("handshake with credentials failed: %+v", m)
	}
}

func TestAuthorizeUserAndFlags(t *testing.T) {
	t.Parallel()
	var sawHandshakeID atomic.Value
	h := newHarness(t, Options{
		Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
			switch m.Channel {
			case protocol.MetaHandshake:
				sawHandshakeID.Store(c.ID())
				var name string
				_ = json.Unmarshal(m.Ext["user"], &name)
				c.SetUser(name)
				c.SetFlag("role", "admin")
			default:
				// Later messages cannot change the identity.
				c.SetUser("mallory")
				c.SetFlag("role", "root")
			}
			return nil
		},
		Services: map[string]ServiceFunc{"whoami": func(_ context.Context, c *Client, _ *protocol.Message) ([]*protocol.Message, error) {
			b, _ := json.Marshal(map[string]string{"user": c.User(), "role": c.Flag("role"), "id": c.ID()})
			return []*protocol.Message{{Data: b}}, nil
		}},
	})
	c := h.client()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"user": json.RawMessage(`"alice"`)}
	m := only(t, c.must(hs), protocol.MetaHandshake)
	c.id = m.ClientID
	if id, _ := sawHandshakeID.Load().(string); id != "" {
		t.Errorf("Client.ID() during handshake authorization = %q, want empty", id)
	}
	c.connectNow()
	c.subscribe("/u")
	msgs := c.must(publishMsg(c.id, "/service/whoami", 1))
	var got map[string]string
	if err := json.Unmarshal(msgs[0].Data, &got); err != nil {
		t.Fatalf("whoami: %s", dump(msgs))
	}
	want := map[string]string{"user": "alice", "role": "admin", "id": c.id}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("whoami = %v, want %v", got, want)
	}
	ev := h.events.wait(t, "client_connect", func(ev Event) bool { return ev.Kind == EventClientConnect })
	if ev.User != "alice" {
		t.Errorf("client_connect user = %q", ev.User)
	}
	ev = h.events.wait(t, "subscribe", func(ev Event) bool { return ev.Kind == EventSubscribe })
	if ev.User != "alice" {
		t.Errorf("subscribe event user = %q", ev.User)
	}
}

func TestAuthorizePublishRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
		switch {
		case m.Channel == "/private/a":
			return protocol.ErrPublishDenied.WithArgs("not_owner")
		case m.Channel == "/private/b":
			return &protocol.Error{Code: 401, Message: "login_required"}
		case m.Channel == protocol.MetaSubscribe && m.Subscription.Channels[0] == "/secret":
			return errors.New("no: never")
		}
		return nil
	}})
	a := h.client().start()
	a.subscribe("/private/*")
	b := h.client().start()
	wantError(t, replyTo(t, b.must(publishMsg(b.id, "/private/a", 1)), "/private/a"), "403:not_owner:publish_denied")
	wantError(t, replyTo(t, b.must(publishMsg(b.id, "/private/b", 1)), "/private/b"), "401::login_required")
	wantError(t, replyTo(t, b.must(subscribeMsg(b.id, "/secret")), protocol.MetaSubscribe), "403::no  never")
	b.publish("/private/c", 3)
	if got := dataOf(t, a.connectNow(), "/private/c"); !reflect.DeepEqual(got, []any{3.0}) {
		t.Errorf("delivered %v, want only the authorized publish", got)
	}
	if d := deliveries(a.connectNow()); len(d) != 0 {
		t.Errorf("rejected publishes delivered: %s", dump(d))
	}
}

// ---- events ----

func TestOnEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/ev/*")
	a.publish("/ev/x", map[string]int{"n": 1})
	a.unsubscribe("/ev/*")
	a.unsubscribe("/ev/never")
	if err := h.srv.Push(context.Background(), a.id, "/direct", "pushed"); err != nil {
		t.Fatal(err)
	}
	if got := dataOf(t, a.connectNow(), "/direct"); !reflect.DeepEqual(got, []any{"pushed"}) {
		t.Errorf("push delivered %v", got)
	}
	if err := h.srv.Push(context.Background(), "nosuchclient", "/direct", 1); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Push to unknown client = %v", err)
	}
	a.must(disconnectMsg(a.id))

	type testCase struct {
		kind    EventKind
		channel string
		reason  string
	}
	want := []testCase{
		{EventClientConnect, "", ""},
		{EventSubscribe, "/ev/*", ""},
		{EventPublish, "/ev/x", ""},
		{EventUnsubscribe, "/ev/*", ""},
		{EventClientPush, "/direct", ""},
		{EventClientDisconnect, "", "disconnect"},
	}
	var got []testCase
	for _, ev := range h.events.all() {
		if ev.ClientID != a.id {
			t.Errorf("event for another client: %+v", ev)
			continue
		}
		got = append(got, testCase{ev.Kind, ev.Channel, ev.Reason})
		switch ev.Kind {
		case EventPublish:
			if ev.Message == nil || string(ev.Message.Data) != `{"n":1}` {
				t.Errorf("publish event message = %+v", ev.Message)
			}
		case EventClientPush:
			if ev.Message == nil || string(ev.Message.Data) != `"pushed"` {
				t.Errorf("push event message = %+v", ev.Message)
			}
		case EventClientConnect:
			if ev.RemoteAddr == "" {
				t.Errorf("client_connect without RemoteAddr")
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

// ---- anonymous publishing ----

func TestAnonPublish(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Options{})
		anon := h.noCookies()
		rep := replyTo(t, anon.must(publishMsg("", "/anon", 1)), "/anon")
		wantError(t, rep, "402::session_unknown")
		wantHandshakeAdvice(t, rep)
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Options{AnonPublish: true})
		a := h.client().start()
		a.subscribe("/anon")
		anon := h.noCookies()
		rep := replyTo(t, anon.must(publishMsg("", "/anon", "hello")), "/anon")
		if !rep.IsSuccessful() {
			t.Fatalf("anonymous publish failed: %+v", rep)
		}
		if got := dataOf(t, a.connectNow(), "/anon"); !reflect.DeepEqual(got, []any{"hello"}) {
			t.Errorf("delivered %v", got)
		}
		// Anonymous clients cannot do anything else.
		wantError(t, replyTo(t, anon.must(subscribeMsg("", "/anon")), protocol.MetaSubscribe), "402::session_unknown")
		wantError(t, replyTo(t, anon.must(publishMsg("", "/meta/x", 1)), "/meta/x"), "403:denied_by_security_policy:publish_denied")
	})
}

// ---- shutdown ----

func TestShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 5 * time.Second})
	a := h.client().start()
	held := a.connectAsync()
	h.waitHeld(1)
	h.srv.BeginShutdown()
	r := a.wait(held, time.Second)
	m := only(t, r.msgs, protocol.MetaConnect)
	if !m.IsSuccessful() || m.Advice == nil || m.Advice.Reconnect != protocol.ReconnectRetry {
		t.Errorf("held connect at shutdown = %s, want successful with reconnect retry", r.body)
	}
	// New connects are answered at once.
	r = a.send(connectMsg(a.id, nil))
	a.checkOK(r)
	if r.elapsed > time.Second {
		t.Errorf("connect during shutdown held %v", r.elapsed)
	}
	// New handshakes fail with 503.
	c := h.client()
	rep := only(t, c.must(handshakeMsg()), protocol.MetaHandshake)
	wantError(t, rep, "503::overloaded")
	h.srv.BeginShutdown() // idempotent
}

// ---- server-side publish ----

func TestServerPublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/sp/*")
	b := h.client().start()
	b.subscribe("/sp/**")
	n, err := h.srv.Publish(context.Background(), "/sp/x", json.RawMessage(`{"k":true}`))
	if err != nil || n != 2 {
		t.Errorf("Publish = %d, %v; want 2 recipients", n, err)
	}
	for _, ch := range []string{"/meta/x", "/service/echo", "/sp/*", "bad"} {
		if _, err := h.srv.Publish(context.Background(), ch, 1); err == nil {
			t.Errorf("Publish to %s accepted", ch)
		}
	}
	if _, err := h.srv.Publish(context.Background(), "/sp/x", json.RawMessage(`{`)); err == nil {
		t.Error("Publish of invalid JSON accepted")
	}
	if got := dataOf(t, a.connectNow(), "/sp/x"); !reflect.DeepEqual(got, []any{map[string]any{"k": true}}) {
		t.Errorf("delivered %v", got)
	}
	if ev, ok := h.events.find(func(ev Event) bool { return ev.Kind == EventPublish }); !ok || ev.ClientID != "" {
		t.Errorf("server publish event = %+v, %v", ev, ok)
	}
}

// Many clients publishing and connecting at once: every subscriber gets
// every message exactly once.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxSessionsPerBrowser: -1})
	const subs, pubs, each = 4, 4, 25
	var clients []*rawClient
	for range subs {
		c := h.client().start()
		c.subscribe("/cc/**")
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	errs := make(chan string, pubs*each)
	for p := range pubs {
		pc := h.client().start()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := pc.send(publishMsg(pc.id, "/cc/x", p*1000+i))
				if r.err != nil || r.status != 200 || len(r.msgs) != 1 || !r.msgs[0].IsSuccessful() {
					errs <- r.String()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("publish failed: %s", e)
	}
	for _, c := range clients {
		seen := map[float64]int{}
		for _, v := range dataOf(t, c.connectNow(), "/cc/x") {
			seen[v.(float64)]++
		}
		if len(seen) != pubs*each {
			t.Errorf("subscriber got %d distinct messages, want %d", len(seen), pubs*each)
		}
		for v, n := range seen {
			if n != 1 {
				t.Errorf("message %v delivered %d times", v, n)
			}
		}
	}
}

// A client that gives up on its held connect (page closed, network
// dropped) loses nothing: what is published meanwhile waits for its next
// connect.
func TestAbortedConnectKeepsMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/ab")
	ctx, cancel := context.WithCancel(context.Background())
	body, _ := json.Marshal([]*protocol.Message{connectMsg(a.id, nil)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := a.hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	h.waitHeld(1)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("aborted request succeeded")
	}
	testutil.Eventually(t, hWait, func() bool { return h.srv.Stats().HeldConnects.Load() == 0 }, "the aborted connect to end")
	a.publish("/ab", "kept")
	if got := dataOf(t, a.connectNow(), "/ab"); !reflect.DeepEqual(got, []any{"kept"}) {
		t.Errorf("after an aborted connect, delivered %v", got)
	}
	// The browser slot was released: a new connect is held, not refused.
	held := a.connectAsync()
	h.waitHeld(1)
	a.pending(held, 100*time.Millisecond, "connect after an aborted one")
}
