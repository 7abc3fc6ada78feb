package redis

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/bayeux-go/bayeux/internal/testutil/redistest"
	"github.com/bayeux-go/bayeux/server"
)

// The tests run against a real redis-server that they start themselves on
// a free port, with its data in a temporary directory (package
// internal/testutil/redistest, which the other packages' Redis tests use
// too). Without the binary they fail (they never skip: CI must not pass
// because a tool is missing).

// redisServer is a redis-server process started by a test.
type redisServer struct{ *redistest.Server }

func (r redisServer) kill()          { r.Kill() }
func (r redisServer) restart() error { return r.Restart() }

// startRedis starts a private redis-server for t.
func startRedis(t testing.TB, extra ...string) redisServer {
	t.Helper()
	return redisServer{redistest.Start(t, extra...)}
}

// sharedRedis returns the redis-server shared by the tests that need no
// private one; each test uses its own key prefix.
func sharedRedis(t testing.TB) redisServer {
	t.Helper()
	return redisServer{redistest.Shared(t)}
}

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string { return redistest.Prefix(t) }

// newTestEngine starts an engine on url with a prefix of its own unless
// opts has one; it is closed when the test ends.
func newTestEngine(t testing.TB, url string, opts Options, hooks server.EngineHooks) *Engine {
	t.Helper()
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
	return e
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
