package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// StartServer starts a Server with opts on the engine under test (set
// opts.Engine, keep the rest) behind an HTTP server, and returns it with
// its Bayeux endpoint's URL; it stops both with t.Cleanup.
type StartServer func(t *testing.T, opts server.Options) (*server.Server, string)

// Serve starts a quiet Server with opts (its Logger discards) behind an
// httptest.Server and returns it with its Bayeux endpoint's URL
// ("/cometd"); it shuts both down with t.Cleanup. Engines' tests use it
// as their StartServer once they have set opts.Engine.
func Serve(t testing.TB, opts server.Options) (*server.Server, string) {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler("/cometd"))
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, hs.URL + "/cometd"
}

// RunServer runs the scenarios of channel histories and presence as
// clients see them (the wasmclient Go client against a Server on the
// engine): recovery after a lost session, history pages, presence.
func RunServer(t *testing.T, start StartServer) {
	for _, sc := range []struct {
		name string
		f    func(*testing.T, StartServer)
	}{
		{"ResubscribeAfterExpiry", testResubscribeAfterExpiry},
		{"Recover", testRecover},
		{"RecoverRacingPublishes", testRecoverRacing},
		{"RecoverNotKept", testRecoverNotKept},
		{"HistoryService", testHistoryService},
		{"Presence", testPresence},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.f(t, start)
		})
	}
}

// serverOptions are the options of the scenarios: short timeouts, and
// history on /h/** (the last 1000; /h/small: the last 3; /h/race: the
// last 100000, all of which a client may recover) and presence on
// /room/*. A handshake's ext.name becomes the session's user.
func serverOptions() server.Options {
	return server.Options{
		PollTimeout:    time.Second,
		ConnectTimeout: time.Second,
		MaxRecover:     100000,
		MaxReplySize:   16 << 20,
		Channels: []server.ChannelRule{
			{Pattern: "/h/small", History: 3},
			{Pattern: "/h/race", History: 100000},
			{Pattern: "/h/**", History: 1000},
			{Pattern: "/room/*", Presence: true},
		},
		Authorize: func(_ context.Context, c *server.Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake {
				var name string
				if json.Unmarshal(m.Ext["name"], &name) == nil {
					c.SetUser(name)
				}
			}
			return nil
		},
	}
}

// cuttable is a client whose network can be cut: while cut, every request
// fails, and a reply that comes back is lost.
type cuttable struct {
	*wasmclient.Client
	cut atomic.Bool
}

