package abuse

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Slow bodies (issue 13, finding 6).
const (
	slowConns = 300 // a few hundred
	// slowAddresses share them on loopback: 100 each, the default
	// per-address request cap, so that all are held by the server until
	// cut. Elsewhere all come from this host's address, and the caps
	// refuse most of them at once.
	slowAddresses = 3
	slowByteEvery = 250 * time.Millisecond
	// slowMargin is how long after the read timeout a slow body may
	// still be open (scheduling on a busy machine).
	slowMargin = 3 * time.Second
)

// slowLimit bounds the slow-bodies attack: the read timeout, the margin,
// and a held connect's poll timeout when it is short enough to wait for.
func slowLimit(e *env) time.Duration {
	return e.t.limits.ReadTimeout + slowMargin + e.t.limits.PollTimeout + 10*time.Second
}

// slowOutcome is what one slow connection saw.
type slowOutcome struct {
	status  int // the answer's status (0: none)
	closed  bool
	elapsed time.Duration
	err     error // dial error
}

// slowObs is what the slow-bodies attack saw.
type slowObs struct {
	conns       []slowOutcome
	readTimeout time.Duration
	loopback    bool
	// health is the /healthz answer from another attacker while the
	// slow bodies were open; handshake the Bayeux handshake's.
	health    answer
	handshake string
	// held is the outcome of a connect held across the read timeout
	// ("" = not tried: the poll timeout is too long to wait for).
	held     string
	heldTook time.Duration
	poll     time.Duration
}

