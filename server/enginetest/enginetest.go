// Package enginetest is the behaviour every server.Engine must show; engine
// implementations run it from their tests.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Wait bounds every wait for something that should happen promptly.
const Wait = 5 * time.Second

// Options configure an engine made for one scenario.
type Options struct {
	// Budgets bound queues and histories (zero fields: the engine's
	// defaults).
	server.Budgets
	// SweepInterval is how often expired sessions are looked for (0: the
	// engine's default).
	SweepInterval time.Duration
	// Hooks are passed to Start.
	Hooks server.EngineHooks
	// Peer, when not nil, asks for another node of the cluster Peer is in:
	// an engine that shares Peer's state. An engine that cannot be shared
	// by several nodes (such as the in-memory one) returns Peer itself.
	Peer server.Engine
}

// Residue may be implemented by an engine (or by a test's wrapper around
// one) that can list what it still stores. The suite then checks that
// nothing is left once every session is destroyed.
type Residue interface {
	Residue(ctx context.Context) ([]string, error)
}

// Run runs every scenario as a parallel subtest of t. newEngine returns a
// started engine (Start called with opts.Hooks); it closes the engine with
// t.Cleanup.
func Run(t *testing.T, newEngine func(t *testing.T, opts Options) server.Engine) {
	for _, sc := range []struct {
		name string
		f    func(*testing.T, func(*testing.T, Options) server.Engine)
	}{
		{"PublishCounts", testPublishCounts},
		{"Dedup", testDedup},
		{"QueueBound", testQueueBound},
		{"FetchWaitsAndWakes", testFetchWaitsAndWakes},
		{"FetchAfterDestroy", testFetchAfterDestroy},
		{"Poll", testPoll},
		{"SubscriptionLimit", testSubscriptionLimit},
		{"Expiry", testExpiry},
		{"Close", testClose},
		{"Ack", testAck},
		{"Stress", testStress},
		{"ConcurrentPublishOnce", testConcurrentPublishOnce},
		{"ListingAndHistory", testListingAndHistory},
		{"QueueBytes", testQueueBytes},
		{"FetchBytes", testFetchBytes},
		{"AckFetchBytes", testAckFetchBytes},
		{"QueuedBytes", testQueuedBytes},
		{"HistoryChannels", testHistoryChannels},
		{"Deadline", testDeadline},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.f(t, newEngine)
		})
	}
}

// CreateSession creates session id on e or fails the test.
func CreateSession(t testing.TB, e server.Engine, id string) {
	t.Helper()
	err := e.CreateSession(context.Background(), &server.SessionInfo{ID: id, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

// Subscribe subscribes session id to every pattern, without a limit, or
// fails the test.
func Subscribe(t testing.TB, e server.Engine, id string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if err := e.Subscribe(context.Background(), id, p, 0); err != nil {
			t.Fatalf("Subscribe(%s, %s): %v", id, p, err)
		}
	}
}

// Payload returns a payload on channel whose data is n.
func Payload(channel string, n int) *server.Payload {
	return &server.Payload{Channel: channel, JSON: fmt.Appendf(nil, `{"channel":%q,"data":%d}`, channel, n)}
}

// SizedPayload returns a payload on channel whose data is n and whose JSON
// is exactly size bytes long (padded in ext), for the byte budgets.
func SizedPayload(channel string, n, size int) *server.Payload {
	base := len(fmt.Sprintf(`{"channel":%q,"data":%d,"ext":{"pad":""}}`, channel, n))
	if size < base {
		panic(fmt.Sprintf("enginetest: a payload on %s is at least %d bytes", channel, base))
	}
	return &server.Payload{Channel: channel, JSON: fmt.Appendf(nil, `{"channel":%q,"data":%d,"ext":{"pad":"%s"}}`,
		channel, n, strings.Repeat("x", size-base))}
}

// DropCounter records what an engine reports to EngineHooks.Dropped.
type DropCounter struct {
	mu sync.Mutex
	m  map[string]int
}

// Hooks returns hooks that count into d.
func (d *DropCounter) Hooks() server.EngineHooks {
	return server.EngineHooks{Dropped: func(reason string, n int) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.m == nil {
			d.m = map[string]int{}
		}
		d.m[reason] += n
	}}
}

// Get returns the count reported for reason.
func (d *DropCounter) Get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[reason]
}

// Num is the data of a Payload.
func Num(t testing.TB, p *server.Payload) int {
	t.Helper()
	m, err := p.Message()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(m.Data))
	if err != nil {
		t.Fatalf("payload data %s", m.Data)
	}
	return n
}

