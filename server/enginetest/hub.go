package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Hub receives an engine's Ready calls (pass Hub.Ready as
// EngineHooks.Ready) and hands them to the fetches waiting for them. It is
// the test's stand-in for the Server, which does the waiting in
// production.
type Hub struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
	// calls counts Ready calls, per session id.
	calls map[string]int
	total atomic.Int64
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{m: make(map[string][]chan struct{}), calls: make(map[string]int)}
}

// Ready is an EngineHooks.Ready: it wakes what waits for session id.
func (h *Hub) Ready(id string) {
	h.total.Add(1)
	h.mu.Lock()
	chans := h.m[id]
	delete(h.m, id)
	h.calls[id]++
	h.mu.Unlock()
	for _, ch := range chans {
		close(ch)
	}
}

// Calls returns how many Ready calls session id got so far.
func (h *Hub) Calls(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

// Listen returns a channel closed by the next Ready for session id.
func (h *Hub) Listen(id string) <-chan struct{} {
	ch := make(chan struct{})
	h.mu.Lock()
	h.m[id] = append(h.m[id], ch)
	h.mu.Unlock()
	return ch
}

func (h *Hub) forget(id string, ch <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	chans := h.m[id]
	for i, c := range chans {
		if c == ch {
			h.m[id] = append(chans[:i], chans[i+1:]...)
			break
		}
	}
	if len(h.m[id]) == 0 {
		delete(h.m, id)
	}
}

// Node is an engine under test with the Hub of its Ready calls. Several
// Nodes made as peers (Options.Peer) are nodes of one cluster.
type Node struct {
	server.Engine
	Hub *Hub
}

// NewNode returns a Node for an engine that will be started with the
// hooks Hooks returns.
func NewNode(hub *Hub, e server.Engine) *Node { return &Node{Engine: e, Hub: hub} }

// Fetch takes what is queued for session id, waiting up to wait for
// something to arrive as a held connect does (without ack mode).
func (n *Node) Fetch(ctx context.Context, id string, wait time.Duration) (server.Batch, error) {
	return n.Begin(ctx, id, server.TakeOptions{}, wait).Wait()
}

// FetchAck is Fetch in ack mode, acknowledging batch acked.
func (n *Node) FetchAck(ctx context.Context, id string, acked uint64, wait time.Duration) (server.Batch, error) {
	return n.Begin(ctx, id, server.TakeOptions{Ack: true, Acked: acked}, wait).Wait()
}

// Pending is a fetch under way (see Begin).
type Pending struct {
	ch chan fetchResult
	// Waits is true when the first take found nothing and the fetch
	// waits for a Ready.
	Waits bool
}

type fetchResult struct {
	b   server.Batch
	err error
}

// Wait returns the fetch's result. It gives up (an error) after the
// fetch's wait plus Wait.
func (p *Pending) Wait() (server.Batch, error) {
	r := <-p.ch
	return r.b, r.err
}

// Begin begins a fetch as a held connect does: its first Take (with
// Watch) runs before Start returns, so that what is queued afterwards
// reaches it; then it waits for Ready (and takes again), for wait to pass
// (a last take) or for ctx to end (nothing taken). A newer connect on
// another node ends it with server.ErrSuperseded.
func (n *Node) Begin(ctx context.Context, id string, o server.TakeOptions, wait time.Duration) *Pending {
	p := &Pending{ch: make(chan fetchResult, 1)}
	ch := n.Hub.Listen(id)
	o.Watch = wait > 0
	o.Resume = false
	b, err := n.Take(ctx, id, o)
	if err != nil || len(b.Payloads) > 0 || wait <= 0 {
		n.Hub.forget(id, ch)
		p.ch <- fetchResult{b, err}
		return p
	}
	p.Waits = true
	first := b
	o.Resume = true
	if o.Ack {
		o.Acked = max(o.Acked, b.Last)
	}
	go func() {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		finish := func(b server.Batch, err error) {
			n.Hub.forget(id, ch)
			b.Dropped += first.Dropped
			if len(b.Payloads) == 0 && b.Last < first.Last {
				b.Last = first.Last
			}
			p.ch <- fetchResult{b, err}
		}
		for {
			select {
			case <-ch:
				ch = n.Hub.Listen(id)
				b, err := n.Take(ctx, id, o)
				if err != nil || len(b.Payloads) > 0 || b.Dropped > 0 {
					finish(b, err)
					return
				}
				if o.Ack {
					o.Acked = max(o.Acked, b.Last)
				}
			case <-timer.C:
				o.Watch = false
				b, err := n.Take(ctx, id, o)
				finish(b, err)
				return
			case <-ctx.Done():
				finish(server.Batch{}, nil)
				return
			}
		}
	}()
	return p
}

// CreateSession creates session id on e or fails the test.
func CreateSession(t testing.TB, e server.Engine, id string) {
	t.Helper()
	err := e.CreateSession(context.Background(), &server.SessionInfo{ID: id, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

// CreateAckSession creates session id using the ack extension.
func CreateAckSession(t testing.TB, e server.Engine, id string) {
	t.Helper()
	err := e.CreateSession(context.Background(), &server.SessionInfo{ID: id, Created: time.Now(), Ack: true})
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

// TakeAll takes what is queued for session id without waiting (no ack
// mode) or fails the test.
func TakeAll(t testing.TB, e server.Engine, id string) server.Batch {
	t.Helper()
	b, err := e.Take(context.Background(), id, server.TakeOptions{})
	if err != nil {
		t.Fatalf("Take(%s): %v", id, err)
	}
	return b
}

// Burst publishes n messages on channel while a fetch of session id on
// node, subscribed to channel, waits (publishing through pub); it checks
// that they all arrive, in order.
func Burst(t testing.TB, node *Node, pub server.Engine, id, channel string, n int) {
	t.Helper()
	ctx := context.Background()
	p := node.Begin(ctx, id, server.TakeOptions{}, 10*time.Second)
	if !p.Waits {
		t.Fatal("Burst: something was queued before the burst")
	}
	for i := range n {
		if _, err := pub.Publish(ctx, Payload(channel, i)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := awaitPending(p)
	if err != nil {
		t.Fatal(err)
	}
	got := Nums(t, b)
	for len(got) < n {
		b, err := node.Fetch(ctx, id, Wait)
		if err != nil || len(b.Payloads) == 0 {
			break
		}
		got = append(got, Nums(t, b)...)
	}
	if len(got) != n || !isSorted(got) {
		t.Errorf("burst delivered %v", got)
	}
}

func isSorted(s []int) bool {
	for i := 1; i < len(s); i++ {
		if s[i] < s[i-1] {
			return false
		}
	}
	return true
}

var errNoResult = errors.New("enginetest: the fetch did not end in time")

// awaitPending waits at most Wait (beyond the fetch's own wait, which the
// callers keep short or end by a message) for p.
func awaitPending(p *Pending) (server.Batch, error) {
	select {
	case r := <-p.ch:
		return r.b, r.err
	case <-time.After(2 * Wait):
		return server.Batch{}, errNoResult
	}
}

// CloseWhileWaiting closes node's engine while a fetch for session id
// waits. It checks that Close succeeds and promptly ends that fetch, and
// returns the error the fetch returned.
func CloseWhileWaiting(t testing.TB, node *Node, id string) error {
	t.Helper()
	p := node.Begin(context.Background(), id, server.TakeOptions{}, 10*time.Second)
	if !p.Waits {
		t.Fatal("CloseWhileWaiting: the fetch did not wait")
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := awaitPending(p)
	if errors.Is(err, errNoResult) {
		t.Fatal("Close did not wake the waiting fetch")
	}
	return err
}

// sessionUnknown reports whether err says that the session does not exist.
func sessionUnknown(err error) bool { return errors.Is(err, protocol.ErrSessionUnknown) }
