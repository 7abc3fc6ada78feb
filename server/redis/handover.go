package redis

import (
	"context"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/server"
)

// A session moves between nodes by handover. A take without ack sends
// its batch before the batch's commit is written (the flusher writes it
// in its next round trip), so the position in Redis may lag what the
// client got. A node that claims a session another node takes for
// therefore asks that node first (claimScript with ask: an "f" notice);
// the node asked stops taking for the session, waits for the commits it
// queued for it, and answers with an "h" notice; only then is the session
// claimed. A node that does not answer within Options.HandoverTimeout
// (gone, or cut off from Redis) is claimed from regardless, and its
// unwritten commits, if any, fail against the new claim number: the
// client may then get the messages of its last batch again.

// handoverTable is the claims of this node waiting for an answer, by
// session id. A session has at most one (claims run under its takeMu).
type handoverTable struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// expect registers a claim of session id about to ask; the returned
// channel is closed by the answer.
func (t *handoverTable) expect(id string) chan struct{} {
	ch := make(chan struct{})
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]chan struct{})
	}
	t.m[id] = ch
	t.mu.Unlock()
	return ch
}

// forget removes the registration expect made.
func (t *handoverTable) forget(id string, ch chan struct{}) {
	t.mu.Lock()
	if t.m[id] == ch {
		delete(t.m, id)
	}
	t.mu.Unlock()
}

// answered is the "h" notice for session id.
func (t *handoverTable) answered(id string) {
	t.mu.Lock()
	ch := t.m[id]
	delete(t.m, id)
	t.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// awaitHandover waits for the answer to a handover request for session
// id, for up to Options.HandoverTimeout.
func (e *Engine) awaitHandover(ctx context.Context, id string, answer <-chan struct{}) error {
	e.stats.handovers.Add(1)
	t := time.NewTimer(e.opts.HandoverTimeout)
	defer t.Stop()
	select {
	case <-answer:
		return nil
	case <-t.C:
		e.stats.handoverTimeouts.Add(1)
		e.log.Debug("no handover answer; claiming regardless", "session", id)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.ctx.Done():
		return server.ErrEngineClosed
	}
}

// handOver answers node's request for session id: the session is no
// longer taken for here (a Take waiting here ends with ErrSuperseded)
// and, once the commits queued for it are written, node is told.
func (e *Engine) handOver(id, node string) {
	if s := e.owned.get(id); s != nil {
		e.drop(s, server.ErrSuperseded)
		// A Take under way queues its commit before it lets go.
		s.takeMu.Lock()
		landed := s.landed
		s.takeMu.Unlock()
		if landed != nil {
			select {
			case <-landed:
			case <-e.ctx.Done():
				return
			}
		}
	}
	if err := e.client.Publish(e.ctx, e.k.nodeChan()+node, "h"+id).Err(); err != nil && !e.closed.Load() {
		e.log.Debug("answering a handover failed", "session", id, "err", err)
	}
}