// slowBodies is finding 6 of issue 13: a few hundred connections each
// sending a /login body one byte every 250 ms. Each must be cut after the
// read timeout (or refused at once by a per-address cap), and meanwhile
// the server must answer others: /healthz, a handshake, and a connect
// held longer than the read timeout.
func slowBodies(ctx context.Context, e *env) Result {
	addrs := 1
	if e.loopback {
		addrs = slowAddresses
	}
	n := slowConns
	rt := e.t.limits.ReadTimeout
	o := slowObs{readTimeout: rt, loopback: e.loopback, poll: e.t.limits.PollTimeout}
	from := "this host's address"
	if addrs > 1 {
		from = fmt.Sprintf("%d addresses", addrs)
	}
	tried := fmt.Sprintf("%d connections from %s sending a /login body one byte every %v (read timeout %v), while another client uses the server",
		n, from, slowByteEvery, rt)

	other := e.peer()
	// A connect held across the read timeout, when it is quick to wait
	// for.
	heldDone := make(chan struct{})
	if o.poll <= 10*time.Second {
		s, err := other.session(ctx, nil)
		if err != nil {
			return errorResult("slow-bodies", tried, err)
		}
		defer s.disconnect()
		if c := s.connect(ctx, nil); c.reply(protocol.MetaConnect) == nil {
			return errorResult("slow-bodies", tried, fmt.Errorf("first connect: %s", c.describe(protocol.MetaConnect)))
		}
		go func() {
			defer close(heldDone)
			start := time.Now()
			c := s.hold(ctx)
			o.heldTook = time.Since(start)
			o.held = c.describe(protocol.MetaConnect)
		}()
	} else {
		close(heldDone)
	}

	var wg sync.WaitGroup
	o.conns = make([]slowOutcome, n)
	opened := make(chan struct{}, n)
	for i := range n {
		ip := "" // one address elsewhere: this host's
		if e.loopback {
			ip = fmt.Sprintf("127.66.200.%d", i%addrs+1)
		}
		wg.Go(func() { o.conns[i] = slowPost(ctx, e.base.Scheme, e.base.Host, ip, rt+slowMargin, opened) })
	}
	// Once they are all sending, another client uses the server.
	for range n {
		select {
		case <-opened:
		case <-ctx.Done():
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	o.health = other.do(hctx, http.MethodGet, "/healthz", nil, nil)
	cancel()
	hctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	if s, b := e.sameAddress(other).handshake(hctx, nil); s != nil {
		o.handshake = "successful"
		defer s.disconnect()
	} else {
		o.handshake = b.describe(protocol.MetaHandshake)
	}
	cancel()
	wg.Wait()
	<-heldDone
	return judgeSlow(tried, o)
}

// slowPost opens a connection from ip (""= any) to host, sends /login
// headers with a Content-Length of 4 KB (then says so on opened) and a
// byte every slowByteEvery, and reports how the server ended it: an
// answer, a close, or nothing within wait (the connection is then closed
// by us).
func slowPost(ctx context.Context, scheme, host, ip string, wait time.Duration, opened chan<- struct{}) slowOutcome {
	start := time.Now()
	signal := sync.OnceFunc(func() { opened <- struct{}{} })
	defer signal()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return slowOutcome{err: err, elapsed: time.Since(start)}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	if scheme == "https" {
		h, _, _ := net.SplitHostPort(host)
		tc := tls.Client(conn, &tls.Config{ServerName: h, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			return slowOutcome{err: err, elapsed: time.Since(start)}
		}
		conn = tc
	}
	if _, err := fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\nu", host); err != nil {
		// Closed at once (a per-address connection cap).
		return slowOutcome{closed: true, elapsed: time.Since(start)}
	}
	signal()
	done := make(chan struct{})
	defer close(done)
	go func() {
		// The body, a byte at a time, until the server ends it.
		t := time.NewTicker(slowByteEvery)
		defer t.Stop()
		for range 4000 {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		// Closed without an answer (a per-address connection cap), or
		// still open at the deadline.
		return slowOutcome{closed: !isTimeout(err), elapsed: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	out := slowOutcome{status: resp.StatusCode, elapsed: time.Since(start)}
	// After cutting a body the server closes the connection.
	_, err = br.ReadByte()
	out.closed = err != nil && !isTimeout(err)
	return out
}

// judgeSlow: every slow connection ended by the server (answered with a
// 4xx or closed) within the read timeout plus a margin; meanwhile
// /healthz answered (200 from an address of its own; on one shared
// address a prompt 429 says the cap protects the server), a handshake
// worked, and a connect held across the read timeout was answered
// normally.
func judgeSlow(tried string, o slowObs) Result {
	var f findings
	cut, refused, open, failed := 0, 0, 0, 0
	var longest time.Duration
	statuses := map[int]int{}
	for _, c := range o.conns {
		switch {
		case c.err != nil:
			failed++
		case c.status == http.StatusTooManyRequests || (c.status == 0 && c.closed && c.elapsed < o.readTimeout/2):
			refused++
		case (c.status >= 400 && c.status < 500) || (c.status == 0 && c.closed):
			cut++
			longest = max(longest, c.elapsed)
			statuses[c.status]++
		default:
			open++
			if c.status != 0 {
				f.fail("a slow body was answered HTTP %d", c.status)
			}
		}
	}
	f.note("%d cut after at most %v (%s), %d refused at once, %d still open after %v, %d could not connect",
		cut, longest.Round(10*time.Millisecond), statusList(statuses), refused, open, o.readTimeout+slowMargin, failed)
	f.check(open > 0, "%d slow bodies still open %v after the read timeout", open, slowMargin)
	f.check(failed > len(o.conns)/2, "%d of %d connections failed to connect", failed, len(o.conns))
	switch {
	case o.health.err != nil:
		f.fail("/healthz meanwhile: %v", o.health.err)
	case o.health.status == http.StatusOK:
		f.note("/healthz meanwhile: 200 in %v", o.health.took.Round(time.Millisecond))
	case o.health.status == http.StatusTooManyRequests && !o.loopback:
		f.note("/healthz meanwhile from the same address: 429 in %v (the per-address cap)", o.health.took.Round(time.Millisecond))
	default:
		f.fail("/healthz meanwhile: HTTP %d", o.health.status)
	}
	f.note("a handshake meanwhile: %s", o.handshake)
	f.check(o.handshake != "successful" && o.loopback, "a handshake from another address failed meanwhile: %s", o.handshake)
	if o.held != "" {
		f.note("a connect held across the read timeout: %s after %v", o.held, o.heldTook.Round(10*time.Millisecond))
		f.check(o.held != "successful" || o.heldTook < o.poll-time.Second/2, "a held connect was cut: %s after %v (poll timeout %v)", o.held, o.heldTook, o.poll)
	}
	return f.result("slow-bodies", tried)
}

func statusList(m map[int]int) string {
	s := ""
	for _, code := range []int{0, 400, 408, 413, 429} {
		if n := m[code]; n > 0 {
			if s != "" {
				s += ", "
			}
			if code == 0 {
				s += fmt.Sprintf("%d closed", n)
			} else {
				s += fmt.Sprintf("%d HTTP %d", n, code)
			}
		}
	}
	for code, n := range m {
		if code != 0 && code != 400 && code != 408 && code != 413 && code != 429 {
			s += fmt.Sprintf(", %d HTTP %d", n, code)
		}
	}
	return s
}
