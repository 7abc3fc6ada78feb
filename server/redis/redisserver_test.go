package redis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// The tests run against a real redis-server that they start themselves on
// a free port, with its data in a temporary directory. Without the binary
// they fail (they never skip: CI must not pass because a tool is missing).

// redisServer is a redis-server process started by a test.
type redisServer struct {
	bin   string
	dir   string
	port  int
	extra []string
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd exited
	out   *bytes.Buffer
	URL   string
}

func redisBinary() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found in PATH: the Redis engine tests need a real Redis " +
			"(Debian/Ubuntu: apt-get install -y redis-server)"
		if os.Getenv("CI") != "" {
			msg += "; CI must provide it"
		}
		return "", fmt.Errorf("%s", msg)
	}
	return bin, nil
}

// newRedisServer starts redis-server with its data in dir; extra are more
// config arguments ("--appendonly", "yes", ...). Persistence is off unless
// extra turns it on.
func newRedisServer(dir string, extra ...string) (*redisServer, error) {
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	r := &redisServer{bin: bin, dir: dir, extra: extra}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r.port = port
		if lastErr = r.start(); lastErr == nil {
			return r, nil
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on r.port and waits until it answers.
func (r *redisServer) start() error {
	args := []string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
		"--loglevel", "warning", "--logfile", "",
	}
	args = append(args, r.extra...)
	r.out = new(bytes.Buffer)
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.cmd, r.done = cmd, exited
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(r.out.String()))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.kill()
	return fmt.Errorf("redis-server on port %d did not answer", r.port)
}

// kill stops the server at once (SIGKILL: no save on exit).
func (r *redisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
		}
		r.cmd = nil
	}
}

// restart starts the server again on the same port with the same data
// directory.
func (r *redisServer) restart() error {
	var err error
	for range 50 {
		if err = r.start(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // the port may still be held
	}
	return err
}

// startRedis starts a private redis-server for t.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	r, err := newRedisServer(t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.kill)
	return r
}

// The redis-server shared by the tests that need no private one; each
// test uses its own key prefix.
var shared struct {
	once sync.Once
	srv  *redisServer
	dir  string
	err  error
}

func sharedRedis(t testing.TB) *redisServer {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "bayeux-redis-test")
		if shared.err == nil {
			shared.srv, shared.err = newRedisServer(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.kill()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

var prefixSeq struct {
	mu sync.Mutex
	n  int
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	prefixSeq.mu.Lock()
	prefixSeq.n++
	n := prefixSeq.n
	prefixSeq.mu.Unlock()
	return fmt.Sprintf("test%d:%s:", n, t.Name())
}

// testEngine is an engine under test with a Hub for its Ready calls, so
// that tests can fetch (wait for messages) as the Server does.
type testEngine struct {
	*Engine
	node *enginetest.Node
}

// Fetch takes what is queued for id, waiting up to wait.
func (e testEngine) Fetch(ctx context.Context, id string, wait time.Duration) (server.Batch, error) {
	return e.node.Fetch(ctx, id, wait)
}

// Begin begins a fetch (see enginetest.Node.Begin).
func (e testEngine) Begin(ctx context.Context, id string, wait time.Duration) *enginetest.Pending {
	return e.node.Begin(ctx, id, server.TakeOptions{}, wait)
}

// newTestEngine starts an engine on url with a prefix of its own unless
// opts has one; it is closed when the test ends.
func newTestEngine(t testing.TB, url string, opts Options, hooks server.EngineHooks) testEngine {
	t.Helper()
	hub := enginetest.NewHub()
	if user := hooks.Ready; user != nil {
		hooks.Ready = func(id string) { hub.Ready(id); user(id) }
	} else {
		hooks.Ready = hub.Ready
	}
	opts.URL = url
	if opts.Prefix == "" {
		opts.Prefix = testPrefix(t)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(hooks); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return testEngine{Engine: e, node: enginetest.NewNode(hub, e)}
}

// logBuffer is a concurrency-safe log sink for asserting log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var _ io.Writer = (*logBuffer)(nil)
