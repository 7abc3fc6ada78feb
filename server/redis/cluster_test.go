package redis

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/redistest"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Two Engines on one Redis with the same prefix are two nodes.

// TestTwoNodesWake: a session created on A, subscribed on B, with its
// fetch held on B, is woken by a publish on A; destroying it on A ends the
// fetch on B with ErrSessionRemoved. On one Redis and on a Redis Cluster.
func TestTwoNodesWake(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, url string, _ bool) {
		a := newTestEngine(t, url, Options{}, server.EngineHooks{})
		b := newTestEngine(t, url, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
		ctx := context.Background()
		mkSession(t, a, "s")
		mkSub(t, b, "s", "/room/*")
		if subs, _ := a.Subscriptions(ctx, "s"); !slices.Equal(subs, []string{"/room/*"}) {
			t.Errorf("A sees subscriptions %q", subs)
		}
		p := b.Begin(ctx, "s", 10*time.Second)
		awaitFollowing(t, b, "/room/*")
		aNotices, bNotices := a.Stats().Notices, b.Stats().Notices
		start := time.Now()
		pl := testPayload("/room/1", 7)
		pl.From = "publisher"
		if n, err := a.Publish(ctx, pl); n != 1 || err != nil {
			t.Fatalf("Publish on A = %d, %v", n, err)
		}
		bt, err := p.Wait()
		if err != nil || len(bt.Payloads) != 1 || bt.Payloads[0].From != "publisher" || bt.Payloads[0].Channel != "/room/1" {
			t.Fatalf("fetch on B = %+v, %v", bt, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the fetch on B woke after %v", d)
		}
		if a.Stats().Notices != aNotices || b.Stats().Notices != bNotices+1 {
			t.Errorf("notices: A %d→%d, B %d→%d; want only B's one", aNotices, a.Stats().Notices, bNotices, b.Stats().Notices)
		}

		p = b.Begin(ctx, "s", 10*time.Second)
		if rs, err := a.DestroySession(ctx, "s"); rs == nil || err != nil {
			t.Fatalf("DestroySession on A = %+v, %v", rs, err)
		}
		if _, err := p.Wait(); !errors.Is(err, server.ErrSessionRemoved) {
			t.Errorf("fetch on B after destroy on A = %v, want ErrSessionRemoved", err)
		}
	})
}

// TestExpiryAfterNodeGone: sessions made on A expire on B after A is
// closed, and only one node reports each.
func TestExpiryAfterNodeGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	expired := make(chan string, 20)
	hook := func(node string) server.EngineHooks {
		return server.EngineHooks{Expired: func(rs *server.RemovedSession) { expired <- node + ":" + rs.Info.ID }}
	}
	a := engine(t, Options{SweepInterval: 10 * time.Millisecond}, hook("a"))
	b := engine(t, Options{SweepInterval: 10 * time.Millisecond, Prefix: a.opts.Prefix}, hook("b"))
	c := engine(t, Options{SweepInterval: 10 * time.Millisecond, Prefix: a.opts.Prefix}, hook("c"))
	// Many sessions expiring at once with three sweepers: each reported once.
	for i := range 10 {
		id := "race" + string(rune('0'+i))
		mkSession(t, a, id)
		_ = a.Touch(ctx, id, time.Now().Add(50*time.Millisecond))
	}
	seen := map[string]string{}
	for len(seen) < 10 {
		select {
		case ev := <-expired:
			node, id, _ := strings.Cut(ev, ":")
			if prev, dup := seen[id]; dup {
				t.Fatalf("%s expired twice (on %s and %s)", id, prev, node)
			}
			seen[id] = node
		case <-time.After(hWait):
			t.Fatalf("only %d of 10 sessions expired", len(seen))
		}
	}
	select {
	case ev := <-expired:
		t.Fatalf("extra expiry %s", ev)
	case <-time.After(100 * time.Millisecond):
	}
	_ = c.Close()

	mkSession(t, a, "s")
	mkSub(t, a, "s", "/x")
	_ = a.Touch(ctx, "s", time.Now().Add(300*time.Millisecond))
	local := &server.SessionInfo{ID: "local_a", Local: true}
	if err := a.CreateSession(ctx, local); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case ev := <-expired:
			if !strings.HasPrefix(ev, "b:") {
				t.Errorf("expiry reported as %s, want by b", ev)
			}
			got[strings.TrimPrefix(ev, "b:")] = true
		case <-time.After(hWait):
			t.Fatalf("after A closed, B expired only %v", got)
		}
	}
	if !got["s"] || !got["local_a"] {
		t.Errorf("expired %v, want s and local_a", got)
	}
	// The local session outlived its node by about localTTL (1 s here),
	// kept alive until then by A's sweeper.
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("A's local session expired %v after A closed", d)
	}
	if n, _ := b.Publish(ctx, testPayload("/x", 1)); n != 0 {
		t.Errorf("expired session still subscribed")
	}
}

