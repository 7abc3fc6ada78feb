package redis

import (
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/server"
)

// sweeper runs every SweepInterval: it keeps this node's local sessions
// alive, removes expired sessions and forgets what this node no longer
// needs.
func (e *Engine) sweeper() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			e.keepLocals()
			e.sweep()
			e.janitor(now)
		}
	}
}

const sweepBatch = 100

// sweep removes the sessions whose expiry passed: the index names the
// candidates, a script on each checks and removes it atomically, so that
// of the nodes sweeping at once exactly one reports each.
func (e *Engine) sweep() {
	ctx := e.ctx
	for ctx.Err() == nil {
		ids, err := sweepScript.Run(ctx, e.client, []string{e.k.index()}, sweepBatch).StringSlice()
		if err != nil {
			if ctx.Err() == nil {
				e.log.Debug("sweep failed", "err", err)
			}
			return
		}
		if len(ids) == 0 {
			return
		}
		calls := make([]*call, len(ids))
		for i, id := range ids {
			calls[i] = newCall(expireScript, e.sessionKeys(id), e.k.nodeChan(), id)
		}
		if err := e.run(ctx, calls...); err != nil {
			e.log.Debug("sweep failed", "err", err)
			return
		}
		pipe := e.client.Pipeline()
		fixes := 0
		for i, c := range calls {
			v, err := c.cmd.Slice()
			if err != nil || len(v) == 0 {
				continue
			}
			switch code, _ := v[0].(int64); code {
			case 0: // gone already
				pipe.ZRem(ctx, e.k.index(), ids[i])
				fixes++
			case 1: // touched meanwhile: the index was behind
				score := math.Inf(1)
				if exp, _ := v[1].(string); exp != "inf" {
					f, err := strconv.ParseFloat(exp, 64)
					if err != nil {
						continue
					}
					score = f
				}
				pipe.ZAddXX(ctx, e.k.index(), goredis.Z{Score: score, Member: ids[i]})
				fixes++
			case 2:
				rs, err := removed(ids[i], v[1:])
				if err != nil {
					e.log.Error("sweep: bad session record", "err", err)
					continue
				}
				e.forgetLocal(rs.Info.ID)
				e.dropOwned(rs.Info.ID, server.ErrSessionRemoved)
				e.cleanup(ctx, rs.Info.ID, rs.Subscriptions)
				e.stats.expired.Add(1)
				if e.hooks.Expired != nil {
					e.hooks.Expired(rs)
				}
			}
		}
		if fixes > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				e.log.Debug("sweep: fixing the index failed", "err", err)
			}
		}
		if len(ids) < sweepBatch {
			return
		}
	}
}

// keepLocals pushes back the expiry of this node's local-client sessions.
func (e *Engine) keepLocals() {
	e.localsMu.Lock()
	ids := make([]string, 0, len(e.locals))
	for id := range e.locals {
		ids = append(ids, id)
	}
	e.localsMu.Unlock()
	exp := time.Now().Add(e.localTTL())
	for _, id := range ids {
		if err := e.Touch(e.ctx, id, exp); err != nil && e.ctx.Err() == nil {
			e.log.Debug("keeping a local session alive failed", "err", err)
		}
	}
}

// idleOwned is how long a session this node takes for may go without a
// Take before the node forgets it (it claims it again if it comes back).
const idleOwned = 10 * time.Minute

// janitor forgets streams nobody here reads, sessions nobody here took for
// a while, and old reasons why sessions ended.
func (e *Engine) janitor(now time.Time) {
	e.streams.sweep(e, 10*time.Second)
	e.forgetGone(now)
	limit := now.Add(-idleOwned).UnixNano()
	e.owned.each(func(s *osession) {
		if s.lastUse.Load() < limit && !s.watching.Load() {
			e.drop(s, server.ErrSuperseded)
		}
	})
}
