package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// idleClientsEnv, when set, turns TestIdleClients into the client
// process of BenchmarkIdleWebSocketHeap and BenchmarkIdleLongPollHeap:
// "transport,url,count".
const idleClientsEnv = "BAYEUX_TEST_IDLE_CLIENTS"

// idleHeapProfileEnv, when set, names a file the idle-heap benchmarks
// write a heap profile to once the clients are idle (run with
// -memprofilerate=1 and read it with -sample_index=inuse_space): what each
// idle client keeps, by allocation site.
const idleHeapProfileEnv = "BAYEUX_TEST_IDLE_HEAP_PROFILE"

// BenchmarkIdleWebSocketHeap measures the server's live heap per idle
// WebSocket: idleClients clients (in a child process, so that their memory
// is not counted) each open a socket to a Server run by Serve, handshake,
// get a first connect answered and leave the next one held, as an idle
// client does. The metric is the growth of HeapAlloc after a GC, divided
// by the number of sockets. Run it with -benchtime=1x: one iteration opens
// all the sockets.
func BenchmarkIdleWebSocketHeap(b *testing.B) {
	benchmarkIdleHeap(b, protocol.WebSocket, "heap-bytes/socket")
}

// BenchmarkIdleLongPollHeap is BenchmarkIdleWebSocketHeap for long-polling
// clients: each has one keep-alive connection, on which it handshakes, gets
// a first connect answered and leaves the next one held; the server parks
// it (Options.ParkAfter), so that what it keeps is the parked connection,
// the held connect and the session.
func BenchmarkIdleLongPollHeap(b *testing.B) {
	benchmarkIdleHeap(b, protocol.LongPolling, "heap-bytes/client")
}

func benchmarkIdleHeap(b *testing.B, transport, unit string) {
	const idleClients = 2000
	var total float64
	for b.Loop() {
		total += idleHeapPerClient(b, transport, idleClients)
	}
	b.ReportMetric(total/float64(b.N), unit)
}

// idleHeapPerClient runs one measurement of an idle-heap benchmark.
func idleHeapPerClient(b *testing.B, transport string, n int) float64 {
	b.Helper()
	s, err := New(Options{Logger: slog.New(slog.DiscardHandler), PollTimeout: time.Minute, ConnectTimeout: time.Minute,
		ParkAfter: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler("/cometd"), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- s.Serve(hs, ln) }()
	defer func() {
		s.BeginShutdown()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = s.Shutdown(ctx)
		<-served
	}()

	before := liveHeap()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,http://%s/cometd,%d", idleClientsEnv, transport, ln.Addr(), n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the child closes its connections and exits
		_ = cmd.Wait()
		// Every socket gone before the server shuts down: none is kept
		// for the next iteration's baseline. (Parked long-polls are
		// answered by the shutdown.)
		testutil.Eventually(b, 10*time.Second, func() bool {
			s.sockets.mu.Lock()
			defer s.sockets.mu.Unlock()
			return len(s.sockets.m) == 0
		}, "sockets closed")
	}()
	ready := false
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		b.Fatal("the client process ended before its clients were ready")
	}
	testutil.Eventually(b, 10*time.Second, func() bool { return s.Stats().Parked.Load() == int64(n) },
		fmt.Sprintf("%d idle clients parked", n))
	after := liveHeap()
	if path := os.Getenv(idleHeapProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	return float64(after-before) / float64(n)
}

// liveHeap returns HeapAlloc after the garbage is collected (twice: pools
// keep their objects through one GC).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestIdleClients is the client process of the idle-heap benchmarks (it
// skips otherwise): it opens the clients, prints "ready" and keeps them
// until its stdin closes.
func TestIdleClients(t *testing.T) {
	spec := os.Getenv(idleClientsEnv)
	if spec == "" {
		t.Skip("the client process of BenchmarkIdleWebSocketHeap and BenchmarkIdleLongPollHeap")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want transport,url,count", idleClientsEnv, spec)
	}
	transport, url := parts[0], parts[1]
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	open := func(url string) (func(), error) {
		c, err := idleClient(url)
		if err != nil {
			return nil, err
		}
		return func() { c.CloseNow() }, nil
	}
	if transport == protocol.LongPolling {
		open = func(url string) (func(), error) {
			c, err := idleLongPollClient(url)
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		}
	}
	closers := make([]func(), n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := open(url)
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				closers[i] = c
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range closers {
		c()
	}
}

// idleLongPollClient opens a connection to url and leaves it as an idle
// long-polling client does: handshook (with the browser cookie it got),
// with a connect held on the connection.
func idleLongPollClient(url string) (net.Conn, error) {
	addr := strings.TrimPrefix(url, "http://")
	addr, _, _ = strings.Cut(addr, "/")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var cookie *http.Cookie
	send := func(m *protocol.Message) error {
		body, _ := json.Marshal([]*protocol.Message{m})
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		return req.Write(c)
	}
	roundTrip := func(m *protocol.Message) (*protocol.Message, error) {
		if err := send(m); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == BrowserCookie {
				cookie = &http.Cookie{Name: ck.Name, Value: ck.Value}
			}
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		return firstSuccess(b)
	}
	r, err := roundTrip(handshakeMsg())
	if err == nil {
		_, err = roundTrip(connectMsg(r.ClientID, &protocol.Advice{Timeout: protocol.Ms(0)}))
	}
	if err == nil {
		err = send(connectMsg(r.ClientID, nil))
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// firstSuccess decodes a reply body and returns its first message, or an
// error when there is none or it failed.
func firstSuccess(b []byte) (*protocol.Message, error) {
	var r []*protocol.Message
	if err := json.Unmarshal(b, &r); err != nil || len(r) == 0 || !r[0].IsSuccessful() {
		return nil, fmt.Errorf("reply %s (%v)", b, err)
	}
	return r[0], nil
}

// idleClient opens a socket to url and leaves it as an idle client does:
// handshook, with a connect held.
func idleClient(url string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), nil)
	if err != nil {
		return nil, err
	}
	roundTrip := func(m *protocol.Message) (*protocol.Message, error) {
		b, _ := json.Marshal([]*protocol.Message{m})
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			return nil, err
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		return firstSuccess(b)
	}
	hs := handshakeMsg()
	hs.SupportedConnectionTypes = []string{protocol.WebSocket}
	r, err := roundTrip(hs)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	first := connectMsg(r.ClientID, &protocol.Advice{Timeout: protocol.Ms(0)})
	first.ConnectionType = protocol.WebSocket
	if _, err := roundTrip(first); err != nil {
		c.CloseNow()
		return nil, err
	}
	held := connectMsg(r.ClientID, nil)
	held.ConnectionType = protocol.WebSocket
	b, _ := json.Marshal([]*protocol.Message{held})
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}
