package e2e

// Cluster tests: three bin/bayeux processes sharing one redis-server
// (BAYEUX_ENGINE=redis://...), driven by wasmclient clients whose
// Transport chooses the node of every request. They need redis-server in
// PATH and fail, never skip, without it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil/redistest"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// redisKinds are the Redis deployments every cluster test runs on: one
// redis-server, and a Redis Cluster of three masters.
var redisKinds = []string{"redis", "redis-cluster"}

// redisDeployment is a Redis started by a test, without persistence.
type redisDeployment struct {
	URL     string // what BAYEUX_ENGINE takes
	kill    func()
	restart func() error
}

// startRedis starts a deployment of kind (see redisKinds) on free
// loopback ports with its data in a temporary directory; it is killed
// when the test ends.
func startRedis(t *testing.T, kind string) *redisDeployment {
	t.Helper()
	switch kind {
	case "redis":
		r := redistest.Start(t)
		return &redisDeployment{URL: r.URL, kill: r.Kill, restart: r.Restart}
	case "redis-cluster":
		c, err := redistest.StartCluster(t.TempDir(), 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Kill)
		return &redisDeployment{URL: c.URL, kill: c.Kill, restart: c.Restart}
	}
	t.Fatalf("unknown Redis kind %q", kind)
	return nil
}

// startCluster starts a Redis of kind and n bin/bayeux nodes on it, each
// with its own data directory.
func startCluster(t *testing.T, kind string, n int, env ...string) (*redisDeployment, []*bayeux) {
	t.Helper()
	r := startRedis(t, kind)
	nodes := make([]*bayeux, n)
	for i := range nodes {
		nodes[i] = startBayeux(t, nil, append([]string{
			"BAYEUX_ENGINE=" + r.URL,
			"BAYEUX_CLIENT_MAX_CONNECTIONS=0",
			"BAYEUX_POLL_TIMEOUT=10s",
			"BAYEUX_MAX_QUEUE=100000",
		}, env...)...)
	}
	return r, nodes
}

