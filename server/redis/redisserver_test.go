package redis

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/redistest"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// The tests run against real Redis deployments they start themselves on
// free ports, with their data in temporary directories (package
// internal/testutil/redistest, which the other packages' Redis tests use
// too): one redis-server and one Redis Cluster of three masters shared by
// the package (each test uses its own key prefix), and private ones for
// the tests that kill them. Without redis-server and redis-cli they fail
// (they never skip: CI must not pass because a tool is missing).

// startRedis starts a private redis-server for t.
func startRedis(t testing.TB, extra ...string) *redistest.Server {
	t.Helper()
	return redistest.Start(t, extra...)
}

// sharedRedis returns the redis-server shared by the tests that need no
// private one; each test uses its own key prefix.
func sharedRedis(t testing.TB) *redistest.Server {
	t.Helper()
	return redistest.Shared(t)
}

// sharedCluster is the package's Redis Cluster (three masters), started on
// first use.
var cluster struct {
	mu  sync.Mutex
	c   *redistest.Cluster
	dir string
	err error
}

func sharedCluster(t testing.TB) *redistest.Cluster {
	t.Helper()
	cluster.mu.Lock()
	defer cluster.mu.Unlock()
	if cluster.c == nil && cluster.err == nil {
		cluster.dir, cluster.err = os.MkdirTemp("", "bayeux-redis-cluster-test")
		if cluster.err == nil {
			cluster.c, cluster.err = redistest.StartCluster(cluster.dir, 3)
		}
	}
	if cluster.err != nil {
		t.Fatal(cluster.err)
	}
	return cluster.c
}

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	if cluster.c != nil {
		cluster.c.Kill()
	}
	if cluster.dir != "" {
		_ = os.RemoveAll(cluster.dir)
	}
	os.Exit(code)
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string { return redistest.Prefix(t) }

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

// awaitFollowing waits until node e follows stream name: subscribed to its
// notices and its window in step, so that the next entry reaches it as a
// notice.
func awaitFollowing(t testing.TB, e testEngine, name string) {
	t.Helper()
	testutil.Eventually(t, hWait, func() bool {
		st := e.streams.get(name)
		if st == nil {
			return false
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		return st.synced
	}, "node to follow stream "+name)
}

// onEachRedis runs test as parallel subtests on the shared single Redis
// ("single") and the shared Redis Cluster ("cluster"), with its URL.
func onEachRedis(t *testing.T, test func(t *testing.T, url string, cluster bool)) {
	for _, tc := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"single", func(t testing.TB) string { return sharedRedis(t).URL }},
		{"cluster", func(t testing.TB) string { return sharedCluster(t).URL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			test(t, tc.url(t), tc.name == "cluster")
		})
	}
}
