package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// flusher writes the sessions' commits to Redis, all those that are ready
// at the same moment in one round trip (group commit): while one write is
// under way the next ones gather. It also writes, once per SweepInterval,
// the expiry of the sessions whose expiry changed without a commit.
type flusher struct {
	e    *Engine
	reqs chan *commitReq
	// testHook, when set (by tests), runs before each batch is written.
	testHook atomic.Pointer[func()]
}

// commitReq is one session's commit.
type commitReq struct {
	s     *osession
	epoch string
	st    string // "" keeps the stored state (an expiry alone)
	exp   string // "" keeps the stored expiry
	trim  string // "" removes no direct message
	drops string // "DL,DB,DQ": direct drops reported, or ""
	// done receives the result of a commit a Take waits for; nil for one
	// nobody waits for (see finish).
	done chan commitResult
	// landed is closed once a commit that nobody waits for is written or
	// failed (see osession.landed); nil for the others.
	landed chan struct{}
}

type commitResult struct {
	res int
	err error
}

// maxCommitBatch bounds the sessions of one script call on a single Redis.
const maxCommitBatch = 256

// The flusher gathers commits while they keep coming (each within
// commitIdle of the one before), for at most commitGather, before it
// writes them: a lone commit waits a fraction of a round trip, and the
// sessions woken together by one message share a round trip and a script
// call however long their takes keep the node busy.
const (
	commitIdle   = 100 * time.Microsecond
	commitGather = time.Millisecond
)

func newFlusher(e *Engine) *flusher {
	return &flusher{e: e, reqs: make(chan *commitReq, 4096)}
}

// commit stores s's new state (with the expiry the server asked for and
// the direct queue trimmed up to trim, 0 for none) if s's claim is still
// this node's,
// and reports commitOK, commitClaimedAway or commitUnknown. Once queued the
// commit is waited for whatever ctx says: its outcome decides what the
// caller may send.
func (f *flusher) commit(_ context.Context, s *osession, st string, trim uint64, drops [3]uint64) (int, error) {
	r := f.request(s, st, trim, drops)
	r.done = make(chan commitResult, 1)
	select {
	case f.reqs <- r:
	case <-f.e.ctx.Done():
		return commitOK, server.ErrEngineClosed
	}
	select {
	case res := <-r.done:
		if res.err != nil && r.exp != "" {
			s.restoreExpiry()
		}
		return res.res, res.err
	case <-f.e.ctx.Done():
		return commitOK, server.ErrEngineClosed
	}
}

// commitAsync queues the commit of s's new position st without waiting
// for it (it trims no direct message and reports no drops: those commits
// are waited for): its outcome is acted on when it comes (a session
// claimed away or lost is dropped) and s.landed is closed then. s.takeMu
// is held.
func (f *flusher) commitAsync(s *osession, st string) {
	r := f.request(s, st, 0, [3]uint64{})
	r.landed = make(chan struct{})
	s.landed = r.landed
	select {
	case f.reqs <- r:
	case <-f.e.ctx.Done():
		close(r.landed)
	}
}

// request is the commit of s's new state.
func (f *flusher) request(s *osession, st string, trim uint64, drops [3]uint64) *commitReq {
	r := &commitReq{s: s, epoch: strconv.FormatUint(s.epoch.Load(), 10), st: st, exp: s.takeExpiry(f.e.opts.SweepInterval)}
	if trim > 0 {
		r.trim = strconv.FormatUint(trim, 10)
	}
	if drops != [3]uint64{} {
		r.drops = fmt.Sprintf("%d,%d,%d", drops[0], drops[1], drops[2])
	}
	return r
}

