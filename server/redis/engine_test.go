package redis

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// hWait bounds every wait for something that should happen promptly.
const hWait = enginetest.Wait

// engine returns a started engine on the shared redis-server.
func engine(t *testing.T, opts Options, hooks server.EngineHooks) testEngine {
	t.Helper()
	return newTestEngine(t, sharedRedis(t).URL, opts, hooks)
}

// Helpers to drive an engine directly, shared with the conformance suite.
var (
	mkSession   = enginetest.CreateSession
	mkSub       = enginetest.Subscribe
	testPayload = enginetest.Payload
	nums        = enginetest.Nums
)

// suiteEngine is the engine the conformance suite runs on; it lets the
// suite check that no key of its prefix is left in Redis.
type suiteEngine struct{ *Engine }

func (e suiteEngine) Residue(ctx context.Context) ([]string, error) {
	return keysOf(ctx, e.Client(), e.opts.Prefix)
}

// conformance runs the engine conformance suite on url. A Peer is another
// engine on the same Redis and key prefix: another node.
func conformance(t *testing.T, url func(testing.TB) string) {
	enginetest.Run(t, func(t *testing.T, opts enginetest.Options) server.Engine {
		o := Options{Budgets: opts.Budgets, SweepInterval: opts.SweepInterval}
		if opts.Peer != nil {
			o.Prefix = opts.Peer.(suiteEngine).opts.Prefix
		}
		return suiteEngine{newTestEngine(t, url(t), o, opts.Hooks).Engine}
	})
}

// TestConformance runs the engine conformance suite on one redis-server.
func TestConformance(t *testing.T) {
	t.Parallel()
	conformance(t, func(t testing.TB) string { return sharedRedis(t).URL })
}

// TestConformanceCluster runs the engine conformance suite on a Redis
// Cluster of three masters.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	conformance(t, func(t testing.TB) string { return sharedCluster(t).URL })
}

// TestCreateExistingSession: unlike the memory engine, the Redis engine
// refuses a session id that is taken (another node may have created it).
func TestCreateExistingSession(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	mkSession(t, e, "exact")
	if err := e.CreateSession(context.Background(), &server.SessionInfo{ID: "exact"}); err == nil {
		t.Error("CreateSession with an existing id succeeded")
	}
}