// TestLocalSessionsKeptAlive: a running node keeps its local-client
// sessions (which the server never touches) from expiring.
func TestLocalSessionsKeptAlive(t *testing.T) {
	t.Parallel()
	expired := make(chan string, 1)
	e := engine(t, Options{SweepInterval: 10 * time.Millisecond}, server.EngineHooks{Expired: func(rs *server.RemovedSession) {
		expired <- rs.Info.ID
	}})
	if err := e.CreateSession(context.Background(), &server.SessionInfo{ID: "local", Local: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-expired:
		t.Fatalf("%s expired while its node runs", id)
	case <-time.After(1500 * time.Millisecond): // localTTL is 1 s here
	}
}

// TestRedisRestart kills redis-server (which persists every write) and
// starts it again on the same port and data: calls fail while it is down
// and work again after, the sessions survive, and the pub/sub wake-up
// works again, also for a Fetch that was held across the restart.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	a := newTestEngine(t, rs.URL, Options{Logger: logger}, server.EngineHooks{})
	b := newTestEngine(t, rs.URL, Options{Logger: logger, Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, a, "s")
	mkSub(t, a, "s", "/r")
	_ = a.Touch(ctx, "s", time.Now().Add(time.Hour))

	held := b.Begin(ctx, "s", 20*time.Second)
	rs.Kill()
	if _, err := a.Publish(ctx, testPayload("/r", 1)); err == nil {
		t.Error("Publish succeeded while Redis is down")
	}
	if _, _, err := a.Session(ctx, "s"); err == nil {
		t.Error("Session succeeded while Redis is down")
	}
	if st := a.Stats(); st.Errors == 0 || !st.Down {
		t.Errorf("Stats while down = %+v", st)
	}
	testutil.Eventually(t, hWait, func() bool { return strings.Contains(logs.String(), "pub/sub connection lost") }, "a log line about the lost pub/sub connection")
	if !strings.Contains(logs.String(), "redis unreachable") {
		t.Errorf("no log line about Redis being unreachable:\n%s", logs)
	}

	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, hWait, func() bool {
		_, ok, err := a.Session(ctx, "s")
		return ok && err == nil
	}, "the session to be readable again")
	testutil.Eventually(t, hWait, func() bool { return a.Stats().Reconnects >= 1 && b.Stats().Reconnects >= 1 }, "both nodes' pub/sub to reconnect")
	if !strings.Contains(logs.String(), "redis reachable again") || !strings.Contains(logs.String(), "pub/sub reconnected") {
		t.Errorf("no log lines about the recovery:\n%s", logs)
	}
	if a.Stats().Down {
		t.Error("Stats().Down after recovery")
	}

	// The Fetch held across the restart is woken by a publish now.
	if n, err := a.Publish(ctx, testPayload("/r", 2)); n != 1 || err != nil {
		t.Fatalf("Publish after restart = %d, %v", n, err)
	}
	if bt, err := held.Wait(); !slices.Equal(nums(t, bt), []int{2}) || err != nil {
		t.Errorf("fetch held across the restart = %v, %v", nums(t, bt), err)
	}
	// And a new wait on the other node too.
	held = a.Begin(ctx, "s", 10*time.Second)
	if n, err := b.Publish(ctx, testPayload("/r", 3)); n != 1 || err != nil {
		t.Fatalf("Publish on B after restart = %d, %v", n, err)
	}
	if bt, err := held.Wait(); !slices.Equal(nums(t, bt), []int{3}) || err != nil {
		t.Errorf("fetch after the restart = %v, %v", nums(t, bt), err)
	}
}

