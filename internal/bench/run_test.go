package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/server"
)

// startServer runs the bayeux server in-process on loopback and returns
// its Bayeux URL. wrap, if not nil, wraps the site handler.
func startServer(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	srv, err := server.New(server.Options{
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
		ClientMaxConnections: 0,
		PollTimeout:          5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv.Site(server.SiteOptions{})
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return ts.URL + "/cometd"
}

func runBench(t *testing.T, cfg Config) *Result {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = res.WriteText(&text)
	t.Log("\n" + text.String())
	return res
}

func checkExact(t *testing.T, res *Result, wantExpected int64) {
	t.Helper()
	if res.Sent == 0 || res.Expected != wantExpected {
		t.Errorf("sent %d, expected %d deliveries, want %d", res.Sent, res.Expected, wantExpected)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.Reordered != 0 || res.Delivered != res.Expected {
		t.Errorf("delivered %d of %d: lost %d, duplicated %d, reordered %d; errors %v",
			res.Delivered, res.Expected, res.Lost, res.Duplicated, res.Reordered, res.ErrorSamples)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v %v", res.Errors, res.ErrorSamples)
	}
	l := res.LatencyMs
	if l.Count == 0 || l.P99 <= 0 || l.P99 > 5000 || l.Max < l.P99 || l.P50 > l.P99 {
		t.Errorf("latency %+v", l)
	}
}

func TestFanoutExact(t *testing.T) {
	for _, client := range []string{"raw", "std"} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			url := startServer(t, nil)
			res := runBench(t, Config{URL: url, Scenario: Fanout, Subscribers: 20, Rate: 50, Duration: 2 * time.Second, Size: 20, HTTP: client})
			if res.Sent != 100 {
				t.Errorf("sent %d, want 100 (50 msg/s for 2 s)", res.Sent)
			}
			checkExact(t, res, res.Sent*20)
			if res.Clients != 21 {
				t.Errorf("clients %d, want 21", res.Clients)
			}
		})
	}
}

func TestRoomsExact(t *testing.T) {
	url := startServer(t, nil)
	res := runBench(t, Config{URL: url, Scenario: Rooms, Clients: 50, Rooms: 5, Rate: 100, Duration: 2 * time.Second})
	checkExact(t, res, res.Sent*10) // 10 members per room
}

func TestRoomsBatchedManyRooms(t *testing.T) {
	// CometD's shape, scaled down: each client in 3 of 6 rooms, batches of 3.
	url := startServer(t, nil)
	res := runBench(t, Config{URL: url, Scenario: Rooms, Clients: 30, Rooms: 6, RoomsPerClient: 3, Rate: 150, Batch: 3, Duration: time.Second})
	checkExact(t, res, res.Sent*15) // 30*3/6 members per room
	if res.Sent != 150 {
		t.Errorf("sent %d, want 150", res.Sent)
	}
}

