package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
)

// gatherKey is the connection-context key under which Serve records a
// connection's gatherConn.
type gatherKey struct{}

// gatherConn is an accepted plain-TCP connection whose writes can be
// gathered into one: net/http writes a response larger than its 4 KiB
// buffer in two writes (the buffer with the headers, then the rest), and
// on loopback or a busy server each write costs about as much as the
// response's encoding. Between gather and flush, Write only copies; flush
// writes what was gathered with one write.
//
// Only the goroutine that serves the connection's current request
// gathers and flushes (the handler, before it returns): net/http writes
// a response from that goroutine too. It passes on what net/http and the
// WebSocket poller use of a *net.TCPConn (half-close, sendfile, the
// descriptor).
type gatherConn struct {
	net.Conn
	gathering bool
	buf       *[]byte // pooled while gathering
}

// gatherOn wraps c unless it is TLS (net/http must see the *tls.Conn).
func gatherOn(c net.Conn) net.Conn {
	switch c.(type) {
	case *net.TCPConn, *limitedConn:
		return &gatherConn{Conn: c}
	}
	return c
}

// Write copies p while gathering, else writes it.
func (c *gatherConn) Write(p []byte) (int, error) {
	if c.gathering {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// gather starts gathering; n is the size expected.
func (c *gatherConn) gather(n int) {
	c.buf = getBuf(n)
	c.gathering = true
}

// flush ends gathering and writes what was gathered, in one write.
func (c *gatherConn) flush() error {
	c.gathering = false
	b := c.buf
	c.buf = nil
	var err error
	if len(*b) > 0 {
		_, err = c.Conn.Write(*b)
	}
	putBuf(b)
	return err
}

// CloseWrite half-closes the connection (net/http does before closing, so
// that the client reads the last response).
func (c *gatherConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom lets net/http send files with sendfile.
func (c *gatherConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok && !c.gathering {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c}, r)
}

// SyscallConn returns the TCP connection's descriptor access.
func (c *gatherConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotTCP
}

// writeOnce writes body as the response of w, with the headers set on w,
// in one write when r's connection can gather (Serve's plain-TCP
// connections over HTTP/1.x), else as net/http does.
func writeOnce(w http.ResponseWriter, r *http.Request, body []byte) {
	gc, _ := r.Context().Value(gatherKey{}).(*gatherConn)
	// Under 3.5 KiB the headers and the body fit net/http's buffer: one
	// write already.
	if gc == nil || len(body) < 3584 || r.ProtoMajor != 1 {
		_, _ = w.Write(body)
		return
	}
	gc.gather(len(body) + 512)
	_, _ = w.Write(body)
	// Without Flush (a wrapper of w that cannot), what net/http still
	// holds leaves after what was gathered, as without gathering.
	_ = http.NewResponseController(w).Flush()
	if err := gc.flush(); err != nil {
		gc.Close() // the client cannot have the whole response: net/http's next read ends the connection
	}
}

// gatherContext records c's gatherConn in ctx (hs.ConnContext).
func gatherContext(ctx context.Context, c net.Conn) context.Context {
	if gc, ok := c.(*gatherConn); ok {
		return context.WithValue(ctx, gatherKey{}, gc)
	}
	return ctx
}
