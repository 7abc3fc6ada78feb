package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/faultproxy"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// deliverySummary is what a receiver reports.
type deliverySummary struct {
	Received   int `json:"received"`
	Distinct   int `json:"distinct"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Reordered  int `json:"reordered"`
	Handshakes int `json:"handshakes"`
}

// reliabilityServer is an in-process server behind a fault-injecting proxy.
func reliabilityServer(t *testing.T, seed uint64) (*server.Server, *faultproxy.Proxy) {
	t.Helper()
	srv, err := server.New(server.Options{
		Logger:               slog.New(slog.DiscardHandler),
		PollTimeout:          5 * time.Second,
		ConnectTimeout:       time.Minute,
		MaxQueue:             100000,
		ClientMaxConnections: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Site(server.SiteOptions{}))
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		_ = srv.Shutdown(context.Background())
	})
	p, err := faultproxy.Start(faultproxy.Options{Target: strings.TrimPrefix(hs.URL, "http://"), KillRequest: 0.3, KillResponse: 1, MaxRequestBytes: 1500, MaxResponseBytes: 3000, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return srv, p
}

// runCometDReceiver starts the CometD JS receiver against url and returns
// a function that publishes total messages through srv at rate per second
// and returns the receiver's summary.
func runCometDReceiver(t *testing.T, srv *server.Server, url string, ack bool, total int, rate int) deliverySummary {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found: the reliability test drives the CometD JS client (make conformance-deps)")
	}
	dir, _ := filepath.Abs("../conformance")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "cometd")); err != nil {
		t.Fatalf("conformance/node_modules missing: run `make conformance-deps` (%v)", err)
	}
	ackEnv, grace := "0", 5000 // without ack, losses are expected: do not wait long for them
	if ack {
		ackEnv, grace = "1", 40000
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "reliability/cometd-receiver.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "URL="+url, "ACK="+ackEnv, "CHANNEL=/rel/x",
		"TOTAL="+itoa(total), "DEADLINE_MS="+itoa(total*1000/rate+grace))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "READY" {
			t.Fatalf("receiver said %q", l)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("receiver never subscribed")
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for i := range total {
		<-tick.C
		if _, err := srv.Publish(context.Background(), "/rel/x", map[string]int{"seq": i}); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	for l := range lines {
		var s deliverySummary
		if err := json.Unmarshal([]byte(l), &s); err == nil {
			io.Copy(io.Discard, out)
			return s
		}
	}
	t.Fatal("receiver ended without a summary")
	return deliverySummary{}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestCometDAckSurvivesKilledConnections: through a proxy that kills
// connections mid-request and mid-response, the CometD JS client with the
// ack extension receives every message once and in order; without it, the
// same faults lose messages (proving the test can see loss).
func TestCometDAckSurvivesKilledConnections(t *testing.T) {
	const total, rate = 3000, 300
	srv, p := reliabilityServer(t, 1)
	got := runCometDReceiver(t, srv, "http://"+p.Addr()+"/cometd", true, total, rate)
	conns, kReq, kResp := p.Stats()
	t.Logf("ack: %+v; proxy: %d connections, %d killed mid-request, %d mid-response", got, conns, kReq, kResp)
	if kReq+kResp < 10 {
		t.Fatalf("only %d connections were killed: the test injected too few faults", kReq+kResp)
	}
	if got.Lost != 0 || got.Duplicated != 0 || got.Reordered != 0 || got.Distinct != total {
		t.Errorf("with ack: %+v, want all %d once and in order", got, total)
	}

	srv2, p2 := reliabilityServer(t, 1)
	noAck := runCometDReceiver(t, srv2, "http://"+p2.Addr()+"/cometd", false, total, rate)
	conns, kReq, kResp = p2.Stats()
	t.Logf("no ack: %+v; proxy: %d connections, %d killed mid-request, %d mid-response", noAck, conns, kReq, kResp)
	if noAck.Lost == 0 {
		t.Errorf("without ack no message was lost despite %d killed responses: the faults do not hit deliveries", kResp)
	}
}

// runWasmclientReceiver subscribes our Go client (native transport) through
// url and counts what arrives while srv publishes total messages.
func runWasmclientReceiver(t *testing.T, srv *server.Server, url string, ack bool, total, rate int) deliverySummary {
	t.Helper()
	opts := wasmclient.Options{BackoffIncrement: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		MaxNetworkDelay: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if ack {
		opts.Extensions = []wasmclient.Extension{&wasmclient.AckExtension{}}
	}
	c := wasmclient.New(url, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Disconnect(context.Background())
	var mu sync.Mutex
	var seqs []int
	ids := map[string]bool{}
	onMessage := func(m *protocol.Message) {
		var d struct{ Seq int }
		_ = json.Unmarshal(m.Data, &d)
		mu.Lock()
		seqs = append(seqs, d.Seq)
		mu.Unlock()
	}
	// The proxy may kill the subscribe request itself: like an
	// application, try again (subscribing twice is harmless).
	var err error
	for range 20 {
		if _, err = c.Subscribe(ctx, "/rel/x", onMessage); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for i := range total {
		<-tick.C
		if _, err := srv.Publish(context.Background(), "/rel/x", map[string]int{"seq": i}); err != nil {
			t.Fatal(err)
		}
		if id := c.ClientID(); id != "" {
			mu.Lock()
			ids[id] = true
			mu.Unlock()
		}
	}
	tick.Stop()
	wait := 40 * time.Second
	if !ack {
		wait = 5 * time.Second
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(seqs)
		mu.Unlock()
		if n >= total {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	s := deliverySummary{Received: len(seqs), Handshakes: len(ids)}
	seen := map[int]bool{}
	last := -1
	for _, q := range seqs {
		if seen[q] {
			s.Duplicated++
			continue
		}
		seen[q] = true
		if q < last {
			s.Reordered++
		}
		last = max(last, q)
	}
	s.Distinct = len(seen)
	s.Lost = total - len(seen)
	return s
}

// TestWasmclientAckSurvivesKilledConnections is the same fault test for
// our own client with its AckExtension.
func TestWasmclientAckSurvivesKilledConnections(t *testing.T) {
	const total, rate = 3000, 300
	srv, p := reliabilityServer(t, 2)
	got := runWasmclientReceiver(t, srv, "http://"+p.Addr()+"/cometd", true, total, rate)
	conns, kReq, kResp := p.Stats()
	t.Logf("ack: %+v; proxy: %d connections, %d killed mid-request, %d mid-response", got, conns, kReq, kResp)
	if kReq+kResp < 10 {
		t.Fatalf("only %d connections were killed: the test injected too few faults", kReq+kResp)
	}
	if got.Lost != 0 || got.Duplicated != 0 || got.Reordered != 0 || got.Handshakes != 1 {
		t.Errorf("with ack: %+v, want all %d once, in order, in one session", got, total)
	}

	srv2, p2 := reliabilityServer(t, 2)
	noAck := runWasmclientReceiver(t, srv2, "http://"+p2.Addr()+"/cometd", false, total, rate)
	conns, kReq, kResp = p2.Stats()
	t.Logf("no ack: %+v; proxy: %d connections, %d killed mid-request, %d mid-response", noAck, conns, kReq, kResp)
	if noAck.Lost == 0 {
		t.Errorf("without ack no message was lost despite %d killed responses", kResp)
	}
}