// onEachRedis runs f as a subtest for every kind of Redis deployment.
func onEachRedis(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range redisKinds {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// nodeTransport sends each request to a node chosen by pick; all nodes
// share one cookie jar (cookies are per host, not per port). A node that
// failed with a connection error is skipped for a while.
type nodeTransport struct {
	http  *wasmclient.HTTPTransport
	nodes []string // host:port
	// pick returns the index of the node for a request whose first
	// message is on channel; nil means round robin.
	pick func(channel string) int

	next     atomic.Int64
	mu       sync.Mutex
	down     map[int]time.Time
	perNode  []atomic.Int64
	byChanMu sync.Mutex
	byChan   map[string]map[int]int // channel -> node -> requests
	connErrs atomic.Int64
}

func newNodeTransport(nodes []*bayeux, start int, pick func(string) int) *nodeTransport {
	nt := &nodeTransport{http: wasmclient.NewHTTPTransport(), pick: pick, down: map[int]time.Time{},
		perNode: make([]atomic.Int64, len(nodes)), byChan: map[string]map[int]int{}}
	for _, b := range nodes {
		nt.nodes = append(nt.nodes, b.addr)
	}
	nt.next.Store(int64(start))
	return nt
}

func firstChannel(body []byte) string {
	var msgs []struct {
		Channel string `json:"channel"`
	}
	if json.Unmarshal(body, &msgs) == nil && len(msgs) > 0 {
		return msgs[0].Channel
	}
	return ""
}

// choose returns the node for a request: pick's choice, else the next
// node in turn that is not marked down.
func (nt *nodeTransport) choose(channel string) int {
	if nt.pick != nil {
		return nt.pick(channel)
	}
	nt.mu.Lock()
	defer nt.mu.Unlock()
	for range len(nt.nodes) {
		i := int(nt.next.Add(1)-1) % len(nt.nodes)
		if time.Now().After(nt.down[i]) {
			return i
		}
	}
	return int(nt.next.Add(1)-1) % len(nt.nodes)
}

func (nt *nodeTransport) Send(ctx context.Context, rawURL string, body []byte) ([]byte, error) {
	channel := firstChannel(body)
	i := nt.choose(channel)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u.Host = nt.nodes[i]
	nt.perNode[i].Add(1)
	nt.byChanMu.Lock()
	if nt.byChan[channel] == nil {
		nt.byChan[channel] = map[int]int{}
	}
	nt.byChan[channel][i]++
	nt.byChanMu.Unlock()
	b, err := nt.http.Send(ctx, u.String(), body)
	var he *wasmclient.HTTPError
	if err != nil && ctx.Err() == nil && !errors.As(err, &he) {
		// A connection error: skip this node for a while; the client
		// retries (with its backoff) and the retry goes elsewhere.
		nt.connErrs.Add(1)
		nt.mu.Lock()
		nt.down[i] = time.Now().Add(5 * time.Second)
		nt.mu.Unlock()
	}
	return b, err
}

func (nt *nodeTransport) counts() []int64 {
	out := make([]int64, len(nt.perNode))
	for i := range nt.perNode {
		out[i] = nt.perNode[i].Load()
	}
	return out
}

// clusterClient is a client options preset: fast retries, quiet logs.
func clusterClient(base string, tr wasmclient.Transport, ack bool) (*wasmclient.Client, *wasmclient.AckExtension) {
	opts := wasmclient.Options{Transport: tr, BackoffIncrement: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		MaxNetworkDelay: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	var a *wasmclient.AckExtension
	if ack {
		a = &wasmclient.AckExtension{}
		opts.Extensions = []wasmclient.Extension{a}
	}
	return wasmclient.New(base+"/cometd", opts), a
}

// seqReceiver records the seq fields of the messages of one subscription.
type seqReceiver struct {
	c          *wasmclient.Client
	tr         *nodeTransport
	mu         sync.Mutex
	seqs       []int
	handshakes map[string]bool
}

func newSeqReceiver(t *testing.T, base string, tr *nodeTransport, ack bool, channel string) *seqReceiver {
	t.Helper()
	c, a := clusterClient(base, tr, ack)
	r := &seqReceiver{c: c, tr: tr, handshakes: map[string]bool{}}
	c.OnState(func(s wasmclient.StateInfo) {
		if s.ClientID != "" {
			r.mu.Lock()
			r.handshakes[s.ClientID] = true
			r.mu.Unlock()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = c.Disconnect(dctx)
	})
	if ack && !a.Enabled() {
		t.Fatal("the server did not agree to the ack extension")
	}
	if _, err := c.Subscribe(ctx, channel, func(m *protocol.Message) {
		var d struct{ Seq int }
		_ = json.Unmarshal(m.Data, &d)
		r.mu.Lock()
		r.seqs = append(r.seqs, d.Seq)
		r.mu.Unlock()
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return r
}

func (r *seqReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

// deliveryReport compares what r got with the seqs in want (ascending).
type deliveryReport struct {
	Received, Lost, Duplicated, Reordered, Extra, Handshakes int
}

func (r *seqReceiver) report(want []int) deliveryReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := deliveryReport{Received: len(r.seqs), Handshakes: len(r.handshakes)}
	wanted := map[int]bool{}
	for _, s := range want {
		wanted[s] = true
	}
	seen := map[int]bool{}
	last := -1
	for _, s := range r.seqs {
		if seen[s] {
			rep.Duplicated++
			continue
		}
		seen[s] = true
		if !wanted[s] {
			rep.Extra++
		}
		if s < last {
			rep.Reordered++
		}
		last = max(last, s)
	}
	for _, s := range want {
		if !seen[s] {
			rep.Lost++
		}
	}
	return rep
}

// waitFor polls cond until it holds or d passes; it reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// publisher publishes {"seq": i} on channel through its own client.
type publisher struct {
	c  *wasmclient.Client
	tr *nodeTransport
}

func newPublisher(t *testing.T, nodes []*bayeux, node int) *publisher {
	t.Helper()
	tr := newNodeTransport(nodes, 0, func(string) int { return node })
	c, _ := clusterClient(nodes[node].URL, tr, false)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = c.Disconnect(dctx)
	})
	return &publisher{c: c, tr: tr}
}

// run publishes total messages at rate per second (seq from..from+total-1)
// and returns the seqs whose publish the server acknowledged. during, if
// set, is called once after half of them.
func (p *publisher) run(channel string, from, total, rate int, during func()) (ok []int, failed int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range total {
		<-tick.C
		if i == total/2 && during != nil {
			during()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := p.c.Publish(ctx, channel, map[string]int{"seq": from + i})
		cancel()
		if err == nil {
			ok = append(ok, from+i)
		} else {
			failed++
		}
	}
	return ok, failed
}

// TestClusterAnyNodeServesAnyClient: handshake on node 0, subscribe on
// node 1, connects held on node 2; a publish on node 0 by another client
// arrives.
func TestClusterAnyNodeServesAnyClient(t *testing.T) {
	onEachRedis(t, testClusterAnyNodeServesAnyClient)
}

func testClusterAnyNodeServesAnyClient(t *testing.T, kind string) {
	_, nodes := startCluster(t, kind, 3)
	route := func(ch string) int {
		switch ch {
		case protocol.MetaHandshake:
			return 0
		case protocol.MetaSubscribe:
			return 1
		}
		return 2 // connect (and anything else)
	}
	tr := newNodeTransport(nodes, 0, route)
	rcv := newSeqReceiver(t, nodes[0].URL, tr, false, "/cluster/any")
	pub := newPublisher(t, nodes, 0)
	time.Sleep(300 * time.Millisecond) // let the connect settle on node 2
	ok, failed := pub.run("/cluster/any", 0, 5, 50, nil)
	if failed != 0 {
		t.Fatalf("%d publishes failed", failed)
	}
	if !waitFor(10*time.Second, func() bool { return rcv.count() >= len(ok) }) {
		t.Fatalf("received %d of %d messages", rcv.count(), len(ok))
	}
	rep := rcv.report(ok)
	tr.byChanMu.Lock()
	byChan := fmt.Sprint(tr.byChan)
	tr.byChanMu.Unlock()
	t.Logf("delivery %+v; requests by channel and node: %s", rep, byChan)
	if rep.Lost+rep.Duplicated+rep.Reordered+rep.Extra != 0 || rep.Handshakes != 1 {
		t.Errorf("delivery %+v, want all %d once, in order, one session", rep, len(ok))
	}
	tr.byChanMu.Lock()
	defer tr.byChanMu.Unlock()
	if tr.byChan[protocol.MetaHandshake][0] == 0 || tr.byChan[protocol.MetaSubscribe][1] == 0 || tr.byChan[protocol.MetaConnect][2] == 0 {
		t.Errorf("requests did not go where routed: %v", tr.byChan)
	}
}

// TestClusterRoundRobin: a client whose every request goes to the next
// node in turn receives 1000 messages published at ~200/s on a fixed node,
// in order, none lost or duplicated (with the ack extension; without it
// the result is only logged, unless it duplicates).
func TestClusterRoundRobin(t *testing.T) {
	onEachRedis(t, testClusterRoundRobin)
}

func testClusterRoundRobin(t *testing.T, kind string) {
	const total, rate = 1000, 200
	_, nodes := startCluster(t, kind, 3)
	for _, ack := range []bool{true, false} {
		channel := fmt.Sprintf("/cluster/rr/%v", ack)
		tr := newNodeTransport(nodes, 0, nil)
		rcv := newSeqReceiver(t, nodes[0].URL, tr, ack, channel)
		pub := newPublisher(t, nodes, 0)
		ok, failed := pub.run(channel, 0, total, rate, nil)
		if failed != 0 {
			t.Errorf("ack=%v: %d publishes failed", ack, failed)
		}
		waitFor(10*time.Second, func() bool { return rcv.count() >= len(ok) })
		rep := rcv.report(ok)
		t.Logf("ack=%v: %+v; requests per node %v", ack, rep, tr.counts())
		for i, n := range tr.counts() {
			if n < 5 {
				t.Errorf("ack=%v: node %d got only %d requests: not round robin", ack, i, n)
			}
		}
		if ack && (rep.Lost+rep.Duplicated+rep.Reordered+rep.Extra != 0 || rep.Handshakes != 1) {
			t.Errorf("ack=%v: %+v, want all %d once, in order, one session", ack, rep, len(ok))
		}
		if !ack && rep.Duplicated+rep.Extra != 0 {
			t.Errorf("ack=%v: %+v: duplicates without ack", ack, rep)
		}
	}
}

// TestClusterNodeKilled: receivers spread over the nodes (round robin, and
// sticky to one node until it fails); node 2 is killed with SIGKILL
// mid-stream. The clients that used it carry on on the others, and with
// ack every acknowledged publish arrives, once, in order.
func TestClusterNodeKilled(t *testing.T) {
	onEachRedis(t, testClusterNodeKilled)
}

func testClusterNodeKilled(t *testing.T, kind string) {
	const total, rate = 1000, 200
	const channel = "/cluster/kill"
	_, nodes := startCluster(t, kind, 3)
	var rcvs []*seqReceiver
	var names []string
	for i := range 3 {
		tr := newNodeTransport(nodes, i, nil) // round robin from node i
		rcvs = append(rcvs, newSeqReceiver(t, nodes[i].URL, tr, true, channel))
		names = append(names, fmt.Sprintf("round-robin from %d", i))
	}
	for i := range 3 {
		// Sticky: always node i until it fails, then the next live one.
		var cur atomic.Int64
		cur.Store(int64(i))
		var tr *nodeTransport
		tr = newNodeTransport(nodes, i, func(string) int {
			c := int(cur.Load())
			tr.mu.Lock()
			down := time.Now().Before(tr.down[c])
			tr.mu.Unlock()
			if down {
				c = (c + 1) % len(nodes)
				cur.Store(int64(c))
			}
			return c
		})
		rcvs = append(rcvs, newSeqReceiver(t, nodes[i].URL, tr, true, channel))
		names = append(names, fmt.Sprintf("sticky on %d", i))
	}
	// Without ack, for the record (logged, not asserted): a reply the
	// killed node had taken from Redis but not yet delivered is lost.
	noAckRR := newSeqReceiver(t, nodes[2].URL, newNodeTransport(nodes, 2, nil), false, channel)
	var noAckCur atomic.Int64
	noAckCur.Store(2)
	var noAckTr *nodeTransport
	noAckTr = newNodeTransport(nodes, 2, func(string) int {
		c := int(noAckCur.Load())
		noAckTr.mu.Lock()
		down := time.Now().Before(noAckTr.down[c])
		noAckTr.mu.Unlock()
		if down {
			c = (c + 1) % len(nodes)
			noAckCur.Store(int64(c))
		}
		return c
	})
	noAckSticky := newSeqReceiver(t, nodes[2].URL, noAckTr, false, channel)
	pub := newPublisher(t, nodes, 0)
	var killedAt time.Time
	ok, failed := pub.run(channel, 0, total, rate, func() {
		killedAt = time.Now()
		nodes[2].kill()
	})
	t.Logf("published %d (%d failed); node 2 killed at %s", len(ok), failed, killedAt.Format("15:04:05.000"))
	waitFor(20*time.Second, func() bool {
		for _, r := range rcvs {
			if r.count() < len(ok) {
				return false
			}
		}
		return true
	})
	for i, r := range rcvs {
		rep := r.report(ok)
		t.Logf("%s: %+v; requests per node %v, connection errors %d", names[i], rep, r.tr.counts(), r.tr.connErrs.Load())
		if rep.Lost+rep.Duplicated+rep.Reordered+rep.Extra != 0 {
			t.Errorf("%s: %+v, want all %d acknowledged publishes once, in order", names[i], rep, len(ok))
		}
		// A client whose last request went to the dead node may be in its
		// retry back-off right now: it must get connected again.
		if !waitFor(10*time.Second, func() bool { return r.c.State().State == wasmclient.Connected }) {
			t.Errorf("%s: state %v, want connected", names[i], r.c.State().State)
		}
	}
	for name, r := range map[string]*seqReceiver{"no ack, round-robin": noAckRR, "no ack, sticky on 2": noAckSticky} {
		t.Logf("%s: %+v; requests per node %v (not asserted)", name, r.report(ok), r.tr.counts())
	}
	if len(ok) < total*9/10 {
		t.Errorf("only %d of %d publishes succeeded through a live node", len(ok), total)
	}
}

// TestClusterRedisRestart: redis-server is killed and started again empty;
// the nodes reconnect by themselves and the clients re-handshake (their
// sessions are gone) and receive again.
func TestClusterRedisRestart(t *testing.T) {
	onEachRedis(t, testClusterRedisRestart)
}

func testClusterRedisRestart(t *testing.T, kind string) {
	const channel = "/cluster/redis"
	r, nodes := startCluster(t, kind, 3)
	var rcvs []*seqReceiver
	for i := range 3 {
		rcvs = append(rcvs, newSeqReceiver(t, nodes[i].URL, newNodeTransport(nodes, i, nil), true, channel))
	}
	pub := newPublisher(t, nodes, 0)
	ok, failed := pub.run(channel, 0, 20, 100, nil)
	if failed != 0 || !waitFor(5*time.Second, func() bool {
		for _, r := range rcvs {
			if r.count() < len(ok) {
				return false
			}
		}
		return true
	}) {
		for i, r := range rcvs {
			t.Logf("receiver %d: %+v; requests per node %v", i, r.report(ok), r.tr.counts())
		}
		t.Fatalf("before the restart: %d publishes failed or not all arrived", failed)
	}

	r.kill()
	if err := r.restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	for i, b := range nodes {
		if !waitFor(15*time.Second, func() bool {
			return strings.Contains(b.log(), "redis pub/sub reconnected")
		}) {
			t.Errorf("node %d did not log the pub/sub reconnect; log:\n%s", i, b.log())
		}
	}
	t.Logf("nodes reconnected within %v", time.Since(restarted).Round(time.Millisecond))

	// The sessions are gone: the clients must handshake again and
	// subscribe again by themselves. Publish until every receiver got a
	// message published after the restart.
	base := 1000
	deadline := time.Now().Add(20 * time.Second)
	got := func() bool {
		for _, r := range rcvs {
			r.mu.Lock()
			last := -1
			if len(r.seqs) > 0 {
				last = r.seqs[len(r.seqs)-1]
			}
			r.mu.Unlock()
			if last < 1000 {
				return false
			}
		}
		return true
	}
	for !got() && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = pub.c.Publish(ctx, channel, map[string]int{"seq": base})
		cancel()
		base++
		time.Sleep(100 * time.Millisecond)
	}
	recovered := time.Since(restarted).Round(time.Millisecond)
	for i, rc := range rcvs {
		rc.mu.Lock()
		hs, n := len(rc.handshakes), len(rc.seqs)
		rc.mu.Unlock()
		t.Logf("receiver %d: %d sessions, %d messages, state %v", i, hs, n, rc.c.State().State)
		if hs < 2 {
			t.Errorf("receiver %d did not handshake again (%d sessions)", i, hs)
		}
	}
	if !got() {
		t.Fatalf("messages did not flow again within 20s of the restart")
	}
	t.Logf("messages flow again %v after the restart (%d publishes tried)", recovered, base-1000)

	// And a steady stream afterwards arrives whole.
	ok, failed = pub.run(channel, 2000, 100, 100, nil)
	if len(ok) == 0 {
		t.Fatalf("after recovery all %d publishes failed", failed)
	}
	waitFor(10*time.Second, func() bool {
		for _, r := range rcvs {
			if r.count() == 0 {
				return false
			}
			r.mu.Lock()
			last := r.seqs[len(r.seqs)-1]
			r.mu.Unlock()
			if last < ok[len(ok)-1] {
				return false
			}
		}
		return true
	})
	for i, rc := range rcvs {
		rep := rc.report(ok)
		// Only the post-restart stream counts here.
		rep.Extra = 0
		if rep.Lost != 0 || failed != 0 {
			t.Errorf("receiver %d after recovery: %+v (%d publishes failed)", i, rep, failed)
		}
	}
}
