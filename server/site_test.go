package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// Forwarding headers decide the client's address and scheme only when
// they come from a trusted proxy: per-IP limits, Client.RemoteAddr and
// the Secure flag of the browser cookie follow.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		trusted []string
		// wantIP is the address sessions get; sameIP whether two
		// clients with different X-Forwarded-For share one limit.
		wantIP string
		sameIP bool
		secure bool
	}
	for _, tc := range []testCase{
		{name: "untrusted peer", wantIP: "127.0.0.1", sameIP: true},
		{name: "other network trusted", trusted: []string{"10.0.0.0/8"}, wantIP: "127.0.0.1", sameIP: true},
		{name: "trusted proxy", trusted: []string{"127.0.0.0/8"}, wantIP: "198.51.100.1", secure: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{TrustedProxies: tc.trusted, ClientMaxConnections: 1})
			fwd := func(ip string) http.Header {
				return http.Header{"X-Forwarded-For": {"203.0.113.66, " + ip}, "X-Forwarded-Proto": {"https"}}
			}
			a := h.client()
			r := a.sendH(fwd("198.51.100.1"), handshakeMsg())
			hs := only(t, a.checkOK(r), protocol.MetaHandshake)
			a.id = hs.ClientID
			var browser *http.Cookie
			for _, ck := range (&http.Response{Header: r.header}).Cookies() {
				if ck.Name == BrowserCookie {
					browser = ck
				}
			}
			if browser == nil || browser.Secure != tc.secure {
				t.Errorf("%s cookie %+v, want Secure %v", BrowserCookie, browser, tc.secure)
			}
			ev := h.events.wait(t, "client_connect", func(ev Event) bool { return ev.Kind == EventClientConnect && ev.ClientID == a.id })
			if ev.RemoteAddr != tc.wantIP {
				t.Errorf("RemoteAddr = %q, want %q", ev.RemoteAddr, tc.wantIP)
			}
			// a's held connect takes its address's one request slot.
			a.connectNow()
			held := make(chan result, 1)
			go func() { held <- a.sendH(fwd("198.51.100.1"), connectMsg(a.id, nil)) }()
			h.waitHeld(1)
			wantB := http.StatusOK
			if tc.sameIP {
				wantB = http.StatusTooManyRequests
			}
			if r := h.client().sendH(fwd("198.51.100.2"), handshakeMsg()); r.status != wantB {
				t.Errorf("another client while a's connect is held: %v, want HTTP %d", r, wantB)
			}
			if r := h.client().sendH(fwd("198.51.100.1"), handshakeMsg()); r.status != http.StatusTooManyRequests {
				t.Errorf("a's address again while its connect is held: %v, want HTTP 429", r)
			}
		})
	}
}

// Site caps concurrent requests per client IP on every route, not only
// the Bayeux endpoint, and shares the budget with it.
func TestSiteLimitsEveryRoute(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{ClientMaxConnections: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	hs := httptest.NewServer(srv.Site(SiteOptions{ContentHandlers: map[string]http.Handler{
		"/slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		}),
	}}))
	t.Cleanup(func() {
		hs.Close()
		srv.Shutdown(context.Background())
	})
	t.Cleanup(func() { close(release) })
	get := func(path string) int {
		resp, err := hs.Client().Get(hs.URL + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 2 {
		go get("/slow")
		<-entered
	}
	if st := get("/slow"); st != http.StatusTooManyRequests {
		t.Errorf("third concurrent /slow: HTTP %d, want 429", st)
	}
	if st := get("/missing"); st != http.StatusTooManyRequests {
		t.Errorf("document root while two requests run: HTTP %d, want 429", st)
	}
	resp, err := hs.Client().Post(hs.URL+"/cometd", "application/json", strings.NewReader(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("Bayeux handshake while two requests run: HTTP %d, want 429", resp.StatusCode)
	}
	if n := srv.Stats().Refused.Load(RefusedIPRequests); n != 3 {
		t.Errorf("refused %s = %d, want 3", RefusedIPRequests, n)
	}
}

// The http.Server's ReadTimeout cuts a slow Bayeux body with 408 and
// counts it, but a held connect outlives it, parked or not: net/http
// lifts the deadline once the body is read.
func TestReadTimeoutSparesHeldConnects(t *testing.T) {
	t.Parallel()
	const readTimeout = 200 * time.Millisecond
	for _, park := range []time.Duration{10 * time.Millisecond, -1} {
		t.Run(fmt.Sprintf("ParkAfter %v", park), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{ParkAfter: park, PollTimeout: 4 * readTimeout},
				func(hs *http.Server) { hs.ReadTimeout = readTimeout })
			c := h.client().start()
			start := time.Now()
			r := c.wait(c.connectAsync(), hWait)
			if m := replyTo(t, r.msgs, protocol.MetaConnect); !m.IsSuccessful() {
				t.Fatalf("held connect: %+v", m)
			}
			if el := time.Since(start); el < 4*readTimeout-50*time.Millisecond {
				t.Errorf("held connect answered after %v, before its poll timeout", el)
			}
			if park > 0 && h.srv.Stats().Parked.Load() != 0 {
				t.Errorf("still parked")
			}

			// A body that stops coming is cut.
			conn, err := net.Dial("tcp", h.hs.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
			conn.SetReadDeadline(time.Now().Add(hWait))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("slow body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("slow body: HTTP %d, want 408", resp.StatusCode)
			}
			if n := h.srv.Stats().Refused.Load(RefusedBodyTimeout); n != 1 {
				t.Errorf("refused %s = %d, want 1", RefusedBodyTimeout, n)
			}
		})
	}
}

// A slow body on any other route of Site is counted too.
func TestSiteCountsBodyTimeouts(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Site(SiteOptions{ContentHandlers: map[string]http.Handler{
		"/form": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
			}
		}),
	}}))
	hs.Config.ReadTimeout = 100 * time.Millisecond
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		srv.Shutdown(context.Background())
	})
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\na")
	conn.SetReadDeadline(time.Now().Add(hWait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Errorf("slow form: HTTP %d (close %v), want 400 and the connection closed", resp.StatusCode, resp.Close)
	}
	testutil.Eventually(t, hWait, func() bool { return srv.Stats().Refused.Load(RefusedBodyTimeout) == 1 }, "the cut body counted")
}
