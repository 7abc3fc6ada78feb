package redis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/internal/redistest"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// The tests run against real Redis deployments they start themselves on
// free ports, with their data in temporary directories: one redis-server
// and one Redis Cluster of three masters shared by the package (each test
// uses its own key prefix), and private ones for the tests that kill them.
// Without redis-server and redis-cli they fail (they never skip: CI must
// not pass because a tool is missing).

// startRedis starts a private redis-server for t.
func startRedis(t testing.TB, extra ...string) *redistest.Server {
	t.Helper()
	r, err := redistest.Start(t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// shared are the deployments shared by the tests that need no private one.
var shared struct {
	mu      sync.Mutex
	dir     string
	srv     *redistest.Server
	cluster *redistest.Cluster
	err     error
}

func sharedDir() (string, error) {
	if shared.dir == "" {
		d, err := os.MkdirTemp("", "bayeux-redis-test")
		if err != nil {
			return "", err
		}
		shared.dir = d
	}
	return shared.dir, nil
}

// sharedRedis is the package's redis-server.
func sharedRedis(t testing.TB) *redistest.Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		dir, err := sharedDir()
		if err == nil {
			shared.srv, err = redistest.Start(dir)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return shared.srv
}

// sharedCluster is the package's Redis Cluster (three masters).
func sharedCluster(t testing.TB) *redistest.Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	if shared.cluster == nil {
		dir, err := sharedDir()
		if err == nil {
			shared.cluster, err = redistest.StartCluster(dir+"/cluster", 3)
		}
		if err != nil {
			shared.err = err
			t.Fatal(err)
		}
	}
	return shared.cluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Kill()
	}
	if shared.cluster != nil {
		shared.cluster.Kill()
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

// keysOf lists the keys of prefix, on every master of a cluster.
func keysOf(ctx context.Context, c goredis.UniversalClient, prefix string) ([]string, error) {
	cc, ok := c.(*goredis.ClusterClient)
	if !ok {
		return c.Keys(ctx, prefix+"*").Result()
	}
	var mu sync.Mutex
	var all []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		ks, err := m.Keys(ctx, prefix+"*").Result()
		mu.Lock()
		all = append(all, ks...)
		mu.Unlock()
		return err
	})
	return all, err
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
