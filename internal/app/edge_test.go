package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Tests of the network edge (issue 13, findings 6 to 8 and "behind a
// proxy and over TLS"), each running the attack against the binary's
// wiring.

const handshakeJSON = `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","callback-polling"]}]`

// refused returns bayeux_refused_total{reason} from /metrics.
func refused(t *testing.T, c *http.Client, base, reason string) int {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := `bayeux_refused_total{reason="` + reason + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sc.Text(), err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics has no %s", strings.TrimSpace(prefix))
	return 0
}

// slowResult is what a client sending a body one byte at a time saw.
type slowResult struct {
	status  int
	closed  bool // the server closed the connection after answering
	elapsed time.Duration
	err     error
}

// slowLogin posts a login form to addr one byte every 100 ms (for at most
// 10 s) and reports the server's answer.
func slowLogin(addr string) slowResult {
	start := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return slowResult{err: err}
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	if _, err := fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nu", addr); err != nil {
		return slowResult{err: err}
	}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for range 100 {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return slowResult{err: err, elapsed: time.Since(start)}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r := slowResult{status: resp.StatusCode, elapsed: time.Since(start)}
	_, err = br.ReadByte()
	r.closed = err != nil && !isTimeout(err)
	return r
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Finding 6: many connections sending a /login body one byte at a time
// are cut after BAYEUX_READ_TIMEOUT, those beyond the per-IP request cap
// are refused at once, and a connect held longer than the read timeout on
// the same server is answered normally, parked or not.
func TestSlowBodiesAreCut(t *testing.T) {
	t.Parallel()
	const slots, extra = 32, 20 // BAYEUX_CLIENT_MAX_CONNECTIONS, connections beyond it
	const readTimeout = time.Second
	for _, park := range []string{"100ms", "-1s"} {
		t.Run("PARK_AFTER="+park, func(t *testing.T) {
			t.Parallel()
			r := start(t, map[string]string{
				"BAYEUX_READ_TIMEOUT":           readTimeout.String(),
				"BAYEUX_POLL_TIMEOUT":           "3s",
				"BAYEUX_PARK_AFTER":             park,
				"BAYEUX_CLIENT_MAX_CONNECTIONS": strconv.Itoa(slots),
			})
			stats := r.app.Bayeux.Stats()
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			// A connection given back after parking is new to net/http,
			// which waits 5 s before it calls it idle at shutdown.
			t.Cleanup(c.CloseIdleConnections)
			id := post(t, c, r.url+"/cometd", handshakeJSON)[0].ClientID
			post(t, c, r.url+"/cometd", `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}}]`)
			type heldResult struct {
				msgs []protocol.Message
				took time.Duration
			}
			held := make(chan heldResult, 1)
			heldAt := time.Now()
			go func() {
				msgs := post(t, c, r.url+"/cometd", `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling"}]`)
				held <- heldResult{msgs, time.Since(heldAt)}
			}()
			testutil.Eventually(t, 5*time.Second, func() bool { return stats.HeldConnects.Load() == 1 }, "the connect held")
			if park != "-1s" {
				testutil.Eventually(t, 5*time.Second, func() bool { return stats.Parked.Load() == 1 }, "the connect parked")
			}

			addr := strings.TrimPrefix(r.url, "http://")
			results := make(chan slowResult, slots+extra)
			// The held connect has one of the address's slots.
			for range slots - 1 + extra {
				go func() { results <- slowLogin(addr) }()
			}
			cut, tooMany := 0, 0
			deadline := time.After(readTimeout + 5*time.Second)
			for range slots - 1 + extra {
				select {
				case res := <-results:
					switch {
					case res.err != nil:
						t.Errorf("slow body: %v after %v", res.err, res.elapsed)
					case res.status == http.StatusTooManyRequests:
						tooMany++
					case res.status >= 400 && res.status < 500 && res.closed:
						cut++
						if res.elapsed < readTimeout-100*time.Millisecond {
							t.Errorf("slow body cut after %v, before the read timeout", res.elapsed)
						}
					default:
						t.Errorf("slow body: HTTP %d, connection closed %v", res.status, res.closed)
					}
				case <-deadline:
					t.Fatalf("slow bodies still open after %v (%d cut, %d refused)", readTimeout+5*time.Second, cut, tooMany)
				}
			}
			if cut != slots-1 || tooMany != extra {
				t.Errorf("%d slow bodies cut, %d refused with 429; want %d and %d", cut, tooMany, slots-1, extra)
			}
			if n := refused(t, c, r.url, "body_timeout"); n != slots-1 {
				t.Errorf(`bayeux_refused_total{reason="body_timeout"} = %d, want %d`, n, slots-1)
			}
			if n := refused(t, c, r.url, "ip_requests"); n != extra {
				t.Errorf(`bayeux_refused_total{reason="ip_requests"} = %d, want %d`, n, extra)
			}

			select {
			case h := <-held:
				last := h.msgs[len(h.msgs)-1]
				if last.Channel != protocol.MetaConnect || !last.IsSuccessful() {
					t.Errorf("held connect answered %+v", h.msgs)
				}
				if h.took < 3*time.Second-200*time.Millisecond {
					t.Errorf("held connect answered after %v, before its poll timeout", h.took)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("held connect not answered")
			}
		})
	}
}

// Finding 6: one address cannot hold more than BAYEUX_MAX_CONNS_PER_IP
// connections, whatever the route (here idle keep-alive ones).
func TestConnectionsPerIPCapped(t *testing.T) {
	t.Parallel()
	const max = 5
	r := start(t, map[string]string{"BAYEUX_MAX_CONNS_PER_IP": strconv.Itoa(max)})
	addr := strings.TrimPrefix(r.url, "http://")
	healthz := func(conn net.Conn) error {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	}
	var conns []net.Conn
	for i := range max {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := healthz(conn); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		conns = append(conns, conn)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := healthz(extra); err == nil || isTimeout(err) {
		t.Fatalf("connection %d: %v, want it closed by the server", max+1, err)
	}
	// (Read from the server: /metrics would be one connection too many.)
	if n := r.app.Bayeux.Stats().Refused.Load("ip_conns"); n != 1 {
		t.Errorf(`refused ip_conns = %d, want 1`, n)
	}
	conns[0].Close()
	testutil.Eventually(t, 5*time.Second, func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer conn.Close()
		return healthz(conn) == nil
	}, "a connection once another closed")
}

// login logs user in through the /login form and returns the response.
func login(t *testing.T, c *http.Client, base, user string, hdr http.Header) *http.Response {
	t.Helper()
	form := url.Values{"user": {user}, "password": {testutil.Password(user)}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d", resp.StatusCode)
	}
	return resp
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Finding 7: JSONP carries the login cookie from any page that includes
// the script. Callback-polling from another site is refused, and a
// callback-polling session is never logged in by cookie.
func TestJSONPNeverLogsInByCookie(t *testing.T) {
	t.Parallel()
	r := start(t, map[string]string{"BAYEUX_USERS_FILE": testutil.WriteUsers(t, "", "alice")})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirects}
	login(t, c, r.url, "alice", http.Header{"Origin": {r.url}, "Sec-Fetch-Site": {"same-origin"}})

	jsonp := func(callback, site string, msgs string) (int, []protocol.Message) {
		t.Helper()
		q := url.Values{"jsonp": {callback}, "message": {msgs}}
		req, _ := http.NewRequest(http.MethodGet, r.url+"/cometd/connect?"+q.Encode(), nil)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		inner, ok := strings.CutPrefix(string(b), "/**/"+callback+"(")
		if !ok || !strings.HasSuffix(inner, ");") {
			t.Fatalf("JSONP body %s", b)
		}
		var out []protocol.Message
		if err := json.Unmarshal([]byte(strings.TrimSuffix(inner, ");")), &out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	for _, site := range []string{"same-site", "cross-site"} {
		if st, _ := jsonp("cb", site, handshakeJSON); st != http.StatusForbidden {
			t.Errorf("JSONP handshake with the login cookie, Sec-Fetch-Site %s: HTTP %d, want 403", site, st)
		}
	}
	if st, _ := jsonp("opener.cb", "", handshakeJSON); st != http.StatusBadRequest {
		t.Errorf("dotted callback name: HTTP %d, want 400", st)
	}

	// Without Sec-Fetch-Site (an old browser): the handshake works, but
	// the session is anonymous and cannot chat as alice.
	st, msgs := jsonp("cb", "", handshakeJSON)
	if st != http.StatusOK || !msgs[0].IsSuccessful() {
		t.Fatalf("JSONP handshake: HTTP %d %+v", st, msgs)
	}
	id := msgs[0].ClientID
	_, msgs = jsonp("cb", "", `[{"channel":"/chat/demo","clientId":"`+id+`","data":{"chat":"as alice?"},"id":"p1"}]`)
	if len(msgs) == 0 || msgs[len(msgs)-1].IsSuccessful() || !strings.Contains(msgs[len(msgs)-1].Error, "login_required") {
		t.Errorf("JSONP publish to /chat/demo with alice's cookie: %+v, want 403::login_required", msgs)
	}

	// The same cookie over long-polling (which browsers send with
	// Origin, checked by CORS) is alice.
	id = post(t, c, r.url+"/cometd", handshakeJSON)[0].ClientID
	msgs = post(t, c, r.url+"/cometd", `[{"channel":"/chat/demo","clientId":"`+id+`","data":{"chat":"hi"},"id":"p2"}]`)
	if !msgs[len(msgs)-1].IsSuccessful() {
		t.Errorf("long-polling publish with the login cookie: %+v", msgs)
	}
	if n := refused(t, c, r.url, "jsonp_cross_site"); n != 2 {
		t.Errorf(`bayeux_refused_total{reason="jsonp_cross_site"} = %d, want 2`, n)
	}
}

// Behind a proxy: X-Forwarded-For and X-Forwarded-Proto are believed only
// from BAYEUX_TRUSTED_PROXIES, for per-IP limits, the session's address
// and Secure cookies.
func TestTrustedProxyHeaders(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		trusted string
		secure  bool
		ip      string
		shared  bool // two forwarded clients share one per-IP limit
	}
	for _, tc := range []testCase{
		{name: "no trusted proxy", ip: "127.0.0.1", shared: true},
		{name: "loopback proxy trusted", trusted: "127.0.0.1/32", secure: true, ip: "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, map[string]string{
				"BAYEUX_USERS_FILE":             testutil.WriteUsers(t, "", "alice"),
				"BAYEUX_TRUSTED_PROXIES":        tc.trusted,
				"BAYEUX_CLIENT_MAX_CONNECTIONS": "1",
				"BAYEUX_TRUST_CLIENT_SESSION":   "true", // no cookie jar: Secure cookies do not come back over http
				"BAYEUX_POLL_TIMEOUT":           "5s",
			})
			c := &http.Client{CheckRedirect: noRedirects}
			from := func(ip string) http.Header {
				return http.Header{"X-Forwarded-For": {"203.0.113.1, " + ip}, "X-Forwarded-Proto": {"https"}}
			}
			secure := func(resp *http.Response, name string) {
				t.Helper()
				for _, ck := range resp.Cookies() {
					if ck.Name == name {
						if ck.Secure != tc.secure {
							t.Errorf("cookie %s Secure = %v, want %v", name, ck.Secure, tc.secure)
						}
						return
					}
				}
				t.Errorf("no cookie %s", name)
			}
			secure(login(t, c, r.url, "alice", from("198.51.100.7")), "bayeux_login")

			bayeux := func(hdr http.Header, body string) (*http.Response, []protocol.Message) {
				req, _ := http.NewRequest(http.MethodPost, r.url+"/cometd", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range hdr {
					req.Header[k] = v
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return nil, nil
				}
				defer resp.Body.Close()
				var msgs []protocol.Message
				if resp.StatusCode == http.StatusOK {
					json.NewDecoder(resp.Body).Decode(&msgs)
				}
				return resp, msgs
			}
			resp, msgs := bayeux(from("198.51.100.7"), handshakeJSON)
			secure(resp, "BAYEUX_BROWSER")
			id := msgs[0].ClientID
			infos, err := r.app.Bayeux.Engine().(server.SessionLister).ListSessions(context.Background())
			if err != nil || len(infos) != 1 || infos[0].RemoteAddr != tc.ip {
				t.Errorf("sessions %v (%v), want one from %s", infos, err, tc.ip)
			}

			// The session's held connect takes its address's one slot.
			bayeux(from("198.51.100.7"), `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}}]`)
			go bayeux(from("198.51.100.7"), `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling"}]`)
			stats := r.app.Bayeux.Stats()
			testutil.Eventually(t, 5*time.Second, func() bool { return stats.HeldConnects.Load() == 1 }, "the connect held")
			want := http.StatusOK
			if tc.shared {
				want = http.StatusTooManyRequests
			}
			if resp, _ := bayeux(from("198.51.100.8"), handshakeJSON); resp == nil || resp.StatusCode != want {
				t.Errorf("another forwarded client while the connect is held: %v, want HTTP %d", resp, want)
			}
			if resp, _ := bayeux(from("198.51.100.7"), handshakeJSON); resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("the held connect's address again: %v, want HTTP 429", resp)
			}
		})
	}
}
