package server

import (
	"bufio"
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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// idleSocketsEnv, when set, turns TestIdleWebSocketClients into the client
// process of BenchmarkIdleWebSocketHeap: "url,count".
const idleSocketsEnv = "BAYEUX_TEST_IDLE_SOCKETS"

// BenchmarkIdleWebSocketHeap measures the server's live heap per idle
// WebSocket: idleSockets clients (in a child process, so that their memory
// is not counted) each open a socket to a Server run by Serve, handshake,
// get a first connect answered and leave the next one held, as an idle
// client does. The metric is the growth of HeapAlloc after a GC, divided
// by the number of sockets. Run it with -benchtime=1x: one iteration opens
// all the sockets.
func BenchmarkIdleWebSocketHeap(b *testing.B) {
	const idleSockets = 2000
	var total float64
	for b.Loop() {
		total += idleHeapPerSocket(b, idleSockets)
	}
	b.ReportMetric(total/float64(b.N), "heap-bytes/socket")
}

// idleHeapPerSocket runs one measurement of BenchmarkIdleWebSocketHeap.
func idleHeapPerSocket(b *testing.B, n int) float64 {
	b.Helper()
	s, err := New(Options{Logger: slog.New(slog.DiscardHandler), PollTimeout: time.Minute, ConnectTimeout: time.Minute})
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
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleWebSocketClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=http://%s/cometd,%d", idleSocketsEnv, ln.Addr(), n))
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
		stdin.Close() // the child closes its sockets and exits
		_ = cmd.Wait()
		// Every socket gone before the server shuts down: none is kept
		// for the next iteration's baseline.
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
		b.Fatal("the client process ended before its sockets were ready")
	}
	testutil.Eventually(b, 10*time.Second, func() bool { return s.Stats().Parked.Load() == int64(n) },
		fmt.Sprintf("%d idle sockets parked", n))
	after := liveHeap()
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

// TestIdleWebSocketClients is BenchmarkIdleWebSocketHeap's client process
// (it skips otherwise): it opens the sockets, prints "ready" and keeps
// them until its stdin closes.
func TestIdleWebSocketClients(t *testing.T) {
	spec := os.Getenv(idleSocketsEnv)
	if spec == "" {
		t.Skip("the client process of BenchmarkIdleWebSocketHeap")
	}
	url, count, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(count)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := idleClient(url)
				if err != nil {
					errs <- fmt.Errorf("socket %d: %w", i, err)
					return
				}
				conns[i] = c
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
	for _, c := range conns {
		c.CloseNow()
	}
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
		var r []*protocol.Message
		if err := json.Unmarshal(b, &r); err != nil || len(r) == 0 || !r[0].IsSuccessful() {
			return nil, fmt.Errorf("reply %s (%v)", b, err)
		}
		return r[0], nil
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