func newClient(t *testing.T, url, name string) *cuttable {
	t.Helper()
	c := &cuttable{}
	http := wasmclient.NewHTTPTransport()
	tr := wasmclient.TransportFunc(func(ctx context.Context, u string, body []byte) ([]byte, error) {
		if c.cut.Load() {
			return nil, errCut
		}
		b, err := http.Send(ctx, u, body)
		if c.cut.Load() {
			return nil, errCut
		}
		return b, err
	})
	opts := wasmclient.Options{Transport: tr, BackoffIncrement: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	if name != "" {
		opts.Ext = map[string]any{"name": name}
	}
	c.Client = wasmclient.New(url, opts)
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

var errCut = errors.New("enginetest: network cut")

// received records the numbers delivered to a listener, in order.
type received struct {
	mu   sync.Mutex
	nums []int
	gaps int
}

func (r *received) listener(t *testing.T) func(*protocol.Message) {
	return func(m *protocol.Message) {
		n, err := strconv.Atoi(string(m.Data))
		if err != nil {
			t.Errorf("delivery %s", m.Data)
			return
		}
		r.mu.Lock()
		r.nums = append(r.nums, n)
		r.mu.Unlock()
	}
}

func (r *received) get() ([]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.nums), r.gaps
}

// subscribe subscribes c to channel with a recording listener.
func subscribe(t *testing.T, c *cuttable, channel string) *received {
	t.Helper()
	r := &received{}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	sub, err := c.Subscribe(ctx, channel, r.listener(t))
	if err != nil {
		t.Fatal(err)
	}
	sub.OnGap(func() {
		r.mu.Lock()
		r.gaps++
		r.mu.Unlock()
	})
	return r
}

func publishNums(t *testing.T, c *cuttable, channel string, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	for i := from; i <= to; i++ {
		if err := c.Publish(ctx, channel, i); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// waitFor waits until r received want.
func (r *received) waitFor(t *testing.T, want []int, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * Wait)
	for {
		got, _ := r.get()
		if len(got) >= len(want) || time.Now().After(deadline) {
			if !slices.Equal(got, want) {
				t.Fatalf("%s: received %s, want %d messages", what, describe(got), len(want))
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// loseSession cuts c off until its session expired on srv, then lets it
// reconnect: it handshakes again (a new session) and subscribes again.
func loseSession(t *testing.T, srv *server.Server, c *cuttable, during func()) {
	t.Helper()
	old := c.ClientID()
	c.cut.Store(true)
	if during != nil {
		during()
	}
	testutil.Eventually(t, 3*Wait, func() bool {
		_, ok, err := srv.Engine().Session(context.Background(), old)
		return err == nil && !ok
	}, "the cut client's session to expire")
	c.cut.Store(false)
	testutil.Eventually(t, 3*Wait, func() bool {
		return c.State().State == wasmclient.Connected && c.ClientID() != old && c.ClientID() != ""
	}, "the client to handshake again")
}

// testResubscribeAfterExpiry: on a channel without history, a client
// that lost its session (it was the channel's only subscriber) gets what
// is published after it subscribed again, once: neither what it had
// already nor nothing.
func testResubscribeAfterExpiry(t *testing.T, start StartServer) {
	srv, url := start(t, serverOptions())
	sub, pub := newClient(t, url, ""), newClient(t, url, "")
	r := subscribe(t, sub, "/plain")
	publishNums(t, pub, "/plain", 0, 2)
	r.waitFor(t, seq(0, 2), "before the cut")
	loseSession(t, srv, sub, func() { publishNums(t, pub, "/plain", 100, 102) })
	// The re-subscribe is on its way: wait until the server has it.
	testutil.Eventually(t, Wait, func() bool {
		l, ok := srv.Engine().(server.SubscriberLister)
		if !ok {
			return true
		}
		infos, err := l.Subscribers(context.Background(), "/plain")
		return err == nil && len(infos) == 1 && infos[0].ID == sub.ClientID()
	}, "the new session's subscription")
	publishNums(t, pub, "/plain", 3, 5)
	r.waitFor(t, seq(0, 5), "after subscribing again")
}

// testRecover: a client that lost its session gets, when it subscribes
// again, exactly what was published meanwhile, then what follows.
func testRecover(t *testing.T, start StartServer) {
	srv, url := start(t, serverOptions())
	sub, pub := newClient(t, url, ""), newClient(t, url, "")
	r := subscribe(t, sub, "/h/r")
	publishNums(t, pub, "/h/r", 0, 4)
	r.waitFor(t, seq(0, 4), "before the cut")
	loseSession(t, srv, sub, func() { publishNums(t, pub, "/h/r", 5, 19) })
	r.waitFor(t, seq(0, 19), "recovered")
	publishNums(t, pub, "/h/r", 20, 24)
	r.waitFor(t, seq(0, 24), "after the recovery")
	if _, gaps := r.get(); gaps != 0 {
		t.Errorf("OnGap called %d times", gaps)
	}
}

// testRecoverRacing: messages are published without a pause from before
// the cut until after the client recovered: it gets every one, once, in
// order, however the recovery and the live messages interleave.
func testRecoverRacing(t *testing.T, start StartServer) {
	srv, url := start(t, serverOptions())
	sub, pub := newClient(t, url, ""), newClient(t, url, "")
	r := subscribe(t, sub, "/h/race")
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*Wait)
		defer cancel()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := pub.Publish(ctx, "/h/race", i); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			sent.Store(int64(i + 1))
			time.Sleep(time.Millisecond) // a pace, not a synchronisation
		}
	}()
	testutil.Eventually(t, Wait, func() bool { got, _ := r.get(); return len(got) > 20 }, "live messages before the cut")
	loseSession(t, srv, sub, nil)
	// Go on publishing while the client recovers, then a little more.
	resumed := len(func() []int { g, _ := r.get(); return g }())
	testutil.Eventually(t, 3*Wait, func() bool { g, _ := r.get(); return len(g) > resumed+50 }, "live messages after the recovery")
	close(stop)
	<-done
	n := int(sent.Load())
	r.waitFor(t, seq(0, n-1), "every message once, in order")
	if _, gaps := r.get(); gaps != 0 {
		t.Errorf("OnGap called %d times", gaps)
	}
}

// testRecoverNotKept: a client that missed more than the channel keeps is
// told (OnGap) and goes on with what follows.
func testRecoverNotKept(t *testing.T, start StartServer) {
	srv, url := start(t, serverOptions())
	sub, pub := newClient(t, url, ""), newClient(t, url, "")
	r := subscribe(t, sub, "/h/small")
	publishNums(t, pub, "/h/small", 0, 1)
	r.waitFor(t, seq(0, 1), "before the cut")
	loseSession(t, srv, sub, func() { publishNums(t, pub, "/h/small", 2, 9) })
	testutil.Eventually(t, 3*Wait, func() bool { _, gaps := r.get(); return gaps == 1 }, "OnGap")
	publishNums(t, pub, "/h/small", 10, 11)
	r.waitFor(t, []int{0, 1, 10, 11}, "after the gap")
}

// historyPage is a /service/history answer.
type historyPage struct {
	Channel  string              `json:"channel"`
	Messages []*protocol.Message `json:"messages"`
	Pos      string              `json:"pos"`
	More     bool                `json:"more"`
	Lost     bool                `json:"lost"`
}

func history(t *testing.T, c *cuttable, req map[string]any) historyPage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	reply, err := c.Call(ctx, "/service/history", req)
	if err != nil {
		t.Fatalf("history %v: %v", req, err)
	}
	var pg historyPage
	if err := json.Unmarshal(reply.Data, &pg); err != nil {
		t.Fatalf("history %v: %s: %v", req, reply.Data, err)
	}
	return pg
}

// testHistoryService: /service/history pages back through 150 messages
// to the first while new ones arrive, without a gap or a duplicate at
// the joins; since a position it gives what followed; a channel without
// history and malformed requests are refused.
func testHistoryService(t *testing.T, start StartServer) {
	_, url := start(t, serverOptions())
	c, pub := newClient(t, url, ""), newClient(t, url, "")
	publishNums(t, pub, "/h/pages", 0, 149)
	done := make(chan struct{})
	go func() { // new messages while the reader scrolls back
		defer close(done)
		publishNums(t, pub, "/h/pages", 150, 169)
	}()
	var got []int
	req := map[string]any{"channel": "/h/pages", "limit": 40}
	first := true
	for range 10 {
		pg := history(t, c, req)
		if pg.Channel != "/h/pages" || pg.Pos == "" || pg.Lost {
			t.Fatalf("page %+v", pg)
		}
		var nums []int
		for _, m := range pg.Messages {
			n, _ := strconv.Atoi(string(m.Data))
			if _, ok := protocol.PositionOf(m); !ok || m.Channel != "/h/pages" {
				t.Fatalf("message %+v without its position", m)
			}
			nums = append(nums, n)
		}
		if first && len(nums) != 40 {
			t.Fatalf("the newest page has %d messages, want 40", len(nums))
		}
		first = false
		got = append(nums, got...)
		if !pg.More {
			break
		}
		pos, _ := protocol.PositionOf(pg.Messages[0])
		req = map[string]any{"channel": "/h/pages", "limit": 40, "before": pos.String()}
	}
	<-done
	if len(got) < 150 || !slices.Equal(got, seq(0, len(got)-1)) {
		t.Errorf("scrolling back: %v, want 0..N without gap or duplicate", got)
	}
	// Since the newest of those: what arrived after.
	last := history(t, c, map[string]any{"channel": "/h/pages", "limit": 1})
	pos, _ := protocol.PositionOf(last.Messages[0])
	if n, _ := strconv.Atoi(string(last.Messages[0].Data)); n != 169 {
		t.Errorf("newest message %d, want 169", n)
	}
	mid := history(t, c, map[string]any{"channel": "/h/pages", "limit": 1, "before": pos.String()})
	midPos, _ := protocol.PositionOf(mid.Messages[0])
	if pg := history(t, c, map[string]any{"channel": "/h/pages", "since": midPos.String()}); len(pg.Messages) != 1 || pg.More {
		t.Errorf("since the second newest: %+v", pg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	for _, tc := range []struct {
		req  any
		want string
	}{
		{map[string]any{"channel": "/other"}, "404::no_history"},
		{map[string]any{"channel": "/h/pages", "before": "nope"}, "400::history_invalid"},
		{map[string]any{"channel": "/h/*"}, "400::history_invalid"},
		{map[string]any{"channel": "/h/pages", "before": pos.String(), "since": pos.String()}, "400::history_invalid"},
		{"/h/pages", "400::history_invalid"},
	} {
		_, err := c.Call(ctx, "/service/history", tc.req)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Error() != tc.want {
			t.Errorf("history %v: %v, want %s", tc.req, err, tc.want)
		}
	}
}

// presenceOf decodes a presence message.
func presenceOf(t *testing.T, data json.RawMessage) (string, []string) {
	var p struct {
		Channel string   `json:"channel"`
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Members == nil {
		t.Errorf("presence %s: %v", data, err)
	}
	return p.Channel, p.Members
}

// testPresence: the users subscribed to a channel with presence are
// published on /presence/<channel> when they change, and
// /service/presence answers them; clients cannot publish there.
func testPresence(t *testing.T, start StartServer) {
	_, url := start(t, serverOptions())
	watcher := newClient(t, url, "watcher")
	var mu sync.Mutex
	var lists [][]string
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if _, err := watcher.Subscribe(ctx, "/presence/room/x", func(m *protocol.Message) {
		ch, members := presenceOf(t, m.Data)
		if ch != "/room/x" {
			t.Errorf("presence of %s on /presence/room/x", ch)
		}
		mu.Lock()
		lists = append(lists, members)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	last := func(want ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(lists) > 0 && slices.Equal(lists[len(lists)-1], want)
		}
	}
	alice, bob := newClient(t, url, "alice"), newClient(t, url, "bob")
	subA := subscribe(t, alice, "/room/x")
	_ = subA
	subscribe(t, bob, "/room/x")
	testutil.Eventually(t, Wait, last("alice", "bob"), "alice and bob listed")
	reply, err := watcher.Call(ctx, "/service/presence", map[string]string{"channel": "/room/x"})
	if err != nil {
		t.Fatal(err)
	}
	if ch, members := presenceOf(t, reply.Data); ch != "/room/x" || !slices.Equal(members, []string{"alice", "bob"}) {
		t.Errorf("/service/presence: %s", reply.Data)
	}
	if err := bob.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, Wait, last("alice"), "bob gone")
	if err := alice.Publish(ctx, "/presence/room/x", map[string]any{"channel": "/room/x", "members": []string{"mallory"}}); err == nil {
		t.Error("a client published on a presence channel")
	}
	if _, err := watcher.Call(ctx, "/service/presence", map[string]string{"channel": "/h/x"}); err == nil || err.Error() != "404::no_presence" {
		t.Errorf("presence of a channel without: %v", err)
	}
	if t.Failed() {
		mu.Lock()
		t.Log(fmt.Sprint(lists))
		mu.Unlock()
	}
}

// describe summarises a received sequence: its length and where it
// leaves 0, 1, 2 ... (a gap, a duplicate or a reordering).
func describe(got []int) string {
	for i, n := range got {
		if n != i {
			lo, hi := max(i-3, 0), min(i+4, len(got))
			return fmt.Sprintf("%d messages, wrong from index %d: ... %v ...", len(got), i, got[lo:hi])
		}
	}
	return fmt.Sprintf("%d messages 0..%d", len(got), len(got)-1)
}