// TestFanoutIsNodeLocal: 200 sessions that wait on node A are reached by
// one publish on node B with one round trip on B and one notice on A; A
// serves all 200 from its window without reading Redis, and its commits
// go in few round trips.
func TestFanoutIsNodeLocal(t *testing.T) {
	t.Parallel()
	var woken atomic.Int64
	a := engine(t, Options{}, server.EngineHooks{Ready: func(string) { woken.Add(1) }})
	b := engine(t, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	const n = 200
	for i := range n {
		id := fmt.Sprint("f", i)
		mkSession(t, b, id)
		mkSub(t, b, id, "/fan")
		if bt, err := a.Take(ctx, id, server.TakeOptions{Watch: true}); err != nil || len(bt.Payloads) != 0 {
			t.Fatalf("take %s: %v %v", id, nums(t, bt), err)
		}
	}
	awaitFollowing(t, a, "/fan")
	before, beforeA := b.Stats(), a.Stats()
	if got, err := b.Publish(ctx, testPayload("/fan", 1)); got != n || err != nil {
		t.Fatalf("Publish = %d, %v", got, err)
	}
	if rt := b.Stats().RoundTrips - before.RoundTrips; rt != 1 {
		t.Errorf("publishing to %d subscribers took %d round trips", n, rt)
	}
	testutil.Eventually(t, hWait, func() bool { return woken.Load() == n }, "every waiting session to get Ready")
	for i := range n {
		bt, err := a.Take(ctx, fmt.Sprint("f", i), server.TakeOptions{Resume: true})
		if err != nil || !slices.Equal(nums(t, bt), []int{1}) {
			t.Fatalf("session %d took %v, %v", i, nums(t, bt), err)
		}
	}
	// The commits follow the batches.
	testutil.Eventually(t, hWait, func() bool { return a.Stats().Commits-beforeA.Commits >= n }, "the sessions' commits")
	st := a.Stats()
	if d := st.Notices - beforeA.Notices; d != 1 {
		t.Errorf("node A got %d notices for one publish, want 1", d)
	}
	if d := st.Reads - beforeA.Reads; d != 0 {
		t.Errorf("node A read the stream %d times, want 0 (served from its window)", d)
	}
	if d := st.Commits - beforeA.Commits; d != n {
		t.Errorf("%d commits for %d sessions", d, n)
	}
	t.Logf("%d commits in %d round trips", st.Commits-beforeA.Commits, st.CommitBatches-beforeA.CommitBatches)
}

// TestExpiredStat: Stats().Expired counts the sessions this node expired.
func TestExpiredStat(t *testing.T) {
	t.Parallel()
	expired := make(chan string, 10)
	e := engine(t, Options{SweepInterval: 20 * time.Millisecond}, server.EngineHooks{Expired: func(rs *server.RemovedSession) {
		expired <- rs.Info.ID
	}})
	ctx := context.Background()
	for _, id := range []string{"soon", "kept", "later"} {
		mkSession(t, e, id)
	}
	_ = e.Touch(ctx, "soon", time.Now().Add(100*time.Millisecond))
	_ = e.Touch(ctx, "kept", time.Now().Add(300*time.Millisecond))
	_ = e.Touch(ctx, "later", time.Now().Add(time.Hour))
	for range 2 {
		select {
		case <-expired:
		case <-time.After(hWait):
			t.Fatal("a session did not expire")
		}
	}
	if n := e.Stats().Expired; n != 2 {
		t.Errorf("Stats().Expired = %d, want 2", n)
	}
}

// TestClose: what Close does beyond the conformance suite's Close. Start
// runs once; after Close calls fail with ErrEngineClosed (a woken Take
// too); the sessions stay in Redis for the other nodes.
func TestClose(t *testing.T) {
	t.Parallel()
	e, err := New(Options{URL: sharedRedis(t).URL, Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	hub := enginetest.NewHub()
	if err := e.Start(server.EngineHooks{Ready: hub.Ready}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(server.EngineHooks{}); err == nil {
		t.Error("a second Start succeeded")
	}
	ctx := context.Background()
	mkSession(t, e, "s")
	if err := enginetest.CloseWhileWaiting(t, enginetest.NewNode(hub, e), "s"); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("a fetch woken by Close = %v, want ErrEngineClosed", err)
	}
	if _, _, err := e.Session(ctx, "s"); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("Session after Close = %v", err)
	}
	// The session stays in Redis for the other nodes.
	other := engine(t, Options{Prefix: e.opts.Prefix}, server.EngineHooks{})
	if _, ok, err := other.Session(ctx, "s"); !ok || err != nil {
		t.Errorf("after one node closed, Session on another = %v, %v", ok, err)
	}
}

// TestPayloadFields: a payload read back from Redis keeps its channel, its
// publisher and its JSON byte for byte; Msg is nil and Message decodes.
// The node that did not publish reads it (from its window and from
// Redis).
func TestPayloadFields(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	reader := engine(t, Options{Prefix: e.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")
	mkSub(t, e, "s", "/p/**")
	raw := `{"channel":"/p/q","data":{"text":"h\u00e9 | 7|3|x"},"ext":{"k":1}}`
	p := &server.Payload{Channel: "/p/q", From: "pub_lisher|id", JSON: []byte(raw),
		Msg: &protocol.Message{Channel: "/p/q"}}
	if n, err := e.Publish(ctx, p); n != 1 || err != nil {
		t.Fatalf("Publish = %d, %v", n, err)
	}
	if err := e.Deliver(ctx, "s", &server.Payload{Channel: "/direct", JSON: []byte(`{"channel":"/direct","data":1}`)}); err != nil {
		t.Fatal(err)
	}
	b, err := reader.Fetch(ctx, "s", 0)
	if err != nil || len(b.Payloads) != 2 {
		t.Fatalf("Fetch = %+v, %v", b, err)
	}
	got := b.Payloads[0]
	if got.Channel != "/p/q" || got.From != "pub_lisher|id" || string(got.JSON) != raw || got.Msg != nil {
		t.Errorf("payload = channel %q from %q json %s msg %v", got.Channel, got.From, got.JSON, got.Msg)
	}
	m, err := got.Message()
	if err != nil || m.Channel != "/p/q" || string(m.Data) != `{"text":"h\u00e9 | 7|3|x"}` {
		t.Errorf("Message() = %+v, %v", m, err)
	}
	if d := b.Payloads[1]; d.Channel != "/direct" || d.From != "" {
		t.Errorf("delivered payload = %+v", d)
	}
}

// TestTouchFromAnotherNode: while a node takes for a session and holds a
// connect for it, a Touch from another node (a superseded connect ending
// there) only extends the session's expiry; the taker's own Touch sets
// it.
func TestTouchFromAnotherNode(t *testing.T) {
	t.Parallel()
	expired := make(chan string, 1)
	hooks := server.EngineHooks{Expired: func(rs *server.RemovedSession) { expired <- rs.Info.ID }}
	a := engine(t, Options{SweepInterval: 10 * time.Millisecond}, hooks)
	b := engine(t, Options{Prefix: a.opts.Prefix, SweepInterval: 10 * time.Millisecond}, hooks)
	ctx := context.Background()
	mkSession(t, a, "s")
	_ = b.Touch(ctx, "s", time.Now().Add(time.Hour))
	p := b.Begin(ctx, "s", 500*time.Millisecond) // b takes for s now
	if err := a.Touch(ctx, "s", time.Now().Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-expired:
		t.Fatalf("%s expired although only the taker may shorten its expiry", id)
	default:
	}
	// The taker shortens it.
	if err := b.Touch(ctx, "s", time.Now().Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-expired:
		if id != "s" {
			t.Errorf("expired %s", id)
		}
	case <-time.After(hWait):
		t.Fatal("a Touch by the taker did not shorten the expiry")
	}
}

// TestListManySessions crosses ListSessions' batch size.
func TestListManySessions(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	const n = 1234
	calls := make([]*call, 0, 2*n)
	for i := range n {
		id := fmt.Sprint("m", i)
		calls = append(calls, newCall(createScript, []string{e.k.sess(id)}, fmt.Sprintf(`{"id":%q}`, id), 60000),
			newCall(indexScript, []string{e.k.index()}, "add", 60000, id))
	}
	if err := e.run(ctx, calls...); err != nil {
		t.Fatal(err)
	}
	infos, err := e.ListSessions(ctx)
	if err != nil || len(infos) != n {
		t.Fatalf("ListSessions = %d sessions, %v; want %d", len(infos), err, n)
	}
	if c, _ := e.SessionCount(ctx); c != n {
		t.Errorf("SessionCount = %d", c)
	}
}

func TestEntryCodec(t *testing.T) {
	t.Parallel()
	for _, p := range []*server.Payload{
		{Channel: "/a", JSON: []byte(`{}`)},
		{Channel: "/a|b", From: "x|1|2|", JSON: []byte(`{"data":"|"}`)},
		{Channel: "", From: "", JSON: nil},
	} {
		got, err := decodeEntry(string(encodeEntry(p)))
		if err != nil || got.Channel != p.Channel || got.From != p.From || string(got.JSON) != string(p.JSON) {
			t.Errorf("round trip of %+v = %+v %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "1|", "x|0|", "5|0|abc", "-1|0|"} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("decodeEntry(%q) succeeded", bad)
		}
	}
	n, err := parseNotice("7|1700000000000-3|node.1|1700000000000123|" + string(encodeEntry(&server.Payload{Channel: "/c", JSON: []byte("{}")})))
	if err != nil || n.seq != 7 || n.id != "1700000000000-3" || n.us != 1700000000000123 || n.mid != "node.1" || n.p.Channel != "/c" {
		t.Errorf("parseNotice = %+v, %v", n, err)
	}
	for _, bad := range []string{"", "7", "7|1-1", "x|1-1|m|1|0|0|", "7|bad|m|1|0|0|", "7|1-1|m|x|0|0|"} {
		if _, err := parseNotice(bad); err == nil {
			t.Errorf("parseNotice(%q) succeeded", bad)
		}
	}
}

func TestStateCodec(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		st   state
		ack  bool
	}
	pos := func(direct uint64, kv ...any) position {
		p := position{direct: direct, streams: map[string]cursor{}}
		for i := 0; i < len(kv); i += 2 {
			p.streams[kv[i].(string)] = kv[i+1].(cursor)
		}
		return p
	}
	for _, tc := range []testCase{
		{"initial", state{sent: pos(0), base: pos(0)}, false},
		{"one stream", state{sent: pos(3, "/a", cursor{5, "17-0"}), base: pos(3, "/a", cursor{5, "17-0"})}, false},
		{"odd names", state{sent: pos(0, "/a b|c:d", cursor{1, "1-1"}, "/x/**", cursor{0, "0-0"}),
			base: pos(0, "/a b|c:d", cursor{1, "1-1"}, "/x/**", cursor{0, "0-0"})}, false},
		{"ack outstanding", state{batch: 9, acked: 8, sent: pos(4, "/a", cursor{7, "20-1"}), base: pos(2, "/a", cursor{5, "17-0"})}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeState(encodeState(&tc.st, tc.ack))
			if err != nil {
				t.Fatal(err)
			}
			if got.batch != tc.st.batch || got.acked != tc.st.acked || fmt.Sprint(got.sent) != fmt.Sprint(tc.st.sent) ||
				fmt.Sprint(got.base) != fmt.Sprint(tc.st.base) {
				t.Errorf("round trip of %+v = %+v", tc.st, got)
			}
		})
	}
	if st, err := decodeState(""); err != nil || st.batch != 0 || len(st.sent.streams) != 0 {
		t.Errorf(`decodeState("") = %+v, %v`, st, err)
	}
	for _, bad := range []string{"v2 0 0 0", "v1 x 0 0", "v1 0 0 0 5 1-1 9:/a", "v1 0 0 0 5 nope 2:/a", "v1 0 0 0|x"} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("decodeState(%q) succeeded", bad)
		}
	}
	if c := before(&entry{seq: 5, id: "100-0"}); c.seq != 4 || c.id != "99-18446744073709551615" {
		t.Errorf("before(100-0) = %+v", c)
	}
	if c := before(&entry{seq: 5, id: "100-2"}); c.seq != 4 || c.id != "100-1" {
		t.Errorf("before(100-2) = %+v", c)
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	type testCase struct {
		url     string
		cluster bool
		bad     bool
	}
	for _, tc := range []testCase{
		{url: "http://x", bad: true},
		{url: "redis://127.0.0.1:1/3?max_retries=2"},
		{url: "redis-cluster://127.0.0.1:1?addr=127.0.0.1:2", cluster: true},
		{url: "redis-sentinel://127.0.0.1:1/0?master_name=m&addr=127.0.0.1:2"},
		{url: "redis-sentinel://127.0.0.1:1/0", bad: true}, // no master name
	} {
		e, err := New(Options{URL: tc.url})
		if tc.bad {
			if err == nil {
				e.Close()
				t.Errorf("New(%s) succeeded", tc.url)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%s): %v", tc.url, err)
			continue
		}
		_, isCluster := e.client.(*goredis.ClusterClient)
		if e.cluster != tc.cluster || isCluster != tc.cluster {
			t.Errorf("New(%s): cluster %v", tc.url, e.cluster)
		}
		e.Close()
	}
	e, err := New(Options{URL: "redis://127.0.0.1:1/3?max_retries=2"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if o := e.client.(*goredis.Client).Options(); o.DB != 3 || o.MaxRetries != 2 || e.opts.Prefix != "bayeux:" || e.opts.MaxQueue != 1000 || e.opts.NodeID == "" {
		t.Errorf("options: db %d retries %d prefix %q queue %d node %q", o.DB, o.MaxRetries, e.opts.Prefix, e.opts.MaxQueue, e.opts.NodeID)
	}
	e2, _ := New(Options{URL: "redis://127.0.0.1:1/0"})
	defer e2.Close()
	if o := e2.client.(*goredis.Client).Options(); o.MaxRetries > 0 {
		t.Errorf("default MaxRetries = %d, want -1 (no retries)", o.MaxRetries)
	}
	if _, err := New(Options{Prefix: "a{b}"}); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("a prefix with braces: %v", err)
	}
}

// TestWatchWithoutGoroutines: a session that waits (Take with Watch)
// costs no goroutine (the server holds thousands of connects this way),
// and every one of them gets its Ready call when a publish arrives.
func TestWatchWithoutGoroutines(t *testing.T) {
	var woken atomic.Int64
	e := engine(t, Options{}, server.EngineHooks{Ready: func(string) { woken.Add(1) }})
	ctx := context.Background()
	const n = 300
	for i := range n {
		id := fmt.Sprintf("pw%d", i)
		mkSession(t, e, id)
		mkSub(t, e, id, "/pw")
	}
	// The first take claims the session (a round trip); later ones do not.
	for i := range n {
		_ = enginetest.TakeAll(t, e, fmt.Sprintf("pw%d", i))
	}
	testutil.Eventually(t, hWait, func() bool { return runtime.NumGoroutine() < 1000 }, "goroutines to settle")
	before := runtime.NumGoroutine()
	for i := range n {
		b, err := e.Take(ctx, fmt.Sprintf("pw%d", i), server.TakeOptions{Watch: true})
		if err != nil || len(b.Payloads) != 0 {
			t.Fatalf("take %d: %v, %d messages", i, err, len(b.Payloads))
		}
	}
	if grown := runtime.NumGoroutine() - before; grown > n/4 {
		t.Fatalf("%d watching sessions added %d goroutines", n, grown)
	}
	if _, err := e.Publish(ctx, testPayload("/pw", 7)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, hWait, func() bool { return woken.Load() == n }, "a Ready call for every watching session")
	for i := range n {
		if got := nums(t, enginetest.TakeAll(t, e, fmt.Sprintf("pw%d", i))); len(got) != 1 || got[0] != 7 {
			t.Fatalf("session %d took %v", i, got)
		}
	}
}

// TestDeadlineOfATakenSession: the node that takes for a session answers
// Session from memory; a deadline moved on another node reaches it.
func TestDeadlineOfATakenSession(t *testing.T) {
	t.Parallel()
	a := engine(t, Options{}, server.EngineHooks{})
	b := engine(t, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, a, "s")
	if _, err := b.Take(ctx, "s", server.TakeOptions{}); err != nil { // b takes for s now
		t.Fatal(err)
	}
	deadlineOn := func(e testEngine) time.Time {
		info, ok, err := e.Session(ctx, "s")
		if err != nil || !ok {
			t.Fatalf("Session: %v, %v", ok, err)
		}
		return info.Deadline
	}
	for _, tc := range []struct {
		name     string
		by       testEngine
		deadline time.Time
	}{
		{"set by another node", a, time.Now().Add(time.Hour).Round(time.Millisecond)},
		{"moved by the taker", b, time.Now().Add(2 * time.Hour).Round(time.Millisecond)},
		{"removed by another node", a, time.Time{}},
	} {
		if err := tc.by.SetDeadline(ctx, "s", tc.deadline); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		testutil.Eventually(t, 2*time.Second, func() bool { return deadlineOn(b).Equal(tc.deadline) }, tc.name+": the taker's Session")
		if got := deadlineOn(a); !got.Equal(tc.deadline) {
			t.Errorf("%s: the other node's Session says %v, want %v", tc.name, got, tc.deadline)
		}
	}
}
