package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// parkKey is the connection-context key under which Serve records the
// listener that takes parked connections back.
type parkKey struct{}

// Serve accepts connections on ln and serves them with hs, as hs.Serve(ln)
// does, and lets s park their held long-polling connects: after
// Options.ParkAfter, a connect that still waits is taken from net/http
// (hijacked) and waits with no goroutine and no buffers; the goroutine that
// wakes it writes the response, and the connection goes back to hs as if
// newly accepted, so keep-alive goes on. Without Serve (s mounted on any
// other http.Server), connects are held on their request's goroutine.
//
// Serve sets hs.ConnContext (calling the one already set first), and caps
// the connections of one peer at Options.MaxConnsPerIP. For TLS use
// ServeTLS. Serve returns when hs does; parked connections are answered
// by BeginShutdown like every held connect and then closed.
//
// Slow clients: set hs.ReadHeaderTimeout, and hs.ReadTimeout to bound how
// long one request's headers and body may take (a request cut by it is
// answered 408 and counted as RefusedBodyTimeout). It does not cut held
// connects: net/http lifts the read deadline once it has read a request's
// body (when it starts watching the connection for the client going away),
// and parking and WebSockets take the connection without a deadline.
func (s *Server) Serve(hs *http.Server, ln net.Listener) error {
	return hs.Serve(parkOn(hs, s.limitConns(ln)))
}

// ServeTLS is Serve over TLS: ln is the plain TCP listener and
// hs.TLSConfig gives the certificates (Certificates, GetCertificate or
// GetConfigForClient). Unless hs.TLSConfig.NextProtos or hs.Protocols say
// otherwise, HTTP/2 is offered next to HTTP/1.1 (ALPN): ServeTLS sets
// hs.TLSConfig to a copy that says so. The TLS handshake is bounded by
// hs.ReadHeaderTimeout, as in net/http.
//
// Over HTTP/2 a held connect is one stream of the browser's one
// connection: nothing is parked (each held connect keeps its goroutine),
// and connects are not limited per browser (MaxSessionsPerBrowser), since
// they block nothing; hs's HTTP/2 settings bound the streams of one
// connection (250 by default). Over TLS with HTTP/1.1, long-polls are
// parked as over plain TCP (the *tls.Conn is what waits), but idle
// WebSockets keep a goroutine each: the poller can only watch plain TCP
// (the TLS layer may hold decrypted bytes epoll cannot see). WebSockets
// always use HTTP/1.1 (Go's HTTP/2 server does not offer RFC 8441).
func (s *Server) ServeTLS(hs *http.Server, ln net.Listener) error {
	cfg := hs.TLSConfig
	if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return errors.New("bayeux: ServeTLS needs hs.TLSConfig with a certificate")
	}
	cfg = cfg.Clone()
	if len(cfg.NextProtos) == 0 {
		if hs.Protocols == nil || hs.Protocols.HTTP2() {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		} else {
			cfg.NextProtos = []string{"http/1.1"}
		}
	}
	// net/http sets up HTTP/2 for a TLS listener when hs.TLSConfig
	// offers "h2".
	hs.TLSConfig = cfg
	return hs.Serve(parkOn(hs, tls.NewListener(s.limitConns(ln), cfg)))
}

// parkOn returns ln wrapped to take parked connections back, and makes hs
// mark the connections it serves with it.
func parkOn(hs *http.Server, ln net.Listener) net.Listener {
	l := &parkListener{Listener: ln, back: make(chan net.Conn, 256), done: make(chan struct{}),
		accepted: make(chan acceptResult)}
	prev := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		return gatherContext(context.WithValue(ctx, parkKey{}, l), c)
	}
	return l
}

