package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// RawLongPolling is the long-polling transport over a minimal HTTP/1.1
// client: each simulated client keeps its own keep-alive connections
// (usually two: the held connect and everything else) and does its
// request and reply on the calling goroutine, with no per-connection
// goroutines, channels or header maps. A load generator with one core
// for a thousand clients spends most of its time in the HTTP client;
// this one costs about half of net/http's (see LongPolling, kept for
// cross-checks with -http std).
//
// It speaks what Bayeux servers answer: a status line, headers
// (Content-Length, Transfer-Encoding: chunked, Connection: close,
// Set-Cookie) and a body; cookies are kept per connection set (one
// browser per simulated client) by name, without path or expiry rules.
type RawLongPolling struct {
	u      *url.URL
	addr   string // host:port to dial
	host   string // Host header
	path   string // request target
	tlsCfg *tls.Config
	dialer net.Dialer
}

// NewRawLongPolling returns the raw long-polling transport for rawURL.
func NewRawLongPolling(rawURL string) (*RawLongPolling, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	t := &RawLongPolling{u: u, host: u.Host, path: u.RequestURI(), dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		t.tlsCfg = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	default:
		return nil, fmt.Errorf("bench: unsupported scheme %q", u.Scheme)
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	return t, nil
}

// ConnectionType implements Transport.
func (t *RawLongPolling) ConnectionType() string { return "long-polling" }

// Close implements Transport; connections belong to their rawConn.
func (t *RawLongPolling) Close() {}

// Dial implements Transport. No connection is opened until the first
// request.
func (t *RawLongPolling) Dial(Push) (Conn, error) {
	return &rawConn{t: t}, nil
}

type rawConn struct {
	t       *RawLongPolling
	mu      sync.Mutex
	free    []*httpConn
	cookies []rawCookie
	closed  bool
}

type rawCookie struct{ name, value string }

type httpConn struct {
	c        net.Conn
	br       *bufio.Reader
	out      []byte
	reused   bool // served a request before
	gotBytes bool // some of the current reply arrived
}

// isStale reports whether err is what a write to or read from a
// connection the peer closed gives.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (rc *rawConn) get(ctx context.Context, fresh bool) (*httpConn, error) {
	rc.mu.Lock()
	if n := len(rc.free); n > 0 && !fresh {
		hc := rc.free[n-1]
		rc.free = rc.free[:n-1]
		rc.mu.Unlock()
		hc.reused, hc.gotBytes = true, false
		return hc, nil
	}
	rc.mu.Unlock()
	c, err := rc.t.dialer.DialContext(ctx, "tcp", rc.t.addr)
	if err != nil {
		return nil, err
	}
	if rc.t.tlsCfg != nil {
		tc := tls.Client(c, rc.t.tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	return &httpConn{c: c, br: bufio.NewReaderSize(c, 8<<10)}, nil
}

func (rc *rawConn) put(hc *httpConn) {
	rc.mu.Lock()
	if rc.closed || len(rc.free) >= 4 {
		rc.mu.Unlock()
		hc.c.Close()
		return
	}
	rc.free = append(rc.free, hc)
	rc.mu.Unlock()
}

// ResetCookies forgets the cookies: the connection becomes a new browser.
func (rc *rawConn) ResetCookies() {
	rc.mu.Lock()
	rc.cookies = rc.cookies[:0]
	rc.mu.Unlock()
}

// Close implements Conn.
func (rc *rawConn) Close() error {
	rc.mu.Lock()
	free := rc.free
	rc.free, rc.closed = nil, true
	rc.mu.Unlock()
	for _, hc := range free {
		hc.c.Close()
	}
	return nil
}

// RoundTrip implements Conn.
//
// A request that fails on a reused connection before any byte of the
// reply arrived is sent once more on a new connection: the server closed
// the idle connection (Node's keepAliveTimeout, for example) and never saw
// the request. net/http does the same.
func (rc *rawConn) RoundTrip(ctx context.Context, kind Kind, batch, dst []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		body, err := rc.roundTrip(ctx, batch, dst, attempt > 0)
		if errors.Is(err, errStaleConn) && attempt == 0 {
			continue
		}
		if errors.Is(err, errStaleConn) {
			err = io.ErrUnexpectedEOF
		}
		return body, err
	}
}

// errStaleConn is a reused connection that was closed before the reply
// began.
var errStaleConn = errors.New("bench: connection closed by the server before the reply")

func (rc *rawConn) roundTrip(ctx context.Context, batch, dst []byte, fresh bool) ([]byte, error) {
	hc, err := rc.get(ctx, fresh)
	if err != nil {
		return dst, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = hc.c.SetDeadline(d)
	} else {
		_ = hc.c.SetDeadline(time.Time{})
	}
	// Cancelling ctx unblocks the read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = hc.c.SetDeadline(time.Unix(1, 0)) })
	body, keep, err := rc.exchange(hc, batch, dst)
	if err != nil && hc.reused && !hc.gotBytes && ctx.Err() == nil && isStale(err) {
		stop()
		hc.c.Close()
		return dst, errStaleConn
	}
	if !stop() || err != nil {
		// ctx ended (the deadline may be poisoned) or the exchange failed.
		hc.c.Close()
		if err == nil {
			err = ctx.Err()
		} else if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return body, err
	}
	if keep {
		rc.put(hc)
	} else {
		hc.c.Close()
	}
	return body, nil
}

func (rc *rawConn) exchange(hc *httpConn, batch, dst []byte) (body []byte, keep bool, err error) {
	t := rc.t
	b := hc.out[:0]
	b = append(b, "POST "...)
	b = append(b, t.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, t.host...)
	b = append(b, "\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(batch)), 10)
	rc.mu.Lock()
	for i, ck := range rc.cookies {
		if i == 0 {
			b = append(b, "\r\nCookie: "...)
		} else {
			b = append(b, "; "...)
		}
		b = append(b, ck.name...)
		b = append(b, '=')
		b = append(b, ck.value...)
	}
	rc.mu.Unlock()
	b = append(b, "\r\n\r\n"...)
	b = append(b, batch...)
	hc.out = b[:0]
	if cap(hc.out) > 64<<10 {
		hc.out = nil // do not keep a huge publish buffer per connection
	}
	if _, err := hc.c.Write(b); err != nil {
		return dst, false, err
	}
	if _, err := hc.br.Peek(1); err != nil {
		return dst, false, err
	}
	hc.gotBytes = true
	return rc.readResponse(hc.br, dst)
}

var (
	hdrContentLength    = []byte("content-length")
	hdrTransferEncoding = []byte("transfer-encoding")
	hdrConnection       = []byte("connection")
	hdrSetCookie        = []byte("set-cookie")
)

// readResponse reads one HTTP/1.x response and appends its body to dst.
func (rc *rawConn) readResponse(br *bufio.Reader, dst []byte) ([]byte, bool, error) {
	line, err := readLine(br)
	if err != nil {
		return dst, false, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return dst, false, fmt.Errorf("bench: malformed status line %q", line)
	}
	keep := line[7] == '1'
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return dst, false, fmt.Errorf("bench: malformed status line %q", line)
	}
	length := int64(-1)
	chunked := false
	for {
		line, err := readLine(br)
		if err != nil {
			return dst, false, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case len(name) == len(hdrContentLength) && bytes.EqualFold(name, hdrContentLength):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return dst, false, fmt.Errorf("bench: bad Content-Length %q", value)
			}
		case len(name) == len(hdrTransferEncoding) && bytes.EqualFold(name, hdrTransferEncoding):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case len(name) == len(hdrConnection) && bytes.EqualFold(name, hdrConnection):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		case len(name) == len(hdrSetCookie) && bytes.EqualFold(name, hdrSetCookie):
			rc.setCookie(value)
		}
	}
	start := len(dst)
	switch {
	case status == 204 || status == 304 || status/100 == 1:
	case chunked:
		dst, err = readChunked(br, dst)
	case length >= 0:
		dst, err = readN(br, dst, length)
	default:
		dst, err = readAll(dst, br)
		keep = false
	}
	if err != nil {
		return dst, false, err
	}
	if status != 200 {
		return dst[:start], keep, &HTTPError{Code: status}
	}
	return dst, keep, nil
}