func (f *flusher) run() {
	e := f.e
	defer e.wg.Done()
	tick := time.NewTicker(e.opts.SweepInterval)
	defer tick.Stop()
	batch := make([]*commitReq, 0, 64)
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for {
		select {
		case <-e.ctx.Done():
			// The commits of batches already sent are written; those that
			// Takes wait for fail (their batches are not sent).
			batch = batch[:0]
			for {
				select {
				case r := <-f.reqs:
					if r.landed != nil {
						batch = append(batch, r)
					} else {
						f.finish(r, commitResult{err: server.ErrEngineClosed})
					}
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				f.flush(batch)
			}
			return
		case r := <-f.reqs:
			batch = append(batch[:0], r)
			end := time.Now().Add(commitGather)
			gather.Reset(commitIdle)
		gather:
			for len(batch) < 8*maxCommitBatch {
				select {
				case r := <-f.reqs:
					batch = append(batch, r)
					wait := min(commitIdle, time.Until(end))
					if wait <= 0 {
						break gather
					}
					gather.Reset(wait)
				case <-gather.C:
					break gather
				}
			}
			gather.Stop()
			f.flush(batch)
		case <-tick.C:
			if touches := f.touches(); len(touches) > 0 {
				f.flush(touches)
			}
		}
	}
}

// touches are expiry-only commits for the sessions whose expiry changed.
func (f *flusher) touches() []*commitReq {
	var out []*commitReq
	f.e.owned.each(func(s *osession) {
		if !s.live() {
			return
		}
		if exp := s.takeExpiry(f.e.opts.SweepInterval); exp != "" {
			out = append(out, &commitReq{s: s, epoch: strconv.FormatUint(s.epoch.Load(), 10), exp: exp})
		}
	})
	return out
}

// flush writes a batch of commits and the expiry index in one round trip.
func (f *flusher) flush(batch []*commitReq) {
	e := f.e
	if h := f.testHook.Load(); h != nil {
		(*h)()
	}
	var calls []*call
	var parts [][]*commitReq
	accounted := !e.cluster && e.opts.MaxQueuedBytes > 0
	add := func(rs []*commitReq) {
		keys := make([]string, 0, 2*len(rs)+2)
		args := make([]any, 0, 1+5*len(rs))
		args = append(args, len(rs))
		for _, r := range rs {
			keys = append(keys, e.k.sess(r.s.id), e.k.queue(r.s.id))
			args = append(args, r.epoch, r.st, r.exp, r.trim, r.drops)
		}
		if accounted {
			keys = append(keys, e.k.total(), e.k.sizes())
		}
		calls = append(calls, newCall(commitScript, keys, args...))
		parts = append(parts, rs)
	}
	if e.cluster {
		for i := range batch {
			add(batch[i : i+1])
		}
	} else {
		for i := 0; i < len(batch); i += maxCommitBatch {
			add(batch[i:min(i+maxCommitBatch, len(batch))])
		}
	}
	ctx := context.WithoutCancel(e.ctx)
	_ = e.run(ctx, calls...)
	e.stats.commitBatches.Add(1)
	e.stats.commits.Add(int64(len(batch)))
	index := []any{"set"}
	var sizes []any
	total := int64(-1)
	for i, rs := range parts {
		v, err := calls[i].cmd.Slice()
		if err == nil && len(v) != 2*len(rs)+2 {
			err = errShortReply
		}
		if err == nil {
			if t, _ := v[1].(int64); t >= 0 {
				total = max(total, t)
			}
		}
		for j, r := range rs {
			if err != nil {
				f.finish(r, commitResult{err: e.fail("commit", err)})
				continue
			}
			n, _ := v[2*j+2].(int64)
			f.finish(r, commitResult{res: int(n)})
			if n == commitOK && r.exp != "" {
				index = append(index, r.exp, r.s.id)
			}
			if n == commitOK && r.trim != "" && !accounted {
				qb, _ := v[2*j+3].(int64)
				sizes = append(sizes, e.k.queue(r.s.id), qb)
			}
		}
	}
	if e.opts.MaxQueuedBytes > 0 && (len(sizes) > 0 || total >= 0) {
		e.account(ctx, total, sizes...)
	}
	// The expiry index follows, for the sessions still there (after the
	// replies: nobody waits for it).
	if len(index) > 1 {
		if err := indexScript.Run(ctx, e.client, []string{e.k.index()}, index...).Err(); err != nil && !e.closed.Load() {
			e.log.Debug("updating the expiry index failed", "err", err)
		}
	}
}

// finish delivers a result to the Take waiting for it; for a commit
// nobody waits for (an expiry alone, a take without ack) it acts on it.
func (f *flusher) finish(r *commitReq, res commitResult) {
	if r.done != nil {
		r.done <- res
		return
	}
	if r.landed != nil {
		defer close(r.landed)
	}
	switch {
	case res.err != nil:
		r.s.restoreExpiry()
	case res.res == commitClaimedAway:
		f.e.drop(r.s, server.ErrSuperseded)
	case res.res == commitUnknown && r.landed != nil:
		// Most likely removed after its batch left: the removal's notice,
		// which names the reason (ErrSessionRemoved), may still be on its
		// way on the pub/sub connection. Without one, it was lost.
		time.AfterFunc(noticeGrace, func() { f.e.drop(r.s, protocol.ErrSessionUnknown) })
	case res.res == commitUnknown:
		// Gone without a notice: lost (removals are announced).
		f.e.drop(r.s, protocol.ErrSessionUnknown)
	}
}

// noticeGrace is how long a session whose commit found it gone waits for
// the notice that says why, when the commit was written after its batch
// left (a removal could have come in between).
const noticeGrace = 200 * time.Millisecond