// parkListener is a listener that also returns the connections given back
// after a parked connect was answered.
type parkListener struct {
	net.Listener
	back     chan net.Conn
	accepted chan acceptResult
	done     chan struct{}
	start    sync.Once
	stop     sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

// Accept returns the next connection given back or accepted.
func (l *parkListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.back:
		return c, nil
	default:
	}
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *parkListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if c != nil {
			c = gatherOn(c)
		}
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !isTemporary(err) {
			return // the listener is closed or broken: Serve returns
		}
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Close closes the listener; connections given back afterwards are closed.
func (l *parkListener) Close() error {
	var err error
	l.stop.Do(func() {
		close(l.done)
		err = l.Listener.Close()
		// Connections given back but not accepted again.
		for {
			select {
			case c := <-l.back:
				c.Close()
			default:
				return
			}
		}
	})
	return err
}

// giveBack hands c to the http.Server again. pre holds bytes the client
// sent after the parked request (pipelining), read by net/http already.
func (l *parkListener) giveBack(c net.Conn, pre []byte) {
	if len(pre) > 0 {
		c = &prefixConn{Conn: c, pre: pre}
	}
	select {
	case <-l.done:
		c.Close()
		return
	default:
	}
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// holdLongPoll holds x's connect. It reports true when the connect was
// parked: the handler must return without touching w, x or the IP slot
// again (the parked connection answers and releases them).
func (s *Server) holdLongPoll(w http.ResponseWriter, r *http.Request, x *exchange, callback string) bool {
	h := x.hold
	if !h.start(nil) {
		return false
	}
	// Until parked, a client that goes away ends the wait.
	gone := r.Context().Done()
	l, _ := r.Context().Value(parkKey{}).(*parkListener)
	if l == nil || s.opts.ParkAfter < 0 || r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Close {
		h.Wait(gone)
		return false
	}
	t := time.NewTimer(s.opts.ParkAfter)
	defer t.Stop()
	select {
	case <-h.woken:
		return false
	case <-gone:
		h.cancel()
		<-h.woken
		return false
	case <-t.C:
	}
	select {
	case <-h.woken:
		// Woken as the timer fired (a busy server runs this handler late):
		// answered here, without the cost of parking.
		return false
	default:
	}
	// The headers set so far (CORS, cookies), written now: the map is
	// not kept.
	var hdr bytes.Buffer
	if err := w.Header().Write(&hdr); err != nil {
		h.Wait(gone)
		return false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.Wait(gone) // not HTTP/1 or a wrapper that cannot hijack
		return false
	}
	p := &parkedConn{conn: conn, l: l, x: x, callback: callback}
	if hdr.Len() > 0 {
		p.header = bytes.Clone(hdr.Bytes())
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		p.pre = bytes.Clone(b)
	}
	// What only the handler needed is let go (the browser cookie's value
	// keeps the whole Cookie header).
	x.req = nil
	x.clients = nil
	x.browser = ""
	h.c.req.Store(nil)
	s.stats.Parked.Add(1)
	if !h.park(p) {
		p.respond() // woken while parking
	}
	return true
}

// parkedConn is a hijacked connection whose connect waits. It holds the
// IP slot of x.remoteAddr (ServeHTTP's) until it has answered.
type parkedConn struct {
	conn     net.Conn
	pre      []byte
	l        *parkListener
	x        *exchange
	header   []byte // "Key: value\r\n" lines
	callback string
}

// respond writes the connect's response on the connection and gives the
// connection back to the http.Server.
func (p *parkedConn) respond() {
	x := p.x
	s := x.s
	defer s.ips.release(x.remoteAddr)
	s.stats.Parked.Add(-1)
	body, ctype, err := s.responseBody(x, p.callback)
	if err != nil {
		s.log.Error("encode response failed", "err", err)
		x.done()
		p.conn.Close()
		return
	}
	buf := make([]byte, 0, len(p.header)+len(body)+160)
	buf = append(buf, "HTTP/1.1 200 OK\r\nCache-Control: no-cache, no-store\r\nX-Content-Type-Options: nosniff\r\n"...)
	buf = append(buf, p.header...)
	buf = append(buf, "Content-Type: "...)
	buf = append(buf, ctype...)
	buf = append(buf, "\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(body)), 10)
	buf = append(buf, "\r\nDate: "...)
	buf = time.Now().UTC().AppendFormat(buf, http.TimeFormat)
	buf = append(buf, "\r\n\r\n"...)
	buf = append(buf, body...)
	_ = p.conn.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	_, err = p.conn.Write(buf)
	x.done()
	if _, isTLS := p.conn.(*tls.Conn); err != nil || s.closing.Load() || len(p.pre) > 0 && isTLS {
		// Pipelined bytes cannot be put back under a *tls.Conn (a
		// wrapper would hide it from net/http): the client retries
		// them on a new connection, as after any keep-alive close.
		p.conn.Close()
		return
	}
	_ = p.conn.SetDeadline(time.Time{})
	p.l.giveBack(p.conn, p.pre)
}
