package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/protocol"
)

// waitParked waits until n connects are parked.
func (h *harness) waitParked(n int64) {
	h.t.Helper()
	testutil.Eventually(h.t, hWait, func() bool { return h.srv.Stats().Parked.Load() == n }, fmt.Sprintf("%d parked connects", n))
}

// TestParkedConnect: a connect held past ParkAfter waits with no goroutine
// of its own, gets the message published to it, and its connection serves
// the client's next request (keep-alive goes on).
func TestParkedConnect(t *testing.T) {
	h := newHarness(t, Options{ParkAfter: time.Millisecond})
	var reused, fresh atomic.Int64
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused.Add(1)
		} else {
			fresh.Add(1)
		}
	}}
	c := h.client()
	c.hc.Transport = &traceTransport{rt: c.hc.Transport, trace: trace}
	c.start()
	c.subscribe("/park")
	pub := h.client().start()

	before := runtime.NumGoroutine()
	const n = 20
	chans := make([]<-chan result, 0, n)
	others := make([]*rawClient, 0, n)
	for range n {
		o := h.client().start()
		o.subscribe("/park")
		others = append(others, o)
		chans = append(chans, o.connectAsync())
	}
	ch := c.connectAsync()
	h.waitParked(n + 1)
	// Parked connects leave no goroutine behind. The test's own client
	// has 3 per pending request; a held, unparked connect adds 2 more on
	// the server (its conn's and the background read).
	if g := runtime.NumGoroutine() - before; g >= 4*(n+1) {
		t.Fatalf("goroutines grew by %d for %d parked connects: the server keeps goroutines for them", g, n+1)
	}

	pub.publish("/park", "hello")
	msgs := c.checkOK(c.wait(ch, hWait))
	if len(msgs) != 2 || msgs[0].Channel != "/park" || string(msgs[0].Data) != `"hello"` {
		t.Fatalf("parked connect answered %s", mustJSON(t, msgs))
	}
	if r := replyTo(t, msgs, protocol.MetaConnect); !r.IsSuccessful() || r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectRetry {
		t.Fatalf("connect reply %+v", r)
	}
	for i, o := range others {
		if m := o.checkOK(o.wait(chans[i], hWait)); len(m) != 2 {
			t.Fatalf("subscriber %d got %d messages", i, len(m))
		}
	}
	h.waitParked(0)
	// The connection the parked connect was on serves the next request.
	reusedBefore := reused.Load()
	c.connectNow()
	if reused.Load() != reusedBefore+1 {
		t.Fatalf("the request after a parked connect did not reuse the connection (%d fresh, %d reused)", fresh.Load(), reused.Load())
	}
}

type traceTransport struct {
	rt    http.RoundTripper
	trace *httptrace.ClientTrace
}

func (t *traceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), t.trace)))
}

// TestParkedConnectTimeout: a parked connect is answered when its timeout
// passes, with a successful reply.
func TestParkedConnectTimeout(t *testing.T) {
	h := newHarness(t, Options{ParkAfter: time.Millisecond, PollTimeout: 300 * time.Millisecond})
	c := h.client().start()
	ch := c.connectAsync()
	h.waitParked(1)
	r := c.wait(ch, hWait)
	if msgs := c.checkOK(r); len(msgs) != 1 || !msgs[0].IsSuccessful() {
		t.Fatalf("timed-out parked connect: %s", r)
	}
	if r.elapsed < 250*time.Millisecond {
		t.Fatalf("parked connect answered after %v, before its timeout", r.elapsed)
	}
	if got := r.header.Get("Cache-Control"); got != "no-cache, no-store" {
		t.Errorf("Cache-Control %q", got)
	}
}

// TestParkedJSONPAndCORS: a parked callback-polling connect answers with
// the script and the cross-origin headers set before it was parked.
func TestParkedJSONPAndCORS(t *testing.T) {
	h := newHarness(t, Options{ParkAfter: time.Millisecond, AllowedOrigins: []string{"https://app.example"}})
	c := h.client().start()
	c.subscribe("/park")
	done := make(chan result, 1)
	go func() {
		q := "message=" + urlEscape(mustJSON(t, []*protocol.Message{connectMsg(c.id, nil)})) + "&jsonp=cb7"
		done <- c.do(http.MethodGet, c.url+"/connect?"+q, "", nil, http.Header{"Origin": {"https://app.example"}})
	}()
	h.waitParked(1)
	h.client().start().publish("/park", 42)
	var r result
	select {
	case r = <-done:
	case <-time.After(hWait):
		t.Fatal("parked JSONP connect not answered")
	}
	if r.status != http.StatusOK || !strings.HasPrefix(string(r.body), "/**/cb7([") || !strings.Contains(string(r.body), `"data":42`) {
		t.Fatalf("parked JSONP connect: %s", r)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Fatalf("Access-Control-Allow-Origin %q after parking", got)
	}
	if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, "text/javascript") {
		t.Fatalf("Content-Type %q", got)
	}
}

// TestParkedShutdown: BeginShutdown answers parked connects with retry
// advice and Shutdown returns.
func TestParkedShutdown(t *testing.T) {
	h := newHarness(t, Options{ParkAfter: time.Millisecond, PollTimeout: time.Minute})
	c := h.client().start()
	ch := c.connectAsync()
	h.waitParked(1)
	h.srv.BeginShutdown()
	msgs := c.checkOK(c.wait(ch, hWait))
	r := replyTo(t, msgs, protocol.MetaConnect)
	if r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectRetry {
		t.Fatalf("parked connect at shutdown: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.Stats().Parked.Load(); n != 0 {
		t.Fatalf("%d connects still parked after Shutdown", n)
	}
}

// TestParkedPipelined: a request pipelined behind a held connect (read by
// net/http already when the connect is parked) is served after it, on the
// same connection.
func TestParkedPipelined(t *testing.T) {
	h := newHarness(t, Options{ParkAfter: time.Millisecond, PollTimeout: 300 * time.Millisecond, TrustClientSession: true})
	c := h.client().start()
	conn, err := net.Dial("tcp", h.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	post := func(msgs ...*protocol.Message) string {
		body := mustJSON(t, msgs)
		return fmt.Sprintf("POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	echo := &protocol.Message{Channel: "/service/echo", ClientID: c.id, ID: "e1", Data: []byte(`"pipelined"`)}
	if _, err := io.WriteString(conn, post(connectMsg(c.id, nil))+post(echo)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(hWait))
	br := bufio.NewReader(conn)
	for i, want := range []string{`"/meta/connect"`, `"pipelined"`} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("response %d: HTTP %d %s, want %s", i+1, resp.StatusCode, body, want)
		}
	}
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "#", "%23", " ", "%20", "?", "%3F", "=", "%3D")
	return r.Replace(s)
}
