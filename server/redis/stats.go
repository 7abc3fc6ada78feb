package redis

import (
	"context"
	"errors"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Stats are the engine's counters since New, for metrics.
type Stats struct {
	// RoundTrips counts commands and pipelines sent to Redis (a script
	// call is one; a script missing from Redis's cache costs one more).
	RoundTrips int64
	// Errors counts failed round trips and pub/sub failures (not "no such
	// key" answers).
	Errors int64
	// Reconnects counts recoveries of the pub/sub connection after a loss.
	Reconnects int64
	// Notices counts notices received by this node (stream entries and
	// notices about its sessions).
	Notices int64
	// Expired counts sessions this node's sweeper removed.
	Expired int64
	// Claims counts sessions this node claimed (a connect that arrived
	// here after another node took for the session, or a first one).
	Claims int64
	// Handovers counts claims that asked another node to hand a session
	// over and waited; HandoverTimeouts those that got no answer in time.
	Handovers, HandoverTimeouts int64
	// Commits counts session commits (positions of the batches sent, and
	// expiries); CommitBatches the round trips they took.
	Commits, CommitBatches int64
	// Reads counts streams read from Redis (a session behind the node's
	// window, a window catching up).
	Reads int64
	// Owned is the number of sessions this node takes for now, Streams
	// the number of streams it watches.
	Owned, Streams int
	// Down is true while the last command failed to reach Redis.
	Down bool
}

type stats struct {
	roundTrips, errors, reconnects, notices, expired atomic.Int64
	claims, commits, commitBatches, reads            atomic.Int64
	handovers, handoverTimeouts                      atomic.Int64
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		RoundTrips:       e.stats.roundTrips.Load(),
		Errors:           e.stats.errors.Load(),
		Reconnects:       e.stats.reconnects.Load(),
		Notices:          e.stats.notices.Load(),
		Expired:          e.stats.expired.Load(),
		Claims:           e.stats.claims.Load(),
		Handovers:        e.stats.handovers.Load(),
		HandoverTimeouts: e.stats.handoverTimeouts.Load(),
		Commits:          e.stats.commits.Load(),
		CommitBatches:    e.stats.commitBatches.Load(),
		Reads:            e.stats.reads.Load(),
		Owned:            e.owned.len(),
		Streams:          len(e.streams.all()),
		Down:             e.down.Load(),
	}
}

// statsHook counts round trips and notices when Redis becomes unreachable
// and reachable again.
type statsHook struct{ e *Engine }

func (h statsHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h statsHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.e.stats.roundTrips.Add(1)
		err := next(ctx, cmd)
		h.e.observe(err)
		return err
	}
}

func (h statsHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.e.stats.roundTrips.Add(1)
		err := next(ctx, cmds)
		h.e.observe(err)
		return err
	}
}

// observe classifies the outcome of a round trip.
func (e *Engine) observe(err error) {
	var rerr goredis.Error
	switch {
	case err == nil || errors.Is(err, goredis.Nil):
	case errors.Is(err, context.Canceled):
		return // the caller gave up; says nothing about Redis
	case errors.As(err, &rerr):
		if goredis.HasErrorPrefix(err, "NOSCRIPT") {
			return // go-redis loads the script and runs it again
		}
		e.stats.errors.Add(1)
	default:
		e.stats.errors.Add(1)
		if e.closed.Load() {
			return
		}
		if !e.down.Swap(true) {
			e.log.Error("redis unreachable; engine calls fail until it is back", "err", err)
		}
		return
	}
	if e.down.Swap(false) {
		e.log.Info("redis reachable again")
	}
}
