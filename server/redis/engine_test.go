package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// hWait bounds every wait for something that should happen promptly.
const hWait = 5 * time.Second

// engine returns a started engine on the shared redis-server.
func engine(t *testing.T, opts Options, hooks server.EngineHooks) *Engine {
	t.Helper()
	return newTestEngine(t, sharedRedis(t).URL, opts, hooks)
}

func mkSession(t *testing.T, e server.Engine, id string) {
	t.Helper()
	if err := e.CreateSession(context.Background(), &server.SessionInfo{ID: id, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func mkSub(t *testing.T, e server.Engine, id string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if err := e.Subscribe(context.Background(), id, p, 0); err != nil {
			t.Fatalf("Subscribe(%s, %s): %v", id, p, err)
		}
	}
}

func testPayload(channel string, n int) *server.Payload {
	return &server.Payload{Channel: channel, JSON: []byte(fmt.Sprintf(`{"channel":%q,"data":%d}`, channel, n))}
}

func payloadNum(t *testing.T, p *server.Payload) int {
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

func nums(t *testing.T, b server.Batch) []int {
	t.Helper()
	var out []int
	for _, p := range b.Payloads {
		out = append(out, payloadNum(t, p))
	}
	return out
}

func TestPublishCounts(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
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
		mkSession(t, e, id)
		mkSub(t, e, id, p)
	}
	mkSession(t, e, "none")
	type testCase struct {
		channel string
		want    []string
	}
	tests := []testCase{
		{"/a/b", []string{"all", "exact", "many", "one"}},
		{"/a/b/c", []string{"all", "many"}},
		{"/a", []string{"all", "top"}},
		{"/c", []string{"all", "other", "top"}},
		{"/d/e", []string{"all"}},
	}
	for i, tc := range tests {
		n, err := e.Publish(ctx, testPayload(tc.channel, i))
		if err != nil || n != len(tc.want) {
			t.Errorf("Publish(%s) = %d, %v; want %d", tc.channel, n, err, len(tc.want))
		}
		var got []string
		for id := range subs {
			b, err := e.Fetch(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Payloads) > 1 {
				t.Errorf("%s got %d copies of %s", id, len(b.Payloads), tc.channel)
			}
			if len(b.Payloads) == 1 {
				if p := b.Payloads[0]; p.Channel != tc.channel || payloadNum(t, p) != i {
					t.Errorf("%s got %+v", id, p)
				}
				got = append(got, id)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Publish(%s) reached %q, want %q", tc.channel, got, tc.want)
		}
	}
	if b, _ := e.Fetch(ctx, "none", 0); len(b.Payloads) != 0 {
		t.Errorf("unsubscribed session got %d payloads", len(b.Payloads))
	}
	ok, err := e.Unsubscribe(ctx, "all", "/**")
	if !ok || err != nil {
		t.Errorf("Unsubscribe = %v, %v", ok, err)
	}
	if ok, _ := e.Unsubscribe(ctx, "all", "/**"); ok {
		t.Error("second Unsubscribe reported a subscription")
	}
	if n, _ := e.Publish(ctx, testPayload("/d/e", 0)); n != 0 {
		t.Errorf("after unsubscribe, Publish reached %d", n)
	}
	mkSub(t, e, "exact", "/a/b", "/a/b")
	if subs, _ := e.Subscriptions(ctx, "exact"); !slices.Equal(subs, []string{"/a/b"}) {
		t.Errorf("Subscriptions = %q", subs)
	}
	if n, _ := e.SessionCount(ctx); n != 7 {
		t.Errorf("SessionCount = %d, want 7", n)
	}
	info, ok, err := e.Session(ctx, "exact")
	if !ok || err != nil || info.ID != "exact" {
		t.Errorf("Session = %+v, %v, %v", info, ok, err)
	}
	if _, ok, _ := e.Session(ctx, "missing"); ok {
		t.Error("Session(missing) found")
	}
	if err := e.CreateSession(ctx, &server.SessionInfo{ID: "exact"}); err == nil {
		t.Error("CreateSession with an existing id succeeded")
	}
}

// TestPayloadFields: a payload read back from Redis keeps its channel, its
// publisher and its JSON byte for byte; Msg is nil and Message decodes.
func TestPayloadFields(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
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
	b, err := e.Fetch(ctx, "s", 0)
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

func TestDedup(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")
	mkSub(t, e, "s", "/x/y", "/x/*", "/x/**", "/**")
	mkSession(t, e, "t")
	mkSub(t, e, "t", "/x/*")
	for i := range 100 {
		n, err := e.Publish(ctx, testPayload("/x/y", i))
		if err != nil || n != 2 {
			t.Fatalf("Publish #%d = %d, %v; want 2 (one per session)", i, n, err)
		}
	}
	for _, id := range []string{"s", "t"} {
		b, err := e.Fetch(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := nums(t, b)
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

func TestQueueBound(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{MaxQueue: 3}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")
	mkSub(t, e, "s", "/q")
	for i := range 10 {
		if i%2 == 0 {
			if err := e.Deliver(ctx, "s", testPayload("/q", i)); err != nil {
				t.Fatal(err)
			}
		} else if n, err := e.Publish(ctx, testPayload("/q", i)); n != 1 || err != nil {
			t.Fatalf("Publish = %d, %v", n, err)
		}
	}
	b, err := e.Fetch(ctx, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := nums(t, b); !slices.Equal(got, []int{7, 8, 9}) || b.Dropped != 7 {
		t.Errorf("Fetch = %v dropped %d, want the newest [7 8 9] and 7 dropped", got, b.Dropped)
	}
	b, _ = e.Fetch(ctx, "s", 0)
	if len(b.Payloads) != 0 || b.Dropped != 0 {
		t.Errorf("second Fetch = %v dropped %d, want nothing", nums(t, b), b.Dropped)
	}
	for round := range 5 {
		for i := range 2 + round*3 {
			_ = e.Deliver(ctx, "s", testPayload("/q", i))
		}
		b, _ = e.Fetch(ctx, "s", 0)
		n := 2 + round*3
		want := []int{}
		for i := max(0, n-3); i < n; i++ {
			want = append(want, i)
		}
		if got := nums(t, b); !slices.Equal(got, want) || b.Dropped != max(0, n-3) {
			t.Errorf("round %d: %v dropped %d, want %v dropped %d", round, got, b.Dropped, want, max(0, n-3))
		}
	}
	for i := range 5 {
		_ = e.Deliver(ctx, "s", testPayload("/q", i))
	}
	b, _ = e.Fetch(ctx, "s", time.Second)
	if b.Dropped != 2 || len(b.Payloads) != 3 {
		t.Errorf("Fetch with wait = %v dropped %d", nums(t, b), b.Dropped)
	}
	// Drops counted while nothing was queued survive a Fetch that waited.
	for i := range 4 {
		_ = e.Deliver(ctx, "s", testPayload("/q", i))
	}
	_, _ = e.FetchAck(ctx, "s", 99, 0) // removes everything, keeps nothing
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = e.Deliver(ctx, "s", testPayload("/q", 9))
	}()
	b, _ = e.Fetch(ctx, "s", hWait)
	if got := nums(t, b); !slices.Equal(got, []int{9}) || b.Dropped != 0 {
		t.Errorf("after a drained queue, Fetch = %v dropped %d", got, b.Dropped)
	}
}

func TestFetchWaitsAndWakes(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")

	start := time.Now()
	b, err := e.Fetch(ctx, "s", 0)
	if err != nil || len(b.Payloads) != 0 || time.Since(start) > 500*time.Millisecond {
		t.Errorf("Fetch(0) = %+v, %v after %v", b, err, time.Since(start))
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
	go func() {
		b, err := e.Fetch(ctx, "s", 10*time.Second)
		done <- res{b, err}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := e.Deliver(ctx, "s", testPayload("/w", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || len(r.b.Payloads) != 1 {
			t.Errorf("woken Fetch = %+v, %v", r.b, r.err)
		}
	case <-time.After(hWait):
		t.Fatal("Deliver did not wake Fetch")
	}

	// A burst of publishes while one Fetch waits: one notice, all delivered.
	mkSub(t, e, "s", "/burst")
	go func() {
		b, err := e.Fetch(ctx, "s", 10*time.Second)
		done <- res{b, err}
	}()
	time.Sleep(50 * time.Millisecond)
	notices := e.Stats().Notices
	for i := range 20 {
		_, _ = e.Publish(ctx, testPayload("/burst", i))
	}
	var got []int
	select {
	case r := <-done:
		got = nums(t, r.b)
	case <-time.After(hWait):
		t.Fatal("Publish did not wake Fetch")
	}
	if b, _ := e.Fetch(ctx, "s", 0); len(b.Payloads) > 0 {
		got = append(got, nums(t, b)...)
	}
	if len(got) != 20 || !slices.IsSorted(got) {
		t.Errorf("burst delivered %v", got)
	}
	if n := e.Stats().Notices - notices; n != 1 {
		t.Errorf("a burst to one waiting session sent %d notices, want 1", n)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() {
		b, err := e.Fetch(cctx, "s", 10*time.Second)
		done <- res{b, err}
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		if r.err != nil || len(r.b.Payloads) != 0 {
			t.Errorf("cancelled Fetch = %+v, %v", r.b, r.err)
		}
	case <-time.After(hWait):
		t.Fatal("cancel did not end Fetch")
	}
	_ = e.Deliver(ctx, "s", testPayload("/w", 2))
	start = time.Now()
	if b, _ := e.Fetch(ctx, "s", 10*time.Second); len(b.Payloads) != 1 || time.Since(start) > time.Second {
		t.Errorf("Fetch with a queued message = %+v after %v", b, time.Since(start))
	}
}

func TestFetchAfterDestroy(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")
	mkSub(t, e, "s", "/d", "/d/**")
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
	case <-time.After(hWait):
		t.Fatal("DestroySession did not wake Fetch")
	}
	if _, err := e.Fetch(ctx, "s", 0); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Fetch after destroy = %v", err)
	}
	if _, err := e.FetchAck(ctx, "s", 0, 0); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("FetchAck after destroy = %v", err)
	}
	if rs, err := e.DestroySession(ctx, "s"); rs != nil || err != nil {
		t.Errorf("second DestroySession = %+v, %v; want nil, nil", rs, err)
	}
	if err := e.Subscribe(ctx, "s", "/x", 0); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Subscribe after destroy = %v", err)
	}
	if _, err := e.Unsubscribe(ctx, "s", "/d"); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Unsubscribe after destroy = %v", err)
	}
	if err := e.Deliver(ctx, "s", testPayload("/d", 1)); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Deliver after destroy = %v", err)
	}
	if err := e.Touch(ctx, "s", time.Now()); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Touch after destroy = %v", err)
	}
	if _, err := e.Subscriptions(ctx, "s"); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Subscriptions after destroy = %v", err)
	}
	if n, _ := e.Publish(ctx, testPayload("/d", 1)); n != 0 {
		t.Errorf("destroyed session still subscribed: Publish reached %d", n)
	}
	if n, _ := e.SessionCount(ctx); n != 0 {
		t.Errorf("SessionCount = %d", n)
	}
	// Nothing of the session is left in Redis.
	keys, err := e.Client().Keys(ctx, e.opts.Prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys left after destroy: %q, %v", keys, err)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")
	if err := e.Subscribe(ctx, "s", "/a", 2); err != nil {
		t.Fatal(err)
	}
	if err := e.Subscribe(ctx, "s", "/b", 2); err != nil {
		t.Fatal(err)
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

func TestExpiry(t *testing.T) {
	t.Parallel()
	expired := make(chan string, 10)
	e := engine(t, Options{SweepInterval: 20 * time.Millisecond}, server.EngineHooks{Expired: func(rs *server.RemovedSession) {
		expired <- rs.Info.ID
	}})
	ctx := context.Background()
	for _, id := range []string{"soon", "later", "never", "kept", "cleared"} {
		mkSession(t, e, id)
	}
	mkSub(t, e, "soon", "/exp")
	now := time.Now()
	_ = e.Touch(ctx, "soon", now.Add(100*time.Millisecond))
	_ = e.Touch(ctx, "later", now.Add(time.Hour))
	_ = e.Touch(ctx, "kept", now.Add(300*time.Millisecond))
	_ = e.Touch(ctx, "cleared", now.Add(50*time.Millisecond))
	_ = e.Touch(ctx, "cleared", time.Time{})

	stop := time.Now().Add(600 * time.Millisecond)
	var got []string
	for time.Now().Before(stop) {
		_ = e.Touch(ctx, "kept", time.Now().Add(300*time.Millisecond))
		select {
		case id := <-expired:
			got = append(got, id)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !slices.Equal(got, []string{"soon"}) {
		t.Fatalf("expired %q, want only [soon]", got)
	}
	if _, ok, _ := e.Session(ctx, "soon"); ok {
		t.Error("expired session still exists")
	}
	if n, _ := e.Publish(ctx, testPayload("/exp", 1)); n != 0 {
		t.Errorf("expired session still subscribed")
	}
	for _, id := range []string{"later", "never", "kept", "cleared"} {
		if _, ok, _ := e.Session(ctx, id); !ok {
			t.Errorf("session %s is gone", id)
		}
	}
	select {
	case id := <-expired:
		if id != "kept" {
			t.Errorf("expired %q, want kept", id)
		}
	case <-time.After(hWait):
		t.Fatal("kept did not expire after touching stopped")
	}
	if n := e.Stats().Expired; n != 2 {
		t.Errorf("Stats().Expired = %d, want 2", n)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	e, err := New(Options{URL: sharedRedis(t).URL, Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(server.EngineHooks{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(server.EngineHooks{}); err == nil {
		t.Error("a second Start succeeded")
	}
	ctx := context.Background()
	mkSession(t, e, "s")
	done := make(chan error, 1)
	go func() {
		_, err := e.Fetch(ctx, "s", 10*time.Second)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, server.ErrEngineClosed) {
			t.Errorf("Fetch woken by Close = %v, want ErrEngineClosed", err)
		}
	case <-time.After(hWait):
		t.Fatal("Close did not wake Fetch")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := e.Publish(ctx, testPayload("/a", 1)); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := e.CreateSession(ctx, &server.SessionInfo{ID: "t"}); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("CreateSession after Close = %v", err)
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

// TestAck: FetchAck keeps messages until acknowledged, by sequence number.
func TestAck(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")
	for i := 1; i <= 3; i++ {
		_ = e.Deliver(ctx, "s", testPayload("/a", i))
	}
	b, err := e.FetchAck(ctx, "s", 0, 0)
	if got := nums(t, b); err != nil || !slices.Equal(got, []int{1, 2, 3}) || b.Last != 3 {
		t.Fatalf("FetchAck(0) = %v last %d, %v", got, b.Last, err)
	}
	// Not acknowledged: sent again.
	b, _ = e.FetchAck(ctx, "s", 0, 0)
	if got := nums(t, b); !slices.Equal(got, []int{1, 2, 3}) || b.Last != 3 {
		t.Errorf("FetchAck(0) again = %v last %d", got, b.Last)
	}
	_ = e.Deliver(ctx, "s", testPayload("/a", 4))
	b, _ = e.FetchAck(ctx, "s", 2, 0)
	if got := nums(t, b); !slices.Equal(got, []int{3, 4}) || b.Last != 4 {
		t.Errorf("FetchAck(2) = %v last %d", got, b.Last)
	}
	b, _ = e.FetchAck(ctx, "s", 4, 0)
	if len(b.Payloads) != 0 || b.Last != 4 {
		t.Errorf("FetchAck(4) = %v last %d, want nothing and last 4", nums(t, b), b.Last)
	}
	// Waiting works in ack mode; the acknowledged messages are gone.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = e.Deliver(ctx, "s", testPayload("/a", 5))
	}()
	b, err = e.FetchAck(ctx, "s", 4, hWait)
	if got := nums(t, b); err != nil || !slices.Equal(got, []int{5}) || b.Last != 5 {
		t.Errorf("waiting FetchAck = %v last %d, %v", got, b.Last, err)
	}
	b, _ = e.FetchAck(ctx, "s", 5, 100*time.Millisecond)
	if len(b.Payloads) != 0 || b.Last != 5 {
		t.Errorf("FetchAck after timeout = %v last %d", nums(t, b), b.Last)
	}

	// Overflow drops the oldest; sequence numbers continue.
	small := engine(t, Options{MaxQueue: 3}, server.EngineHooks{})
	mkSession(t, small, "s")
	mkSub(t, small, "s", "/o")
	for i := 1; i <= 5; i++ {
		_, _ = small.Publish(ctx, testPayload("/o", i))
	}
	b, _ = small.FetchAck(ctx, "s", 0, 0)
	if got := nums(t, b); !slices.Equal(got, []int{3, 4, 5}) || b.Last != 5 || b.Dropped != 2 {
		t.Errorf("FetchAck after overflow = %v last %d dropped %d", got, b.Last, b.Dropped)
	}
	_ = small.Deliver(ctx, "s", testPayload("/o", 6)) // unacknowledged 3 drops out
	b, _ = small.FetchAck(ctx, "s", 4, 0)
	if got := nums(t, b); !slices.Equal(got, []int{5, 6}) || b.Last != 6 || b.Dropped != 1 {
		t.Errorf("FetchAck(4) after overflow = %v last %d dropped %d", got, b.Last, b.Dropped)
	}
	// An ack beyond what was sent acknowledges everything.
	b, _ = small.FetchAck(ctx, "s", 99, 0)
	if len(b.Payloads) != 0 || b.Last != 99 {
		t.Errorf("FetchAck(99) = %v last %d", nums(t, b), b.Last)
	}
	_ = small.Deliver(ctx, "s", testPayload("/o", 7))
	if b, _ = small.FetchAck(ctx, "s", 6, 0); b.Last != 7 {
		t.Errorf("sequence after FetchAck(99) = %d, want 7", b.Last)
	}
}

// TestNewerFetchSupersedes: only the newest Fetch of a session waits; an
// older one, on this node or another, returns empty and leaves the
// messages to the newer one.
func TestNewerFetchSupersedes(t *testing.T) {
	t.Parallel()
	a := engine(t, Options{}, server.EngineHooks{})
	b := engine(t, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, a, "s")
	for _, older := range []*Engine{a, b} {
		type res struct {
			b   server.Batch
			err error
		}
		first := make(chan res, 1)
		go func() {
			bt, err := older.Fetch(ctx, "s", 10*time.Second)
			first <- res{bt, err}
		}()
		time.Sleep(50 * time.Millisecond)
		second := make(chan res, 1)
		go func() {
			bt, err := a.Fetch(ctx, "s", 10*time.Second)
			second <- res{bt, err}
		}()
		select {
		case r := <-first:
			if r.err != nil || len(r.b.Payloads) != 0 {
				t.Errorf("superseded Fetch = %+v, %v", r.b, r.err)
			}
		case <-time.After(hWait):
			t.Fatal("a newer Fetch did not end the older one")
		}
		_ = b.Deliver(ctx, "s", testPayload("/s", 1))
		select {
		case r := <-second:
			if r.err != nil || len(r.b.Payloads) != 1 {
				t.Errorf("newer Fetch = %+v, %v", r.b, r.err)
			}
		case <-time.After(hWait):
			t.Fatal("the newer Fetch was not woken")
		}
	}
}

// TestTouchWhileWaiting: while a Fetch waits for a session, Touch only
// extends its expiry (a superseded connect elsewhere must not shorten the
// hold of the newer one); once the Fetch ends, Touch sets it again.
func TestTouchWhileWaiting(t *testing.T) {
	t.Parallel()
	expired := make(chan string, 1)
	a := engine(t, Options{SweepInterval: 10 * time.Millisecond}, server.EngineHooks{Expired: func(rs *server.RemovedSession) {
		expired <- rs.Info.ID
	}})
	b := engine(t, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	mkSession(t, a, "s")
	_ = a.Touch(ctx, "s", time.Now().Add(time.Hour))
	done := make(chan error, 1)
	go func() {
		_, err := b.Fetch(ctx, "s", 600*time.Millisecond)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := a.Touch(ctx, "s", time.Now().Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-expired:
		t.Fatalf("%s expired while a Fetch waited for it", id)
	case err := <-done:
		if err != nil {
			t.Fatalf("Fetch = %v", err)
		}
	case <-time.After(hWait):
		t.Fatal("Fetch did not time out")
	}
	// A Fetch that ends early (its request went away) releases too.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := b.Fetch(cctx, "s", 10*time.Second)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("cancelled Fetch = %v", err)
	}
	if err := a.Touch(ctx, "s", time.Now().Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-expired:
		if id != "s" {
			t.Errorf("expired %s", id)
		}
	case <-time.After(hWait):
		t.Fatal("a Touch after the Fetch ended did not shorten the expiry")
	}
}

// TestStress runs random operations from many goroutines and two nodes,
// then checks the bookkeeping (run with -race).
func TestStress(t *testing.T) {
	t.Parallel()
	nodes := []*Engine{engine(t, Options{MaxQueue: 50, SweepInterval: 5 * time.Millisecond}, server.EngineHooks{})}
	nodes = append(nodes, engine(t, Options{MaxQueue: 50, SweepInterval: 5 * time.Millisecond, Prefix: nodes[0].opts.Prefix}, server.EngineHooks{}))
	ctx := context.Background()
	const workers, ops = 8, 1000
	patterns := []string{"/s/a", "/s/b", "/s/*", "/s/**", "/**", "/s/a/*", "/t"}
	channels := []string{"/s/a", "/s/b", "/s/a/x", "/t", "/u"}
	states := make([]map[string]map[string]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
					ok, err := e.Unsubscribe(ctx, id, p)
					if err != nil || ok != live[id][p] {
						t.Errorf("unsubscribe %s %s = %v, %v; want %v", id, p, ok, err, live[id][p])
					}
					delete(live[id], p)
				case op <= 7:
					if _, err := e.Publish(ctx, testPayload(channels[r.IntN(len(channels))], i)); err != nil {
						t.Errorf("publish: %v", err)
					}
				case op == 8:
					if _, err := e.Fetch(ctx, ids[r.IntN(len(ids))], 0); err != nil {
						t.Errorf("fetch: %v", err)
					}
				default:
					_ = e.Deliver(ctx, ids[r.IntN(len(ids))], testPayload("/direct", i))
					_ = e.Touch(ctx, ids[r.IntN(len(ids))], time.Now().Add(time.Hour))
				}
			}
			states[w] = live
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	e := nodes[0]
	total := 0
	for _, live := range states {
		total += len(live)
		for id, subs := range live {
			got, err := e.Subscriptions(ctx, id)
			if err != nil {
				t.Fatalf("session %s: %v", id, err)
			}
			slices.Sort(got)
			want := slices.Sorted(func(yield func(string) bool) {
				for p := range subs {
					if !yield(p) {
						return
					}
				}
			})
			if !slices.Equal(got, want) {
				t.Errorf("session %s subscriptions %q, want %q", id, got, want)
			}
		}
	}
	if n, _ := e.SessionCount(ctx); n != total {
		t.Errorf("SessionCount = %d, want %d", n, total)
	}
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
		if n, _ := e.Publish(ctx, testPayload(ch, 0)); n != want {
			t.Errorf("Publish(%s) reached %d sessions, want %d", ch, n, want)
		}
	}
	for _, live := range states {
		for id := range live {
			_, _ = e.DestroySession(ctx, id)
		}
	}
	for _, ch := range channels {
		if n, _ := e.Publish(ctx, testPayload(ch, 0)); n != 0 {
			t.Errorf("after destroying every session, Publish(%s) reached %d", ch, n)
		}
	}
	if keys, _ := e.Client().Keys(ctx, e.opts.Prefix+"*").Result(); len(keys) != 0 {
		t.Errorf("keys left after destroying every session: %q", keys)
	}
}

// TestConcurrentPublishOnce: concurrent publishes from two nodes to a
// channel that sessions reach through several overlapping subscriptions
// are each queued exactly once per session.
func TestConcurrentPublishOnce(t *testing.T) {
	t.Parallel()
	a := engine(t, Options{MaxQueue: 1 << 20}, server.EngineHooks{})
	b := engine(t, Options{MaxQueue: 1 << 20, Prefix: a.opts.Prefix}, server.EngineHooks{})
	ctx := context.Background()
	const sessions, workers, each = 20, 8, 100
	for i := range sessions {
		id := "s" + strconv.Itoa(i)
		mkSession(t, a, id)
		mkSub(t, b, id, "/d/x", "/d/*", "/d/**", "/**")
	}
	var wg sync.WaitGroup
	var bad sync.Map
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := []*Engine{a, b}[w%2]
			for i := range each {
				if n, err := e.Publish(ctx, testPayload("/d/x", w*each+i)); err != nil || n != sessions {
					bad.Store(w*each+i, fmt.Sprint(n, err))
				}
			}
		}()
	}
	wg.Wait()
	bad.Range(func(k, v any) bool {
		t.Errorf("publish %v: %v", k, v)
		return true
	})
	for i := range sessions {
		bt, err := b.Fetch(ctx, "s"+strconv.Itoa(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		for _, n := range nums(t, bt) {
			seen[n]++
		}
		for n, c := range seen {
			if c > 1 {
				t.Errorf("session s%d got message %d %d times", i, n, c)
			}
		}
		if len(seen) != workers*each {
			t.Errorf("session s%d: %d distinct messages, want %d", i, len(seen), workers*each)
		}
	}
}

func TestListingAndHistory(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		mkSession(t, e, id)
	}
	mkSub(t, e, "a", "/h", "/h/*")
	mkSub(t, e, "b", "/h/*")
	infos, err := e.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range infos {
		ids = append(ids, in.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Errorf("ListSessions = %q", ids)
	}
	subIDs := func(ch string) []string {
		infos, err := e.Subscribers(ctx, ch)
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
	if got := subIDs("/h/*"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Subscribers(/h/*) = %q", got)
	}
	if got := subIDs("/h"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Subscribers(/h) = %q", got)
	}
	if got := subIDs("/h/x"); len(got) != 0 {
		t.Errorf("Subscribers(/h/x) = %q, want none (wildcards are not expanded)", got)
	}
	_, _ = e.DestroySession(ctx, "a")
	if got := subIDs("/h/*"); !slices.Equal(got, []string{"b"}) {
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

// TestListManySessions crosses ListSessions' batch size.
func TestListManySessions(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	ctx := context.Background()
	const n = 1234
	pipe := e.Client().Pipeline()
	for i := range n {
		createScript.Run(ctx, pipe, nil, e.p, "m"+strconv.Itoa(i), fmt.Sprintf(`{"id":"m%d"}`, i), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// The pipeline's EVALSHA may meet an empty script cache; load it.
		if err := createScript.Load(ctx, e.Client()).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
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
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{URL: "http://x"}); err == nil {
		t.Error("New accepted an http URL")
	}
	e, err := New(Options{URL: "redis://127.0.0.1:1/3?max_retries=2"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if o := e.client.Options(); o.DB != 3 || o.MaxRetries != 2 || e.opts.Prefix != "bayeux:" || e.opts.MaxQueue != 1000 || e.opts.NodeID == "" {
		t.Errorf("options: db %d retries %d prefix %q queue %d node %q", o.DB, o.MaxRetries, e.opts.Prefix, e.opts.MaxQueue, e.opts.NodeID)
	}
	e2, _ := New(Options{URL: "redis://127.0.0.1:1/0"})
	defer e2.Close()
	if o := e2.client.Options(); o.MaxRetries > 0 {
		t.Errorf("default MaxRetries = %d, want -1 (no retries)", o.MaxRetries)
	}
}
