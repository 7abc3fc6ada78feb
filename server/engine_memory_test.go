package server

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
)

func newTestEngine(t *testing.T, opts MemoryEngineOptions, hooks EngineHooks) *MemoryEngine {
	t.Helper()
	e := NewMemoryEngine(opts)
	if err := e.Start(hooks); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func mkSession(t *testing.T, e Engine, id string) {
	t.Helper()
	if err := e.CreateSession(context.Background(), &SessionInfo{ID: id, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func mkSub(t *testing.T, e Engine, id string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if err := e.Subscribe(context.Background(), id, p, 0); err != nil {
			t.Fatalf("Subscribe(%s, %s): %v", id, p, err)
		}
	}
}

func testPayload(channel string, n int) *Payload {
	return &Payload{Channel: channel, JSON: []byte(fmt.Sprintf(`{"channel":%q,"data":%d}`, channel, n))}
}

// payloadNum is the data of a testPayload.
func payloadNum(t *testing.T, p *Payload) int {
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

func nums(t *testing.T, b Batch) []int {
	t.Helper()
	var out []int
	for _, p := range b.Payloads {
		out = append(out, payloadNum(t, p))
	}
	return out
}

func TestMemoryEnginePublishCounts(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{}, EngineHooks{})
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
	// Subscribing twice is not an error and does not duplicate.
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
}

func TestMemoryEngineDedup(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{}, EngineHooks{})
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

func TestMemoryEngineQueueBound(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{MaxQueue: 3}, EngineHooks{})
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
	// Many rounds of overflow keep the newest messages in order.
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
	// The drop count survives a Fetch that waited.
	for i := range 5 {
		_ = e.Deliver(ctx, "s", testPayload("/q", i))
	}
	b, _ = e.Fetch(ctx, "s", time.Second)
	if b.Dropped != 2 || len(b.Payloads) != 3 {
		t.Errorf("Fetch with wait = %v dropped %d", nums(t, b), b.Dropped)
	}
}

func TestMemoryEngineFetchWaitsAndWakes(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{}, EngineHooks{})
	ctx := context.Background()
	mkSession(t, e, "s")

	start := time.Now()
	b, err := e.Fetch(ctx, "s", 0)
	if err != nil || len(b.Payloads) != 0 || time.Since(start) > 100*time.Millisecond {
		t.Errorf("Fetch(0) = %+v, %v after %v", b, err, time.Since(start))
	}
	start = time.Now()
	b, err = e.Fetch(ctx, "s", 150*time.Millisecond)
	if d := time.Since(start); err != nil || len(b.Payloads) != 0 || d < 140*time.Millisecond || d > 2*time.Second {
		t.Errorf("Fetch(150ms) with nothing queued = %+v, %v after %v", b, err, d)
	}

	type res struct {
		b   Batch
		err error
		d   time.Duration
	}
	done := make(chan res, 1)
	go func() {
		start := time.Now()
		b, err := e.Fetch(ctx, "s", 10*time.Second)
		done <- res{b, err, time.Since(start)}
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

	// Cancelling the context ends the wait without an error.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		b, err := e.Fetch(cctx, "s", 10*time.Second)
		done <- res{b, err, 0}
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
	// A message queued before Fetch is returned at once, without waiting.
	_ = e.Deliver(ctx, "s", testPayload("/w", 2))
	start = time.Now()
	if b, _ := e.Fetch(ctx, "s", 10*time.Second); len(b.Payloads) != 1 || time.Since(start) > time.Second {
		t.Errorf("Fetch with a queued message = %+v after %v", b, time.Since(start))
	}
}

func TestMemoryEngineFetchAfterDestroy(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{}, EngineHooks{})
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
}

func TestMemoryEngineSubscriptionLimit(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{}, EngineHooks{})
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

func TestMemoryEngineExpiry(t *testing.T) {
	t.Parallel()
	expired := make(chan string, 10)
	e := newTestEngine(t, MemoryEngineOptions{SweepInterval: 20 * time.Millisecond}, EngineHooks{Expired: func(rs *RemovedSession) {
		expired <- rs.Info.ID
	}})
	ctx := context.Background()
	for _, id := range []string{"soon", "later", "never", "kept", "cleared"} {
		mkSession(t, e, id)
	}
	mkSub(t, e, "soon", "/exp")
	now := time.Now()
	_ = e.Touch(ctx, "soon", now.Add(60*time.Millisecond))
	_ = e.Touch(ctx, "later", now.Add(time.Hour))
	_ = e.Touch(ctx, "kept", now.Add(300*time.Millisecond))
	_ = e.Touch(ctx, "cleared", now.Add(50*time.Millisecond))
	_ = e.Touch(ctx, "cleared", time.Time{}) // zero: never expires

	// Keep "kept" alive by touching it, as connects do.
	stop := time.Now().Add(500 * time.Millisecond)
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
	if d := time.Since(now); d < 60*time.Millisecond {
		t.Errorf("expired after %v", d)
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
	// Once no longer touched, "kept" expires too.
	select {
	case id := <-expired:
		if id != "kept" {
			t.Errorf("expired %q, want kept", id)
		}
	case <-time.After(hWait):
		t.Fatal("kept did not expire after touching stopped")
	}
}

func TestMemoryEngineClose(t *testing.T) {
	t.Parallel()
	e := NewMemoryEngine(MemoryEngineOptions{})
	if err := e.Start(EngineHooks{}); err != nil {
		t.Fatal(err)
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
		if err == nil {
			t.Error("Fetch woken by Close returned no error")
		}
	case <-time.After(hWait):
		t.Fatal("Close did not wake Fetch")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := e.Publish(ctx, testPayload("/a", 1)); !errors.Is(err, ErrEngineClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := e.CreateSession(ctx, &SessionInfo{ID: "t"}); !errors.Is(err, ErrEngineClosed) {
		t.Errorf("CreateSession after Close = %v", err)
	}
}

// TestMemoryEngineStress runs random operations from many goroutines on
// shared channels (run it with -race), then checks that the engine's
// bookkeeping matches what the goroutines did.
func TestMemoryEngineStress(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{MaxQueue: 50, SweepInterval: 5 * time.Millisecond}, EngineHooks{})
	ctx := context.Background()
	const workers, ops = 8, 2000
	patterns := []string{"/s/a", "/s/b", "/s/*", "/s/**", "/**", "/s/a/*", "/t"}
	channels := []string{"/s/a", "/s/b", "/s/a/x", "/t", "/u"}

	type state struct {
		live map[string]map[string]bool // session -> subscriptions
	}
	states := make([]state, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			st := state{live: map[string]map[string]bool{}}
			var ids []string
			for i := range ops {
				switch op := r.IntN(10); {
				case op == 0 || len(ids) == 0:
					id := fmt.Sprintf("w%d-%d", w, i)
					if err := e.CreateSession(ctx, &SessionInfo{ID: id}); err != nil {
						t.Error(err)
						return
					}
					ids = append(ids, id)
					st.live[id] = map[string]bool{}
				case op == 1:
					k := r.IntN(len(ids))
					id := ids[k]
					if rs, err := e.DestroySession(ctx, id); rs == nil || err != nil {
						t.Errorf("destroy %s: %v, %v", id, rs, err)
					}
					ids = slices.Delete(ids, k, k+1)
					delete(st.live, id)
				case op <= 4:
					id, p := ids[r.IntN(len(ids))], patterns[r.IntN(len(patterns))]
					if err := e.Subscribe(ctx, id, p, 0); err != nil {
						t.Errorf("subscribe: %v", err)
					}
					st.live[id][p] = true
				case op == 5:
					id, p := ids[r.IntN(len(ids))], patterns[r.IntN(len(patterns))]
					ok, err := e.Unsubscribe(ctx, id, p)
					if err != nil || ok != st.live[id][p] {
						t.Errorf("unsubscribe %s %s = %v, %v; want %v", id, p, ok, err, st.live[id][p])
					}
					delete(st.live[id], p)
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
			states[w] = st
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for _, st := range states {
		total += len(st.live)
		for id, subs := range st.live {
			got, err := e.Subscriptions(ctx, id)
			if err != nil {
				t.Fatalf("session %s: %v", id, err)
			}
			slices.Sort(got)
			var want []string
			for p := range subs {
				want = append(want, p)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
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
		for _, st := range states {
			for _, subs := range st.live {
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
	// Destroying everything leaves no subscriber behind.
	for _, st := range states {
		for id := range st.live {
			_, _ = e.DestroySession(ctx, id)
		}
	}
	for _, ch := range channels {
		if n, _ := e.Publish(ctx, testPayload(ch, 0)); n != 0 {
			t.Errorf("after destroying every session, Publish(%s) reached %d", ch, n)
		}
	}
}

// TestMemoryEngineConcurrentPublishOnce: concurrent publishes to a channel
// that sessions reach through several overlapping subscriptions must each
// be queued exactly once per session.
func TestMemoryEngineConcurrentPublishOnce(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{MaxQueue: 1 << 20}, EngineHooks{})
	ctx := context.Background()
	const sessions, workers, each = 20, 8, 500
	for i := range sessions {
		id := "s" + strconv.Itoa(i)
		mkSession(t, e, id)
		mkSub(t, e, id, "/d/x", "/d/*", "/d/**", "/**")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	badCounts := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n, err := e.Publish(ctx, testPayload("/d/x", w*each+i))
				if err != nil || n != sessions {
					mu.Lock()
					badCounts++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if badCounts > 0 {
		t.Errorf("%d of %d publishes reported a count other than %d sessions", badCounts, workers*each, sessions)
	}
	badSessions, totalDups := 0, 0
	for i := range sessions {
		b, err := e.Fetch(ctx, "s"+strconv.Itoa(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[int]int, workers*each)
		for _, n := range nums(t, b) {
			seen[n]++
		}
		dups := 0
		for _, c := range seen {
			if c > 1 {
				dups += c - 1
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

func TestMemoryEngineListingAndHistory(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, MemoryEngineOptions{}, EngineHooks{})
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