// TestRedisRestartWithoutData: Redis comes back empty. A fetch held across
// the restart ends with ErrSessionUnknown, not ErrSessionRemoved (the
// session was lost, not removed: the server tells the client to handshake
// again, not to stay away).
func TestRedisRestartWithoutData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (url string, restart func())
	}{
		{"single", func(t *testing.T) (string, func()) {
			rs := startRedis(t)
			return rs.URL, func() {
				rs.Kill()
				if err := rs.Restart(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"cluster", func(t *testing.T) (string, func()) {
			c, err := redistest.StartCluster(t.TempDir(), 3)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Kill)
			return c.URL, func() {
				c.Kill()
				if err := c.Restart(); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, restart := tc.start(t)
			a := newTestEngine(t, url, Options{}, server.EngineHooks{})
			b := newTestEngine(t, url, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
			ctx := context.Background()
			mkSession(t, a, "s")
			mkSub(t, a, "s", "/r")
			held := a.Begin(ctx, "s", 20*time.Second)
			restart()
			start := time.Now()
			if _, err := held.Wait(); !errors.Is(err, protocol.ErrSessionUnknown) || errors.Is(err, server.ErrSessionRemoved) {
				t.Errorf("fetch held while Redis lost its data = %v; want ErrSessionUnknown", err)
			}
			if d := time.Since(start); d > hWait {
				t.Errorf("the held fetch noticed the restart after %v", d)
			}
			testutil.Eventually(t, hWait, func() bool {
				_, ok, err := a.Session(ctx, "s")
				return !ok && err == nil
			}, "the lost session to be reported unknown")
			if _, err := a.Fetch(ctx, "s", 0); !errors.Is(err, protocol.ErrSessionUnknown) {
				t.Errorf("Fetch of the lost session = %v", err)
			}
			// A new session on the same channel, waiting on the node that
			// watched the stream before, gets what the other publishes.
			mkSession(t, b, "s2")
			mkSub(t, b, "s2", "/r")
			p := a.Begin(ctx, "s2", 10*time.Second)
			if n, err := b.Publish(ctx, testPayload("/r", 2)); n != 1 || err != nil {
				t.Fatalf("Publish after the restart = %d, %v", n, err)
			}
			if bt, err := p.Wait(); !slices.Equal(nums(t, bt), []int{2}) || err != nil {
				t.Errorf("after the restart: %v, %v", nums(t, bt), err)
			}
		})
	}
}

// TestSentinelFailover: two nodes on a primary watched by a Sentinel
// (redis-sentinel:// URL). The Sentinel promotes the replica; the nodes
// follow it by themselves: the sessions made before (replicated) are
// there, and a fetch held across the failover gets a message published
// after it.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	sn, err := redistest.StartSentinel(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sn.Kill)
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	a := newTestEngine(t, sn.URL, Options{Logger: logger}, server.EngineHooks{})
	b := newTestEngine(t, sn.URL, Options{Logger: logger, Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, a, "s")
	mkSub(t, a, "s", "/f")
	_ = a.Touch(ctx, "s", time.Now().Add(time.Hour))
	if got := nums(t, func() server.Batch {
		p := b.Begin(ctx, "s", 10*time.Second)
		_, _ = a.Publish(ctx, testPayload("/f", 1))
		bt, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		return bt
	}()); !slices.Equal(got, []int{1}) {
		t.Fatalf("before the failover: %v", got)
	}
	// What was written is on the replica before it takes over.
	primary := goredis.NewClient(&goredis.Options{Addr: sn.Primary.Addr()})
	defer primary.Close()
	if n, err := primary.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}
	held := b.Begin(ctx, "s", 20*time.Second)
	if err := sn.Failover(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Publish on A until it goes to the new primary (the old one refuses
	// writes as a replica, or the connection moves).
	var published bool
	testutil.Eventually(t, 15*time.Second, func() bool {
		if _, _, err := a.Session(ctx, "s"); err != nil {
			return false
		}
		if n, err := a.Publish(ctx, testPayload("/f", 2)); err == nil && n == 1 {
			published = true
			return true
		}
		return false
	}, "a publish on the new primary")
	if !published {
		t.Fatal("no publish")
	}
	bt, err := held.Wait()
	if err != nil || !slices.Contains(nums(t, bt), 2) {
		// The fetch may have ended empty when its node reconnected; the
		// message then waits for the next one.
		bt, err = b.Fetch(ctx, "s", 5*time.Second)
	}
	if err != nil || !slices.Contains(nums(t, bt), 2) {
		t.Errorf("after the failover: %v, %v; want [2]", nums(t, bt), err)
	}
	if addr, _ := sn.PrimaryAddr(); addr != sn.Replica.Addr() {
		t.Errorf("primary is %s, want the former replica %s", addr, sn.Replica.Addr())
	}
}