// setCookie keeps name=value of a Set-Cookie header (attributes ignored;
// Max-Age=0 or an empty value removes it).
func (rc *rawConn) setCookie(v []byte) {
	pair, attrs, _ := bytes.Cut(v, []byte{';'})
	name, value, ok := bytes.Cut(pair, []byte{'='})
	if !ok {
		return
	}
	n, val := string(bytes.TrimSpace(name)), string(bytes.TrimSpace(value))
	remove := val == "" || bytes.Contains(bytes.ToLower(attrs), []byte("max-age=0"))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, ck := range rc.cookies {
		if ck.name == n {
			if remove {
				rc.cookies = append(rc.cookies[:i], rc.cookies[i+1:]...)
			} else {
				rc.cookies[i].value = val
			}
			return
		}
	}
	if !remove {
		rc.cookies = append(rc.cookies, rawCookie{n, val})
	}
}

// readLine returns a line without its CRLF; the slice is valid until the
// next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("bench: header line too long")
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func readN(br *bufio.Reader, dst []byte, n int64) ([]byte, error) {
	if n > 256<<20 {
		return dst, errors.New("bench: response body too large")
	}
	need := len(dst) + int(n)
	if cap(dst) < need {
		nd := make([]byte, len(dst), need+need/4)
		copy(nd, dst)
		dst = nd
	}
	m, err := io.ReadFull(br, dst[len(dst):need])
	dst = dst[:len(dst)+m]
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return dst, err
}

func readChunked(br *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return dst, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return dst, fmt.Errorf("bench: bad chunk size %q", line)
		}
		if size == 0 {
			// trailers, then the empty line
			for {
				line, err := readLine(br)
				if err != nil {
					return dst, err
				}
				if len(line) == 0 {
					return dst, nil
				}
			}
		}
		if dst, err = readN(br, dst, size); err != nil {
			return dst, err
		}
		if line, err := readLine(br); err != nil || len(line) != 0 {
			if err == nil {
				err = errors.New("bench: missing CRLF after chunk")
			}
			return dst, err
		}
	}
}
