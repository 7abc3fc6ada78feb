package redis

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// hWait bounds every wait for something that should happen promptly.
const hWait = enginetest.Wait

// engine returns a started engine on the shared redis-server.
func engine(t *testing.T, opts Options, hooks server.EngineHooks) *Engine {
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
	return e.Client().Keys(ctx, e.opts.Prefix+"*").Result()
}

// TestConformance runs the engine conformance suite on the Redis engine.
// A Peer is another engine on the same redis-server and key prefix.
func TestConformance(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, func(t *testing.T, opts enginetest.Options) server.Engine {
		o := Options{Budgets: opts.Budgets, SweepInterval: opts.SweepInterval}
		if opts.Peer != nil {
			o.Prefix = opts.Peer.(suiteEngine).opts.Prefix
		}
		return suiteEngine{engine(t, o, opts.Hooks)}
	})
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

// TestBurstOneNotice: a burst of publishes while one Fetch waits sends one
// wake-up notice (the suite checks that all of it is delivered).
func TestBurstOneNotice(t *testing.T) {
	t.Parallel()
	e := engine(t, Options{}, server.EngineHooks{})
	mkSession(t, e, "s")
	mkSub(t, e, "s", "/burst")
	notices := e.Stats().Notices
	enginetest.Burst(t, e, "s", "/burst", 20)
	if n := e.Stats().Notices - notices; n != 1 {
		t.Errorf("a burst to one waiting session sent %d notices, want 1", n)
	}
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
// runs once; after Close calls fail with ErrEngineClosed (a woken Fetch
// too); the sessions stay in Redis for the other nodes.
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
	if err := enginetest.CloseWhileFetching(t, e, "s"); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("Fetch woken by Close = %v, want ErrEngineClosed", err)
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

// TestPollWaitsWithoutGoroutines: a waiting poll costs no goroutine (the
// server holds thousands of connects this way), and every one of them is
// still woken by a publish and ends once.
func TestPollWaitsWithoutGoroutines(t *testing.T) {
	e := engine(t, Options{}, server.EngineHooks{})
	const n = 300
	for i := range n {
		id := fmt.Sprintf("pw%d", i)
		mkSession(t, e, id)
		mkSub(t, e, id, "/pw")
	}
	before := runtime.NumGoroutine()
	done := make(chan server.Batch, n)
	for i := range n {
		b, stop, err := e.Poll(fmt.Sprintf("pw%d", i), false, 0, time.Minute, func(b server.Batch, err error) {
			if err != nil {
				t.Errorf("poll: %v", err)
			}
			done <- b
		})
		if err != nil || stop == nil || len(b.Payloads) != 0 {
			t.Fatalf("poll %d did not wait: %v", i, err)
		}
	}
	if grown := runtime.NumGoroutine() - before; grown > n/4 {
		t.Fatalf("%d waiting polls added %d goroutines", n, grown)
	}
	if _, err := e.Publish(context.Background(), testPayload("/pw", 7)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case b := <-done:
			if got := nums(t, b); len(got) != 1 || got[0] != 7 {
				t.Fatalf("poll woken with %v", got)
			}
		case <-time.After(hWait):
			t.Fatalf("%d of %d polls woken", i, n)
		}
	}
}