// dropEvery removes every nth delivery from the server's replies.
func dropEvery(n int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var mu sync.Mutex
		seen := 0
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length") // the body changes below
			body := rec.Body.Bytes()
			if rec.Code == http.StatusOK {
				var kept [][]byte
				_ = eachMessage(body, func(d delivery, elem []byte) error {
					if d.hasSeq {
						mu.Lock()
						seen++
						drop := seen%n == 0
						mu.Unlock()
						if drop {
							return nil
						}
					}
					kept = append(kept, elem)
					return nil
				})
				body = append(append([]byte("["), bytes.Join(kept, []byte(","))...), ']')
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

func TestLossIsReported(t *testing.T) {
	url := startServer(t, dropEvery(10))
	res := runBench(t, Config{URL: url, Scenario: Fanout, Subscribers: 10, Rate: 50, Duration: time.Second, Timeout: time.Second})
	if res.Lost == 0 || res.Delivered+res.Lost != res.Expected {
		t.Errorf("lost %d, delivered %d, expected %d: the dropped deliveries are not reported", res.Lost, res.Delivered, res.Expected)
	}
	if want := res.Expected / 10; res.Lost < want-2 || res.Lost > want+2 {
		t.Errorf("lost %d, want about %d (every 10th)", res.Lost, want)
	}
}

// TestSeveralURLs: with several URLs (nodes of one cluster, here two
// paths of one server) the clients spread over them in turn; -pid and
// -redis-pid take lists and are reported (this process stands in for the
// processes watched).
func TestSeveralURLs(t *testing.T) {
	var hits [2]atomic.Int64
	url := startServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/cometd/b") {
				hits[1].Add(1)
			} else {
				hits[0].Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	pid := strconv.Itoa(os.Getpid())
	cfg, err := ParseFlags([]string{"-url", url + "/a," + url + "/b", "-scenario", "fanout", "-subscribers", "10",
		"-rate", "50", "-duration", "1s", "-warmup", "0s", "-pid", pid + "," + pid, "-redis-pid", pid}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PID != os.Getpid() || len(cfg.PIDs) != 1 || len(cfg.RedisPIDs) != 1 {
		t.Fatalf("parsed pids %d %v %v", cfg.PID, cfg.PIDs, cfg.RedisPIDs)
	}
	res := runBench(t, cfg)
	if res.Lost+res.Duplicated != 0 || res.Delivered == 0 {
		t.Errorf("delivered %d, lost %d, duplicated %d", res.Delivered, res.Lost, res.Duplicated)
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Errorf("requests per URL %d and %d: not spread", hits[0].Load(), hits[1].Load())
	}
	if res.ServerCPUPct == nil || res.RedisCPUPct == nil || res.RedisCPUUsPerMsg == nil {
		t.Errorf("server CPU %v, redis CPU %v per message %v: not reported", res.ServerCPUPct, res.RedisCPUPct, res.RedisCPUUsPerMsg)
	}
	if _, err := ParseFlags([]string{"-url", url, "-pid", "1,x"}, io.Discard); err == nil {
		t.Error("-pid 1,x accepted")
	}
	if _, err := ParseFlags([]string{"-url", url + ",ftp://x"}, io.Discard); err == nil {
		t.Error("a second URL that is not http accepted")
	}
}

func TestIdleAndHandshake(t *testing.T) {
	url := startServer(t, nil)
	// The server is this process: its RSS is measured right after the
	// clients came and at the end of the window.
	res := runBench(t, Config{URL: url, Scenario: Idle, Clients: 30, Duration: 500 * time.Millisecond, PID: os.Getpid()})
	if res.Clients != 30 || res.Handshakes != 30 || len(res.Errors) != 0 {
		t.Errorf("idle: clients %d handshakes %d errors %v", res.Clients, res.Handshakes, res.ErrorSamples)
	}
	if s := res.ServerRSSKB; s == nil || s.Burst <= 0 || s.End <= 0 || s.PerClientBurstKB == nil || s.PerClientSteadyKB == nil {
		t.Errorf("idle: no RSS right after the clients came and at the end: %+v", s)
	}
	res = runBench(t, Config{URL: url, Scenario: Handshake, Workers: 4, Duration: 500 * time.Millisecond})
	if res.HandshakesPerS <= 0 || res.LatencyMs.Count == 0 || len(res.Errors) != 0 {
		t.Errorf("handshake: %.0f/s, latency %+v, errors %v", res.HandshakesPerS, res.LatencyMs, res.ErrorSamples)
	}
}

func TestJSONLine(t *testing.T) {
	url := startServer(t, nil)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-url", url, "-scenario", "fanout", "-subscribers", "3", "-rate", "20",
		"-duration", "500ms", "-warmup", "0s", "-json", "-pid", "0", "-gomaxprocs", "2"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "{") {
		t.Fatalf("not one JSON line: %q", line)
	}
	for _, key := range []string{`"scenario":"fanout"`, `"sent":`, `"delivered":`, `"expected":`, `"lost":0`, `"duplicated":0`,
		`"reordered":0`, `"errors":{}`, `"latency_ms":{`, `"p999":`, `"msgs_per_s":`, `"deliveries_per_s":`,
		`"server_cpu_pct":null`, `"server_rss_kb":null`, `"bench_cpu_pct":`, `"handshakes_per_s":`, `"config":{`} {
		if !strings.Contains(line, key) {
			t.Errorf("JSON line lacks %s: %s", key, line)
		}
	}
	if code := Main(context.Background(), []string{"-url", "ftp://x", "-scenario", "fanout"}, &out, &errb); code != 2 {
		t.Errorf("bad url: exit %d", code)
	}
}

func TestWebSocketFanoutExact(t *testing.T) {
	url := startServer(t, nil)
	res := runBench(t, Config{URL: url, Scenario: Fanout, TransportType: TransportWebSocket, Subscribers: 20, Rate: 100, Batch: 2,
		Duration: 2 * time.Second, Size: 20})
	if res.Transport != "websocket" {
		t.Errorf("transport %q", res.Transport)
	}
	if res.Sent != 200 {
		t.Errorf("sent %d, want 200 (100 msg/s for 2 s)", res.Sent)
	}
	checkExact(t, res, res.Sent*20)
	if res.Clients != 21 {
		t.Errorf("clients %d, want 21", res.Clients)
	}
}

func TestWebSocketRoomsExact(t *testing.T) {
	// Publishers are subscribers too: publish replies and connect replies
	// interleave on every socket.
	url := startServer(t, nil)
	res := runBench(t, Config{URL: url, Scenario: Rooms, TransportType: TransportWebSocket, Clients: 30, Rooms: 6, RoomsPerClient: 3,
		Rate: 150, Batch: 3, Duration: time.Second})
	checkExact(t, res, res.Sent*15)
}

func TestWebSocketIdle(t *testing.T) {
	url := startServer(t, nil)
	res := runBench(t, Config{URL: url, Scenario: Idle, TransportType: TransportWebSocket, Clients: 30, Duration: 500 * time.Millisecond})
	if res.Clients != 30 || res.Handshakes != 30 || len(res.Errors) != 0 || res.Lost != 0 || res.Duplicated != 0 {
		t.Errorf("idle: clients %d handshakes %d lost %d dup %d errors %v", res.Clients, res.Handshakes, res.Lost, res.Duplicated, res.ErrorSamples)
	}
	res = runBench(t, Config{URL: url, Scenario: Handshake, TransportType: TransportWebSocket, Workers: 4, Duration: 500 * time.Millisecond})
	if res.HandshakesPerS <= 0 || len(res.Errors) != 0 {
		t.Errorf("handshake: %.0f/s, errors %v", res.HandshakesPerS, res.ErrorSamples)
	}
}

func TestWebSocketFlag(t *testing.T) {
	url := startServer(t, nil)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-url", url, "-scenario", "fanout", "-transport", "websocket", "-subscribers", "3",
		"-rate", "20", "-duration", "500ms", "-warmup", "0s", "-json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, key := range []string{`"transport":"websocket"`, `"lost":0`, `"duplicated":0`, `"errors":{}`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("JSON line lacks %s: %s", key, out.String())
		}
	}
	if code := Main(context.Background(), []string{"-url", url, "-scenario", "fanout", "-transport", "ws"}, &out, &errb); code != 2 {
		t.Errorf("bad transport: exit %d", code)
	}
}
