package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countingConn counts the writes on a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// oneConnListener accepts one connection, then waits until closed.
type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// TestWriteOnceGathers: a response larger than net/http's 4 KiB buffer
// leaves in one write on a gathering connection (net/http alone writes it
// in two), and arrives whole; small ones and the next request on the
// connection are not disturbed.
func TestWriteOnceGathers(t *testing.T) {
	type testCase struct {
		name       string
		gather     bool
		size       int
		wantWrites int64
	}
	for _, tc := range []testCase{
		{"large, gathered", true, 20000, 1},
		{"large, net/http alone", false, 20000, 2},
		{"small", true, 1000, 1},
		{"just over the buffer", true, 4000, 1},
		{"a writer that cannot flush: the rest after", true, 5000, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("0123456789"), tc.size/10)
			srvSide, cliSide := net.Pipe()
			cc := &countingConn{Conn: srvSide}
			var conn net.Conn = cc
			if tc.gather {
				conn = &gatherConn{Conn: cc}
			}
			ln := &oneConnListener{c: conn, done: make(chan struct{})}
			hs := &http.Server{
				ConnContext: gatherContext,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
					if strings.Contains(tc.name, "cannot flush") {
						w = struct{ http.ResponseWriter }{w} // no Flush, no Unwrap
					}
					writeOnce(w, r, body)
				}),
			}
			go func() { _ = hs.Serve(ln) }()
			t.Cleanup(func() { _ = hs.Close(); _ = cliSide.Close() })

			br := bufio.NewReader(cliSide)
			for i := range 2 { // the second request: keep-alive goes on
				before := cc.writes.Load()
				req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
				go func() { _ = req.Write(cliSide) }()
				res, err := http.ReadResponse(br, req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				got, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("request %d: body of %d bytes (want %d), err %v", i, len(got), len(body), err)
				}
				if n := cc.writes.Load() - before; n != tc.wantWrites {
					t.Errorf("request %d: %d writes for a %d-byte body, want %d", i, n, len(body), tc.wantWrites)
				}
			}
		})
	}
}

// BenchmarkWriteOnce: one request and its 5 KB response over loopback TCP
// (a server as Serve runs it, a minimal client), the response written by
// writeOnce (one write) and by net/http alone (two writes).
func BenchmarkWriteOnce(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789"), 500)
	for _, gather := range []bool{true, false} {
		name := map[bool]string{true: "writeOnce", false: "net/http"}[gather]
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
				if gather {
					writeOnce(w, r, body)
				} else {
					_, _ = w.Write(body)
				}
			})}
			go func() { _ = hs.Serve(parkOn(hs, ln)) }()
			b.Cleanup(func() { _ = hs.Close() })
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, res.Body); err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
			}
		})
	}
}