// Nums is the data of every payload of b, in order.
func Nums(t testing.TB, b server.Batch) []int {
	t.Helper()
	out := make([]int, 0, len(b.Payloads))
	for _, p := range b.Payloads {
		out = append(out, Num(t, p))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Burst publishes n messages on channel while a Fetch for session id,
// subscribed to channel, waits; it checks that they all arrive, in order.
func Burst(t testing.TB, e server.Engine, id, channel string, n int) {
	t.Helper()
	ctx := context.Background()
	done := make(chan server.Batch, 1)
	go func() {
		b, _ := e.Fetch(ctx, id, 10*time.Second)
		done <- b
	}()
	time.Sleep(50 * time.Millisecond)
	for i := range n {
		_, _ = e.Publish(ctx, Payload(channel, i))
	}
	var got []int
	select {
	case b := <-done:
		got = Nums(t, b)
	case <-time.After(Wait):
		t.Fatal("Publish did not wake Fetch")
	}
	if b, _ := e.Fetch(ctx, id, 0); len(b.Payloads) > 0 {
		got = append(got, Nums(t, b)...)
	}
	if len(got) != n || !slices.IsSorted(got) {
		t.Errorf("burst delivered %v", got)
	}
}

// CloseWhileFetching closes e while a Fetch for session id waits. It
// checks that Close succeeds and promptly ends that Fetch, and returns the
// error the Fetch returned.
func CloseWhileFetching(t testing.TB, e server.Engine, id string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := e.Fetch(context.Background(), id, 10*time.Second)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(Wait):
		t.Fatal("Close did not wake Fetch")
		return nil
	}
}

// checkNoResidue checks that e, if it can tell, stores nothing any more.
func checkNoResidue(t *testing.T, e server.Engine, when string) {
	t.Helper()
	r, ok := e.(Residue)
	if !ok {
		return
	}
	if left, err := r.Residue(context.Background()); err != nil || len(left) != 0 {
		t.Errorf("left %s: %q, %v", when, left, err)
	}
}

func testPublishCounts(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	subs := map[string]string{
		"exact": "/a/b",
		"one":   "/a/*",
		"many":  "/a/**",
		"all":   "/**",
		"other": "/c",
		"top":   "/*",
	}
	for id, p := range subs {
		CreateSession(t, e, id)
		Subscribe(t, e, id, p)
	}
	CreateSession(t, e, "none")
	tests := []struct {
		channel string
		want    []string
	}{
		{"/a/b", []string{"all", "exact", "many", "one"}},
		{"/a/b/c", []string{"all", "many"}},
		{"/a", []string{"all", "top"}},
		{"/c", []string{"all", "other", "top"}},
		{"/d/e", []string{"all"}},
	}
	for i, tc := range tests {
		n, err := e.Publish(ctx, Payload(tc.channel, i))
		if err != nil || n != len(tc.want) {
			t.Errorf("Publish(%s) = %d, %v; want %d", tc.channel, n, err, len(tc.want))
		}
		var got []string
		for id := range subs {
			b, err := e.Fetch(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch len(b.Payloads) {
			case 0:
			case 1:
				if p := b.Payloads[0]; p.Channel != tc.channel || Num(t, p) != i {
					t.Errorf("%s got %+v", id, p)
				}
				got = append(got, id)
			default:
				t.Errorf("%s got %d copies of %s", id, len(b.Payloads), tc.channel)
			}
		}
		if slices.Sort(got); !slices.Equal(got, tc.want) {
			t.Errorf("Publish(%s) reached %q, want %q", tc.channel, got, tc.want)
		}
	}
	if b, _ := e.Fetch(ctx, "none", 0); len(b.Payloads) != 0 {
		t.Errorf("unsubscribed session got %d payloads", len(b.Payloads))
	}
	if ok, err := e.Unsubscribe(ctx, "all", "/**"); !ok || err != nil {
		t.Errorf("Unsubscribe = %v, %v", ok, err)
	}
	if ok, _ := e.Unsubscribe(ctx, "all", "/**"); ok {
		t.Error("second Unsubscribe reported a subscription")
	}
	if n, _ := e.Publish(ctx, Payload("/d/e", 0)); n != 0 {
		t.Errorf("after unsubscribe, Publish reached %d", n)
	}
	// Subscribing twice is not an error and does not duplicate.
	Subscribe(t, e, "exact", "/a/b", "/a/b")
	if subs, _ := e.Subscriptions(ctx, "exact"); !slices.Equal(subs, []string{"/a/b"}) {
		t.Errorf("Subscriptions = %q", subs)
	}
	if n, _ := e.SessionCount(ctx); n != 7 {
		t.Errorf("SessionCount = %d, want 7", n)
	}
	if info, ok, err := e.Session(ctx, "exact"); !ok || err != nil || info.ID != "exact" {
		t.Errorf("Session = %+v, %v, %v", info, ok, err)
	}
	if _, ok, _ := e.Session(ctx, "missing"); ok {
		t.Error("Session(missing) found")
	}
}

func testDedup(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/x/y", "/x/*", "/x/**", "/**")
	CreateSession(t, e, "t")
	Subscribe(t, e, "t", "/x/*")
	for i := range 100 {
		if n, err := e.Publish(ctx, Payload("/x/y", i)); err != nil || n != 2 {
			t.Fatalf("Publish #%d = %d, %v; want 2 (one per session)", i, n, err)
		}
	}
	for _, id := range []string{"s", "t"} {
		b, err := e.Fetch(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := Nums(t, b)
		if len(got) != 100 {
			t.Fatalf("%s got %d payloads, want 100", id, len(got))
		}
		for i, n := range got {
			if n != i {
				t.Fatalf("%s: payload %d is %d: out of order or duplicated", id, i, n)
			}
		}
	}
}

func testQueueBound(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	const maxQueue = 3
	e := newEngine(t, Options{Budgets: server.Budgets{MaxQueue: maxQueue}})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/q")
	for i := range 10 {
		if i%2 == 0 {
			if err := e.Deliver(ctx, "s", Payload("/q", i)); err != nil {
				t.Fatal(err)
			}
		} else if n, err := e.Publish(ctx, Payload("/q", i)); n != 1 || err != nil {
			t.Fatalf("Publish = %d, %v", n, err)
		}
	}
	b, err := e.Fetch(ctx, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := Nums(t, b); !slices.Equal(got, []int{7, 8, 9}) || b.Dropped != 7 {
		t.Errorf("Fetch = %v dropped %d, want the newest [7 8 9] and 7 dropped", got, b.Dropped)
	}
	if b, _ = e.Fetch(ctx, "s", 0); len(b.Payloads) != 0 || b.Dropped != 0 {
		t.Errorf("second Fetch = %v dropped %d, want nothing", Nums(t, b), b.Dropped)
	}
	// Many rounds of overflow keep the newest messages in order.
	for round := range 5 {
		n := 2 + round*3
		for i := range n {
			_ = e.Deliver(ctx, "s", Payload("/q", i))
		}
		b, _ = e.Fetch(ctx, "s", 0)
		var want []int
		for i := max(0, n-maxQueue); i < n; i++ {
			want = append(want, i)
		}
		if got := Nums(t, b); !slices.Equal(got, want) || b.Dropped != max(0, n-maxQueue) {
			t.Errorf("round %d: %v dropped %d, want %v dropped %d", round, got, b.Dropped, want, max(0, n-maxQueue))
		}
	}
	// The drop count survives a Fetch that waited.
	for i := range 5 {
		_ = e.Deliver(ctx, "s", Payload("/q", i))
	}
	if b, _ = e.Fetch(ctx, "s", time.Second); b.Dropped != 2 || len(b.Payloads) != 3 {
		t.Errorf("Fetch with wait = %v dropped %d", Nums(t, b), b.Dropped)
	}
	// Drops reported by a Fetch that emptied the queue are not reported
	// again by a Fetch that waits.
	for i := range 4 {
		_ = e.Deliver(ctx, "s", Payload("/q", i))
	}
	_, _ = e.FetchAck(ctx, "s", 99, 0) // removes everything, keeps nothing
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = e.Deliver(ctx, "s", Payload("/q", 9))
	}()
	if b, _ = e.Fetch(ctx, "s", Wait); !slices.Equal(Nums(t, b), []int{9}) || b.Dropped != 0 {
		t.Errorf("after a drained queue, Fetch = %v dropped %d", Nums(t, b), b.Dropped)
	}
}

func testFetchWaitsAndWakes(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")

	start := time.Now()
	b, err := e.Fetch(ctx, "s", 0)
	if d := time.Since(start); err != nil || len(b.Payloads) != 0 || d > 100*time.Millisecond {
		t.Errorf("Fetch(0) = %+v, %v after %v", b, err, d)
	}
	start = time.Now()
	b, err = e.Fetch(ctx, "s", 150*time.Millisecond)
	if d := time.Since(start); err != nil || len(b.Payloads) != 0 || d < 140*time.Millisecond || d > 2*time.Second {
		t.Errorf("Fetch(150ms) with nothing queued = %+v, %v after %v", b, err, d)
	}

	type res struct {
		b   server.Batch
		err error
	}
	done := make(chan res, 1)
	fetch := func(ctx context.Context) {
		b, err := e.Fetch(ctx, "s", 10*time.Second)
		done <- res{b, err}
	}
	go fetch(ctx)
	time.Sleep(50 * time.Millisecond)
	if err := e.Deliver(ctx, "s", Payload("/w", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || len(r.b.Payloads) != 1 {
			t.Errorf("woken Fetch = %+v, %v", r.b, r.err)
		}
	case <-time.After(Wait):
		t.Fatal("Deliver did not wake Fetch")
	}

	// A burst of publishes while one Fetch waits: all delivered, in order.
	Subscribe(t, e, "s", "/burst")
	Burst(t, e, "s", "/burst", 20)

	// Cancelling the context ends the wait without an error.
	cctx, cancel := context.WithCancel(ctx)
	go fetch(cctx)
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		if r.err != nil || len(r.b.Payloads) != 0 {
			t.Errorf("cancelled Fetch = %+v, %v", r.b, r.err)
		}
	case <-time.After(Wait):
		t.Fatal("cancel did not end Fetch")
	}
	// A message queued before Fetch is returned at once, without waiting.
	_ = e.Deliver(ctx, "s", Payload("/w", 2))
	start = time.Now()
	if b, _ := e.Fetch(ctx, "s", 10*time.Second); len(b.Payloads) != 1 || time.Since(start) > time.Second {
		t.Errorf("Fetch with a queued message = %+v after %v", b, time.Since(start))
	}
}

func testFetchAfterDestroy(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/d", "/d/**")
	done := make(chan error, 1)
	go func() {
		_, err := e.Fetch(ctx, "s", 10*time.Second)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	rs, err := e.DestroySession(ctx, "s")
	if err != nil || rs == nil || rs.Info == nil || rs.Info.ID != "s" {
		t.Fatalf("DestroySession = %+v, %v", rs, err)
	}
	if subs := slices.Sorted(slices.Values(rs.Subscriptions)); !slices.Equal(subs, []string{"/d", "/d/**"}) {
		t.Errorf("removed session's subscriptions = %q", subs)
	}
	select {
	case err := <-done:
		if !errors.Is(err, protocol.ErrSessionUnknown) {
			t.Errorf("blocked Fetch = %v, want ErrSessionUnknown", err)
		}
	case <-time.After(Wait):
		t.Fatal("DestroySession did not wake Fetch")
	}
	if rs, err := e.DestroySession(ctx, "s"); rs != nil || err != nil {
		t.Errorf("second DestroySession = %+v, %v; want nil, nil", rs, err)
	}
	unknown := map[string]error{}
	_, unknown["Fetch"] = e.Fetch(ctx, "s", 0)
	_, unknown["FetchAck"] = e.FetchAck(ctx, "s", 0, 0)
	unknown["Subscribe"] = e.Subscribe(ctx, "s", "/x", 0)
	_, unknown["Unsubscribe"] = e.Unsubscribe(ctx, "s", "/d")
	unknown["Deliver"] = e.Deliver(ctx, "s", Payload("/d", 1))
	unknown["Touch"] = e.Touch(ctx, "s", time.Now())
	_, unknown["Subscriptions"] = e.Subscriptions(ctx, "s")
	for op, err := range unknown {
		if !errors.Is(err, protocol.ErrSessionUnknown) {
			t.Errorf("%s after destroy = %v, want ErrSessionUnknown", op, err)
		}
	}
	if n, _ := e.Publish(ctx, Payload("/d", 1)); n != 0 {
		t.Errorf("destroyed session still subscribed: Publish reached %d", n)
	}
	if n, _ := e.SessionCount(ctx); n != 0 {
		t.Errorf("SessionCount = %d", n)
	}
	checkNoResidue(t, e, "after destroy")
}

func testSubscriptionLimit(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	for _, p := range []string{"/a", "/b"} {
		if err := e.Subscribe(ctx, "s", p, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Subscribe(ctx, "s", "/a", 2); err != nil {
		t.Errorf("re-subscribing at the limit = %v", err)
	}
	if err := e.Subscribe(ctx, "s", "/c", 2); !errors.Is(err, protocol.ErrSubscriptionLimit) {
		t.Errorf("over the limit = %v", err)
	}
	if err := e.Subscribe(ctx, "s", "/c", 0); err != nil {
		t.Errorf("limit 0 = %v", err)
	}
}

func testExpiry(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	expired := make(chan string, 10)
	e := newEngine(t, Options{SweepInterval: 20 * time.Millisecond, Hooks: server.EngineHooks{
		Expired: func(rs *server.RemovedSession) { expired <- rs.Info.ID },
	}})
	ctx := context.Background()
	for _, id := range []string{"soon", "later", "never", "kept", "cleared"} {
		CreateSession(t, e, id)
	}
	Subscribe(t, e, "soon", "/exp")
	const soon = 100 * time.Millisecond
	now := time.Now()
	_ = e.Touch(ctx, "soon", now.Add(soon))
	_ = e.Touch(ctx, "later", now.Add(time.Hour))
	_ = e.Touch(ctx, "kept", now.Add(300*time.Millisecond))
	_ = e.Touch(ctx, "cleared", now.Add(50*time.Millisecond))
	_ = e.Touch(ctx, "cleared", time.Time{}) // zero: never expires

	// Keep "kept" alive by touching it, as connects do.
	stop := time.Now().Add(600 * time.Millisecond)
	var got []string
	var at time.Duration
	for time.Now().Before(stop) {
		_ = e.Touch(ctx, "kept", time.Now().Add(300*time.Millisecond))
		select {
		case id := <-expired:
			got = append(got, id)
			at = time.Since(now)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !slices.Equal(got, []string{"soon"}) {
		t.Fatalf("expired %q, want only [soon]", got)
	}
	if at < soon {
		t.Errorf("soon expired after %v, before its expiry time", at)
	}
	if _, ok, _ := e.Session(ctx, "soon"); ok {
		t.Error("expired session still exists")
	}
	if n, _ := e.Publish(ctx, Payload("/exp", 1)); n != 0 {
		t.Errorf("expired session still subscribed")
	}
	for _, id := range []string{"later", "never", "kept", "cleared"} {
		if _, ok, _ := e.Session(ctx, id); !ok {
			t.Errorf("session %s is gone", id)
		}
	}
	// Once no longer touched, "kept" expires too.
	select {
	case id := <-expired:
		if id != "kept" {
			t.Errorf("expired %q, want kept", id)
		}
	case <-time.After(Wait):
		t.Fatal("kept did not expire after touching stopped")
	}
}

func testClose(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	if err := CloseWhileFetching(t, e, "s"); err == nil {
		t.Error("Fetch woken by Close returned no error")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := e.Publish(ctx, Payload("/a", 1)); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := e.CreateSession(ctx, &server.SessionInfo{ID: "t"}); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("CreateSession after Close = %v", err)
	}
}

// testAck: FetchAck keeps messages until acknowledged, by sequence number.
func testAck(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	for i := 1; i <= 3; i++ {
		_ = e.Deliver(ctx, "s", Payload("/a", i))
	}
	b, err := e.FetchAck(ctx, "s", 0, 0)
	if got := Nums(t, b); err != nil || !slices.Equal(got, []int{1, 2, 3}) || b.Last != 3 {
		t.Fatalf("FetchAck(0) = %v last %d, %v", got, b.Last, err)
	}
	// Not acknowledged: sent again.
	b, _ = e.FetchAck(ctx, "s", 0, 0)
	if got := Nums(t, b); !slices.Equal(got, []int{1, 2, 3}) || b.Last != 3 {
		t.Errorf("FetchAck(0) again = %v last %d", got, b.Last)
	}
	_ = e.Deliver(ctx, "s", Payload("/a", 4))
	b, _ = e.FetchAck(ctx, "s", 2, 0)
	if got := Nums(t, b); !slices.Equal(got, []int{3, 4}) || b.Last != 4 {
		t.Errorf("FetchAck(2) = %v last %d", got, b.Last)
	}
	b, _ = e.FetchAck(ctx, "s", 4, 0)
	if len(b.Payloads) != 0 || b.Last != 4 {
		t.Errorf("FetchAck(4) = %v last %d, want nothing and last 4", Nums(t, b), b.Last)
	}
	// Waiting works in ack mode; the acknowledged messages are gone.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = e.Deliver(ctx, "s", Payload("/a", 5))
	}()
	b, err = e.FetchAck(ctx, "s", 4, Wait)
	if got := Nums(t, b); err != nil || !slices.Equal(got, []int{5}) || b.Last != 5 {
		t.Errorf("waiting FetchAck = %v last %d, %v", got, b.Last, err)
	}
	b, _ = e.FetchAck(ctx, "s", 5, 100*time.Millisecond)
	if len(b.Payloads) != 0 || b.Last != 5 {
		t.Errorf("FetchAck after timeout = %v last %d", Nums(t, b), b.Last)
	}

	// Overflow drops the oldest; sequence numbers continue.
	small := newEngine(t, Options{Budgets: server.Budgets{MaxQueue: 3}})
	CreateSession(t, small, "s")
	Subscribe(t, small, "s", "/o")
	for i := 1; i <= 5; i++ {
		_, _ = small.Publish(ctx, Payload("/o", i))
	}
	b, _ = small.FetchAck(ctx, "s", 0, 0)
	if got := Nums(t, b); !slices.Equal(got, []int{3, 4, 5}) || b.Last != 5 || b.Dropped != 2 {
		t.Errorf("FetchAck after overflow = %v last %d dropped %d", got, b.Last, b.Dropped)
	}
	_ = small.Deliver(ctx, "s", Payload("/o", 6)) // unacknowledged 3 drops out
	b, _ = small.FetchAck(ctx, "s", 4, 0)
	if got := Nums(t, b); !slices.Equal(got, []int{5, 6}) || b.Last != 6 || b.Dropped != 1 {
		t.Errorf("FetchAck(4) after overflow = %v last %d dropped %d", got, b.Last, b.Dropped)
	}
	// An ack beyond what was sent acknowledges everything.
	b, _ = small.FetchAck(ctx, "s", 99, 0)
	if len(b.Payloads) != 0 || b.Last != 99 {
		t.Errorf("FetchAck(99) = %v last %d", Nums(t, b), b.Last)
	}
	_ = small.Deliver(ctx, "s", Payload("/o", 7))
	if b, _ = small.FetchAck(ctx, "s", 6, 0); b.Last != 7 {
		t.Errorf("sequence after FetchAck(99) = %d, want 7", b.Last)
	}
}

// testStress runs random operations from many goroutines on shared
// channels, through two nodes of a cluster where the engine has several
// (run it with -race), then checks that the engine's bookkeeping matches
// what the goroutines did.
func testStress(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	opts := Options{Budgets: server.Budgets{MaxQueue: 50}, SweepInterval: 5 * time.Millisecond}
	e := newEngine(t, opts)
	opts.Peer = e
	nodes := []server.Engine{e, newEngine(t, opts)}
	ctx := context.Background()
	const workers, ops = 8, 2000
	patterns := []string{"/s/a", "/s/b", "/s/*", "/s/**", "/**", "/s/a/*", "/t"}
	channels := []string{"/s/a", "/s/b", "/s/a/x", "/t", "/u"}
	// states[w] maps each live session of worker w to its subscriptions.
	states := make([]map[string]map[string]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			live := map[string]map[string]bool{}
			var ids []string
			for i := range ops {
				e := nodes[r.IntN(len(nodes))]
				switch op := r.IntN(10); {
				case op == 0 || len(ids) == 0:
					id := fmt.Sprintf("w%d-%d", w, i)
					if err := e.CreateSession(ctx, &server.SessionInfo{ID: id}); err != nil {
						t.Error(err)
						return
					}
					ids = append(ids, id)
					live[id] = map[string]bool{}
				case op == 1:
					k := r.IntN(len(ids))
					id := ids[k]
					if rs, err := e.DestroySession(ctx, id); rs == nil || err != nil {
						t.Errorf("destroy %s: %v, %v", id, rs, err)
					}
					ids = slices.Delete(ids, k, k+1)
					delete(live, id)
				case op <= 4:
					id, p := ids[r.IntN(len(ids))], patterns[r.IntN(len(patterns))]
					if err := e.Subscribe(ctx, id, p, 0); err != nil {
						t.Errorf("subscribe: %v", err)
					}
					live[id][p] = true
				case op == 5:
					id, p := ids[r.IntN(len(ids))], patterns[r.IntN(len(patterns))]
					if ok, err := e.Unsubscribe(ctx, id, p); err != nil || ok != live[id][p] {
						t.Errorf("unsubscribe %s %s = %v, %v; want %v", id, p, ok, err, live[id][p])
					}
					delete(live[id], p)
				case op <= 7:
					if _, err := e.Publish(ctx, Payload(channels[r.IntN(len(channels))], i)); err != nil {
						t.Errorf("publish: %v", err)
					}
				case op == 8:
					if _, err := e.Fetch(ctx, ids[r.IntN(len(ids))], 0); err != nil {
						t.Errorf("fetch: %v", err)
					}
				default:
					_ = e.Deliver(ctx, ids[r.IntN(len(ids))], Payload("/direct", i))
					_ = e.Touch(ctx, ids[r.IntN(len(ids))], time.Now().Add(time.Hour))
				}
			}
			states[w] = live
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for _, live := range states {
		total += len(live)
		for id, subs := range live {
			got, err := e.Subscriptions(ctx, id)
			if err != nil {
				t.Fatalf("session %s: %v", id, err)
			}
			slices.Sort(got)
			var want []string
			for p := range subs {
				want = append(want, p)
			}
			if slices.Sort(want); !slices.Equal(got, want) {
				t.Errorf("session %s subscriptions %q, want %q", id, got, want)
			}
		}
	}
	if n, _ := e.SessionCount(ctx); n != total {
		t.Errorf("SessionCount = %d, want %d", n, total)
	}
	// Publish counts agree with the recorded subscriptions.
	for _, ch := range channels {
		want := 0
		for _, live := range states {
			for _, subs := range live {
				for p := range subs {
					if protocol.Match(p, ch) {
						want++
						break
					}
				}
			}
		}
		if n, _ := e.Publish(ctx, Payload(ch, 0)); n != want {
			t.Errorf("Publish(%s) reached %d sessions, want %d", ch, n, want)
		}
	}
	// Destroying everything leaves no subscriber behind.
	for _, live := range states {
		for id := range live {
			_, _ = e.DestroySession(ctx, id)
		}
	}
	for _, ch := range channels {
		if n, _ := e.Publish(ctx, Payload(ch, 0)); n != 0 {
			t.Errorf("after destroying every session, Publish(%s) reached %d", ch, n)
		}
	}
	checkNoResidue(t, e, "after destroying every session")
}

// testConcurrentPublishOnce: concurrent publishes, from two nodes where
// the engine has several, to a channel that sessions reach through several
// overlapping subscriptions must each be queued exactly once per session.
func testConcurrentPublishOnce(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	a := newEngine(t, Options{Budgets: server.Budgets{MaxQueue: 1 << 20}})
	b := newEngine(t, Options{Budgets: server.Budgets{MaxQueue: 1 << 20}, Peer: a})
	ctx := context.Background()
	const sessions, workers, each = 20, 8, 500
	for i := range sessions {
		id := "s" + strconv.Itoa(i)
		CreateSession(t, a, id)
		Subscribe(t, b, id, "/d/x", "/d/*", "/d/**", "/**")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for w := range workers {
		wg.Go(func() {
			e := []server.Engine{a, b}[w%2]
			for i := range each {
				if n, err := e.Publish(ctx, Payload("/d/x", w*each+i)); err != nil || n != sessions {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("publish %d = %d, %v", w*each+i, n, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, msg := range bad {
		t.Error(msg)
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d publishes reported a count other than %d sessions", len(bad), workers*each, sessions)
	}
	badSessions, totalDups := 0, 0
	for i := range sessions {
		bt, err := b.Fetch(ctx, "s"+strconv.Itoa(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[int]int, workers*each)
		for _, n := range Nums(t, bt) {
			seen[n]++
		}
		dups := 0
		for n, c := range seen {
			if c > 1 {
				dups += c - 1
				t.Errorf("session s%d got message %d %d times", i, n, c)
			}
		}
		if len(seen) != workers*each {
			t.Errorf("session s%d: %d distinct messages, want %d", i, len(seen), workers*each)
		}
		if dups > 0 {
			badSessions++
			totalDups += dups
		}
	}
	if badSessions > 0 {
		t.Errorf("%d of %d sessions got duplicates (%d extra copies of %d messages)", badSessions, sessions, totalDups, workers*each)
	}
}

func testListingAndHistory(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		CreateSession(t, e, id)
	}
	Subscribe(t, e, "a", "/h", "/h/*")
	Subscribe(t, e, "b", "/h/*")
	ids := func(infos []*server.SessionInfo, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range infos {
			out = append(out, in.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(e.ListSessions(ctx)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("ListSessions = %q", got)
	}
	if got := ids(e.Subscribers(ctx, "/h/*")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Subscribers(/h/*) = %q", got)
	}
	if got := ids(e.Subscribers(ctx, "/h")); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Subscribers(/h) = %q", got)
	}
	if got := ids(e.Subscribers(ctx, "/h/x")); len(got) != 0 {
		t.Errorf("Subscribers(/h/x) = %q, want none (wildcards are not expanded)", got)
	}
	_, _ = e.DestroySession(ctx, "a")
	if got := ids(e.Subscribers(ctx, "/h/*")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after destroy, Subscribers(/h/*) = %q", got)
	}

	for i := range 5 {
		if err := e.AppendHistory(ctx, "/h", []byte(strconv.Itoa(i)), 3); err != nil {
			t.Fatal(err)
		}
	}
	h, err := e.History(ctx, "/h", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range h {
		got = append(got, string(b))
	}
	if !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Errorf("History = %q, want the newest 3, oldest first", got)
	}
	if h, _ := e.History(ctx, "/h", 2); len(h) != 2 || string(h[0]) != "3" || string(h[1]) != "4" {
		t.Errorf("History(2) = %q", h)
	}
	if h, _ := e.History(ctx, "/none", 5); len(h) != 0 {
		t.Errorf("History of an unknown channel = %q", h)
	}
	if err := e.AppendHistory(ctx, "/off", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if h, _ := e.History(ctx, "/off", 5); len(h) != 0 {
		t.Errorf("AppendHistory with max 0 stored %q", h)
	}
}

// testQueueBytes: a queue over MaxQueueBytes drops its oldest messages,
// counted in Dropped and reported by reason, but always keeps the newest,
// however big.
func testQueueBytes(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	var drops DropCounter
	e := newEngine(t, Options{Budgets: server.Budgets{MaxQueueBytes: 3500}, Hooks: drops.Hooks()})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/q")
	for i := range 10 {
		if i%2 == 0 {
			if err := e.Deliver(ctx, "s", SizedPayload("/q", i, 1000)); err != nil {
				t.Fatal(err)
			}
		} else if n, err := e.Publish(ctx, SizedPayload("/q", i, 1000)); n != 1 || err != nil {
			t.Fatalf("Publish = %d, %v", n, err)
		}
	}
	b, err := e.Fetch(ctx, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := Nums(t, b); !slices.Equal(got, []int{7, 8, 9}) || b.Dropped != 7 {
		t.Errorf("Fetch = %v dropped %d, want the newest 3 KB [7 8 9] and 7 dropped", got, b.Dropped)
	}
	if n := drops.Get(server.DropQueueBytes); n != 7 {
		t.Errorf("Dropped hook reported %d for %s, want 7", n, server.DropQueueBytes)
	}
	// A message bigger than the whole budget stays alone: it is the
	// newest, and a client must be able to receive it.
	_ = e.Deliver(ctx, "s", SizedPayload("/q", 10, 500))
	_ = e.Deliver(ctx, "s", SizedPayload("/q", 11, 5000))
	if b, _ = e.Fetch(ctx, "s", 0); !slices.Equal(Nums(t, b), []int{11}) || b.Dropped != 1 {
		t.Errorf("after a message over the budget, Fetch = %v dropped %d; want [11] dropped 1", Nums(t, b), b.Dropped)
	}
	// The budget counts what is queued now: fetched messages free it.
	for i := range 3 {
		_ = e.Deliver(ctx, "s", SizedPayload("/q", i, 1000))
	}
	if b, _ = e.Fetch(ctx, "s", 0); len(b.Payloads) != 3 || b.Dropped != 0 {
		t.Errorf("after draining, 3 KB queued: Fetch = %v dropped %d", Nums(t, b), b.Dropped)
	}
	// The message bound still counts, with its own reason.
	small := newEngine(t, Options{Budgets: server.Budgets{MaxQueue: 2}, Hooks: drops.Hooks()})
	CreateSession(t, small, "s")
	for i := range 5 {
		_ = small.Deliver(ctx, "s", Payload("/q", i))
	}
	if b, _ = small.Fetch(ctx, "s", 0); !slices.Equal(Nums(t, b), []int{3, 4}) || b.Dropped != 3 {
		t.Errorf("MaxQueue 2: Fetch = %v dropped %d", Nums(t, b), b.Dropped)
	}
	if n := drops.Get(server.DropQueueLength); n != 3 {
		t.Errorf("Dropped hook reported %d for %s, want 3", n, server.DropQueueLength)
	}
}

// testFetchBytes: one Fetch returns at most MaxFetchBytes of messages (at
// least one), the rest staying queued for the next, also when it waited.
func testFetchBytes(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{Budgets: server.Budgets{MaxFetchBytes: 2500}})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/f")
	for i := range 5 {
		if _, err := e.Publish(ctx, SizedPayload("/f", i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range [][]int{{0, 1}, {2, 3}, {4}, nil} {
		b, err := e.Fetch(ctx, "s", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Nums(t, b); !slices.Equal(got, want) || b.Dropped != 0 {
			t.Errorf("Fetch = %v dropped %d, want %v (2.5 KB per fetch)", got, b.Dropped, want)
		}
	}
	// One message over the cap goes alone.
	_ = e.Deliver(ctx, "s", SizedPayload("/f", 5, 4000))
	_ = e.Deliver(ctx, "s", SizedPayload("/f", 6, 100))
	if b, _ := e.Fetch(ctx, "s", time.Second); !slices.Equal(Nums(t, b), []int{5}) {
		t.Errorf("Fetch with a 4 KB message first = %v, want [5] alone", Nums(t, b))
	}
	if b, _ := e.Fetch(ctx, "s", time.Second); !slices.Equal(Nums(t, b), []int{6}) {
		t.Errorf("next Fetch = %v, want [6]", Nums(t, b))
	}
	// A waiting poll woken by a burst takes a capped batch too.
	_, stop, ch, err := startPoll(e, "s", false, 0, Wait)
	if err != nil || stop == nil {
		t.Fatalf("Poll on an empty queue: stop %v, %v", stop != nil, err)
	}
	for i := 7; i < 10; i++ {
		_ = e.Deliver(ctx, "s", SizedPayload("/f", i, 1000))
	}
	var got []int
	r := awaitPoll(t, ch, "poll woken by a burst")
	got = append(got, Nums(t, r.b)...)
	if len(got) > 2 {
		t.Errorf("a woken poll returned %v: more than 2.5 KB", got)
	}
	for range 3 {
		b, _ := e.Fetch(ctx, "s", 0)
		got = append(got, Nums(t, b)...)
	}
	if !slices.Equal(got, []int{7, 8, 9}) {
		t.Errorf("poll and fetches after it delivered %v, want [7 8 9] in order", got)
	}
}

// testAckFetchBytes: in ack mode a fetch returns what is unacknowledged
// within MaxFetchBytes; without an ack the same batch is sent again, and
// each ack moves on to the next.
func testAckFetchBytes(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{Budgets: server.Budgets{MaxFetchBytes: 2500}})
	ctx := context.Background()
	CreateSession(t, e, "s")
	for i := 1; i <= 5; i++ {
		_ = e.Deliver(ctx, "s", SizedPayload("/a", i, 1000))
	}
	for _, tc := range []struct {
		ack  uint64
		want []int
		last uint64
	}{
		{0, []int{1, 2}, 2},
		{0, []int{1, 2}, 2}, // not acknowledged: the same, within the cap
		{1, []int{2, 3}, 3},
		{3, []int{4, 5}, 5},
		{5, nil, 5},
	} {
		b, err := e.FetchAck(ctx, "s", tc.ack, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Nums(t, b); !slices.Equal(got, tc.want) || b.Last != tc.last {
			t.Errorf("FetchAck(%d) = %v last %d, want %v last %d", tc.ack, got, b.Last, tc.want, tc.last)
		}
	}
	// A message over the cap goes alone, and is sent again until acked.
	_ = e.Deliver(ctx, "s", SizedPayload("/a", 6, 4000))
	_ = e.Deliver(ctx, "s", SizedPayload("/a", 7, 100))
	for range 2 {
		if b, _ := e.FetchAck(ctx, "s", 5, 0); !slices.Equal(Nums(t, b), []int{6}) || b.Last != 6 {
			t.Errorf("FetchAck(5) = %v last %d, want [6] alone, last 6", Nums(t, b), b.Last)
		}
	}
	if b, _ := e.FetchAck(ctx, "s", 6, 0); !slices.Equal(Nums(t, b), []int{7}) || b.Last != 7 {
		t.Errorf("FetchAck(6) = %v last %d, want [7] last 7", Nums(t, b), b.Last)
	}
}

// testQueuedBytes: when all queues together go over MaxQueuedBytes, the
// biggest queue loses its oldest messages until they are back under 7/8
// of it; the small queues keep everything, every drop is reported to its
// session and to the hook, and the engine takes messages again as usual.
func testQueuedBytes(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	var drops DropCounter
	e := newEngine(t, Options{Budgets: server.Budgets{MaxQueuedBytes: 10000, MaxQueueBytes: 1 << 20, MaxFetchBytes: 1 << 20},
		Hooks: drops.Hooks()})
	ctx := context.Background()
	for _, id := range []string{"big", "mid", "small"} {
		CreateSession(t, e, id)
	}
	_ = e.Deliver(ctx, "small", SizedPayload("/d", 0, 1000))
	for i := range 3 {
		_ = e.Deliver(ctx, "mid", SizedPayload("/d", i, 1000))
	}
	// 4 KB elsewhere; the 7th KB of big makes 11 KB: big goes down to
	// 4 KB so that 8 KB (under 8750 bytes) remain.
	for i := range 7 {
		if err := e.Deliver(ctx, "big", SizedPayload("/d", i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id      string
		want    []int
		dropped int
	}{
		{"big", []int{3, 4, 5, 6}, 3},
		{"mid", []int{0, 1, 2}, 0},
		{"small", []int{0}, 0},
	} {
		b, err := e.Fetch(ctx, tc.id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Nums(t, b); !slices.Equal(got, tc.want) || b.Dropped != tc.dropped {
			t.Errorf("%s: Fetch = %v dropped %d, want %v dropped %d", tc.id, got, b.Dropped, tc.want, tc.dropped)
		}
	}
	if n := drops.Get(server.DropQueuedBytes); n != 3 {
		t.Errorf("Dropped hook reported %d for %s, want 3", n, server.DropQueuedBytes)
	}
	// Drained: the budget is free again.
	for i := range 9 {
		_ = e.Deliver(ctx, "mid", SizedPayload("/d", i, 1000))
	}
	if b, _ := e.Fetch(ctx, "mid", 0); len(b.Payloads) != 9 || b.Dropped != 0 {
		t.Errorf("after draining, 9 KB to one queue: Fetch = %v dropped %d", Nums(t, b), b.Dropped)
	}
	// Destroying a session frees its bytes too.
	for i := range 9 {
		_ = e.Deliver(ctx, "big", SizedPayload("/d", i, 1000))
	}
	if _, err := e.DestroySession(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		_ = e.Deliver(ctx, "small", SizedPayload("/d", i, 1000))
	}
	if b, _ := e.Fetch(ctx, "small", 0); len(b.Payloads) != 9 || b.Dropped != 0 {
		t.Errorf("after destroying a full queue, 9 KB to another: Fetch = %v dropped %d", Nums(t, b), b.Dropped)
	}
}

// testHistoryChannels: the engine keeps the history of at most
// MaxHistoryChannels channels, forgetting the least recently used
// (appended to or read).
func testHistoryChannels(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	var drops DropCounter
	e := newEngine(t, Options{Budgets: server.Budgets{MaxHistoryChannels: 3}, Hooks: drops.Hooks()})
	ctx := context.Background()
	appendTo := func(ch string) {
		t.Helper()
		if err := e.AppendHistory(ctx, ch, []byte(ch), 5); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range []string{"/h/0", "/h/1", "/h/2"} {
		appendTo(ch)
	}
	if _, err := e.History(ctx, "/h/0", 5); err != nil { // /h/1 is now the least recently used
		t.Fatal(err)
	}
	appendTo("/h/3")
	appendTo("/h/2")
	appendTo("/h/4") // forgets /h/0
	for _, tc := range []struct {
		ch   string
		want int
	}{{"/h/0", 0}, {"/h/1", 0}, {"/h/2", 2}, {"/h/3", 1}, {"/h/4", 1}} {
		if h, err := e.History(ctx, tc.ch, 5); err != nil || len(h) != tc.want {
			t.Errorf("History(%s) = %q, %v; want %d entries", tc.ch, h, err, tc.want)
		}
	}
	if n := drops.Get(server.DropHistory); n != 2 {
		t.Errorf("Dropped hook reported %d for %s, want 2", n, server.DropHistory)
	}
}

// pollResult is what a Poll's done received.
type pollResult struct {
	b   server.Batch
	err error
}

// startPoll polls id and returns the immediate result, or the stop func and
// a channel for the later one.
func startPoll(e server.Engine, id string, ackMode bool, ack uint64, wait time.Duration) (server.Batch, func() bool, <-chan pollResult, error) {
	ch := make(chan pollResult, 2) // 2: a second call of done is caught below
	b, stop, err := e.Poll(id, ackMode, ack, wait, func(b server.Batch, err error) { ch <- pollResult{b, err} })
	return b, stop, ch, err
}

func awaitPoll(t *testing.T, ch <-chan pollResult, what string) pollResult {
	t.Helper()
	select {
	case r := <-ch:
		select {
		case <-ch:
			t.Fatalf("%s: done called twice", what)
		case <-time.After(50 * time.Millisecond):
		}
		return r
	case <-time.After(Wait):
		t.Fatalf("%s: done not called", what)
	}
	return pollResult{}
}

// testPoll: Poll answers at once when something is queued, otherwise calls
// done once when a message arrives, when wait passes, when stopped (with
// nothing taken: the messages stay for the next fetch) and when the
// session is destroyed; in ack mode it keeps what it returned until acked.
func testPoll(t *testing.T, newEngine func(*testing.T, Options) server.Engine) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "p1")
	Subscribe(t, e, "p1", "/poll")

	if _, err := e.Publish(ctx, Payload("/poll", 1)); err != nil {
		t.Fatal(err)
	}
	b, stop, _, err := startPoll(e, "p1", false, 0, time.Minute)
	if err != nil || stop != nil || !slices.Equal(Nums(t, b), []int{1}) {
		t.Fatalf("queued message: got %v stop=%v err=%v, want [1] at once", Nums(t, b), stop != nil, err)
	}

	// Waiting: a publish wakes it with the message.
	b, stop, ch, err := startPoll(e, "p1", false, 0, time.Minute)
	if err != nil || stop == nil || len(b.Payloads) != 0 {
		t.Fatalf("empty queue: got %d messages, stop=%v, err=%v; want a waiting poll", len(b.Payloads), stop != nil, err)
	}
	if _, err := e.Publish(ctx, Payload("/poll", 2)); err != nil {
		t.Fatal(err)
	}
	if r := awaitPoll(t, ch, "woken poll"); r.err != nil || !slices.Equal(Nums(t, r.b), []int{2}) {
		t.Fatalf("woken poll: got %v, %v; want [2]", Nums(t, r.b), r.err)
	}
	if stop() {
		t.Fatal("stop after done reported that it stopped the poll")
	}

	// Timeout: done with nothing.
	start := time.Now()
	_, stop, ch, err = startPoll(e, "p1", false, 0, 200*time.Millisecond)
	if err != nil || stop == nil {
		t.Fatalf("poll with timeout: stop=%v err=%v", stop != nil, err)
	}
	if r := awaitPoll(t, ch, "timed-out poll"); r.err != nil || len(r.b.Payloads) != 0 {
		t.Fatalf("timed-out poll: got %v, %v", Nums(t, r.b), r.err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("poll with a 200ms wait returned after %v", d)
	}

	// Stop: done with nothing, and what arrives afterwards stays queued.
	_, stop, ch, _ = startPoll(e, "p1", false, 0, time.Minute)
	if !stop() {
		t.Fatal("stop of a waiting poll reported that it did nothing")
	}
	if r := awaitPoll(t, ch, "stopped poll"); r.err != nil || len(r.b.Payloads) != 0 {
		t.Fatalf("stopped poll: got %v, %v", Nums(t, r.b), r.err)
	}
	if _, err := e.Publish(ctx, Payload("/poll", 3)); err != nil {
		t.Fatal(err)
	}
	if b, err := e.Fetch(ctx, "p1", 0); err != nil || !slices.Equal(Nums(t, b), []int{3}) {
		t.Fatalf("after a stopped poll: fetched %v, %v; want [3]", Nums(t, b), err)
	}

	// Ack mode: returned messages stay until acknowledged.
	CreateSession(t, e, "p2")
	Subscribe(t, e, "p2", "/poll")
	_, stop, ch, _ = startPoll(e, "p2", true, 0, time.Minute)
	if stop == nil {
		t.Fatal("ack poll on an empty queue did not wait")
	}
	if _, err := e.Publish(ctx, Payload("/poll", 4)); err != nil {
		t.Fatal(err)
	}
	r := awaitPoll(t, ch, "ack poll")
	if r.err != nil || !slices.Equal(Nums(t, r.b), []int{4}) || r.b.Last == 0 {
		t.Fatalf("ack poll: got %v last=%d err=%v", Nums(t, r.b), r.b.Last, r.err)
	}
	b, stop, _, err = startPoll(e, "p2", true, 0, time.Minute)
	if err != nil || stop != nil || !slices.Equal(Nums(t, b), []int{4}) {
		t.Fatalf("unacknowledged message not polled again: %v stop=%v err=%v", Nums(t, b), stop != nil, err)
	}
	_, stop, ch, _ = startPoll(e, "p2", true, r.b.Last, time.Minute)
	if stop == nil {
		t.Fatal("acknowledged message polled again")
	}

	// Destroy wakes the waiting poll with ErrSessionUnknown.
	if _, err := e.DestroySession(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if r := awaitPoll(t, ch, "poll of a destroyed session"); !errors.Is(r.err, protocol.ErrSessionUnknown) {
		t.Fatalf("poll of a destroyed session: err %v, want ErrSessionUnknown", r.err)
	}
	if _, _, _, err := startPoll(e, "nosuch", false, 0, time.Minute); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Fatalf("poll of an unknown session: err %v", err)
	}
}
