package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
)

// limitConns returns ln wrapped so that one peer address holds at most
// Options.MaxConnsPerIP connections open at once (trusted proxies
// exempt): excess connections are closed as soon as they are accepted and
// counted as RefusedIPConns. ln itself when there is no limit.
func (s *Server) limitConns(ln net.Listener) net.Listener {
	if s.opts.MaxConnsPerIP <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, s: s}
}

// limitListener is a listener that counts its open connections per peer.
type limitListener struct {
	net.Listener
	s *Server
}

// Accept returns the next connection whose peer is within its limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if _, ok := c.(*tls.Conn); ok {
			// A TLS listener under Serve: wrapping would hide the
			// *tls.Conn net/http needs (ServeTLS limits below TLS).
			return c, nil
		}
		ra := c.RemoteAddr()
		if l.s.proxies.TrustedAddr(ra) {
			return c, nil
		}
		ip := peerIP(ra)
		if !l.s.tcp.acquire(ip) {
			l.s.refuse(RefusedIPConns)
			c.Close()
			continue
		}
		lc := &limitedConn{Conn: c, s: l.s, ip: ip}
		lc.tcp, _ = c.(*net.TCPConn)
		return lc, nil
	}
}

// peerIP is the address of a connection's peer without port.
func peerIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().String()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return a.String()
}

// limitedConn is an accepted connection holding a slot of its peer's
// limit until it is closed. It passes on what net/http and the WebSocket
// poller use of a *net.TCPConn (half-close, sendfile, the descriptor).
type limitedConn struct {
	net.Conn
	tcp    *net.TCPConn // nil when the connection is not TCP
	s      *Server
	ip     string
	closed atomic.Bool
}

// Close closes the connection and frees its slot (once).
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.s.tcp.release(c.ip)
	}
	return err
}

// CloseWrite half-closes a TCP connection (net/http does before closing,
// so that the client reads the last response).
func (c *limitedConn) CloseWrite() error {
	if c.tcp == nil {
		return nil
	}
	return c.tcp.CloseWrite()
}

// ReadFrom lets net/http send files with sendfile.
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if c.tcp != nil {
		return c.tcp.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

var errNotTCP = errors.New("bayeux: not a TCP connection")

// SyscallConn returns the TCP connection's descriptor access.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if c.tcp == nil {
		return nil, errNotTCP
	}
	return c.tcp.SyscallConn()
}

// plainTCP returns the TCP connection under c when c is one (directly or
// under a limitedConn or a gatherConn) and not TLS: epoll can tell when it has bytes.
func plainTCP(c net.Conn) (syscall.Conn, bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		return c, true
	case *limitedConn:
		if c.tcp != nil {
			return c.tcp, true
		}
	case *gatherConn:
		return plainTCP(c.Conn)
	}
	return nil, false
}
