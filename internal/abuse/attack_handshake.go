package abuse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// handshakeObs is what the handshake flood saw.
type handshakeObs struct {
	sent     int
	answers  map[string]int // "successful", or the refusal's error
	noAdvice int            // refusals without advice to come back later
	took     time.Duration
	burst    int
	rate     float64
	sessions int // the per-address session cap (0: none)
}

// handshakeFlood is finding 2's last limits: one address handshakes
// twice the handshake burst, ten at a time, keeping every session. The
// server may accept no more than the burst (plus what the rate gives back
// meanwhile) and no more sessions than the per-address cap, and must
// refuse the rest with a 429 error and advice to come back later.
func handshakeFlood(ctx context.Context, e *env) Result {
	lim := e.t.limits
	o := handshakeObs{sent: 2 * max(lim.HandshakeBurst, lim.MaxSessionsPerIP), answers: map[string]int{},
		burst: lim.HandshakeBurst, rate: lim.HandshakeRate, sessions: lim.MaxSessionsPerIP}
	tried := fmt.Sprintf("%d handshakes from one address, 10 at a time, keeping every session (handshake burst %d, rate %g/s, sessions per address %d)",
		o.sent, o.burst, o.rate, o.sessions)
	p := e.peer()
	var mu sync.Mutex
	var sessions []*session
	start := time.Now()
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for range o.sent {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s, b := p.handshake(ctx, nil)
			mu.Lock()
			defer mu.Unlock()
			if s != nil {
				sessions = append(sessions, s)
				o.answers["successful"]++
				return
			}
			r := b.reply(protocol.MetaHandshake)
			if r == nil {
				o.answers[b.describe(protocol.MetaHandshake)]++
				return
			}
			o.answers[r.Error]++
			if a := r.Advice; a == nil || a.Reconnect == protocol.ReconnectNone || a.Interval == nil || *a.Interval <= 0 {
				o.noAdvice++
			}
		})
	}
	wg.Wait()
	o.took = time.Since(start)
	for _, s := range sessions {
		s.disconnect()
	}
	if ctx.Err() != nil {
		return errorResult("handshake-flood", tried, ctx.Err())
	}
	return judgeHandshakes(tried, o)
}

// judgeHandshakes: successes within the burst plus the rate's refill
// (one more for a token at the edge) and within the session cap; every
// refusal a 4xx Bayeux error with advice to come back after an interval.
func judgeHandshakes(tried string, o handshakeObs) Result {
	var f findings
	ok := o.answers["successful"]
	f.note("%d successful, %s in %v", ok, answerList(o.answers, "successful"), o.took.Round(time.Millisecond))
	allowed := o.sent
	if o.rate > 0 {
		allowed = min(allowed, o.burst+int(math.Ceil(o.rate*o.took.Seconds()))+1)
	}
	if o.sessions > 0 {
		allowed = min(allowed, o.sessions)
	}
	f.check(ok > allowed, "%d sessions from one address, at most %d allowed", ok, allowed)
	f.check(o.noAdvice > 0, "%d refusals without advice to come back after an interval", o.noAdvice)
	for a, n := range o.answers {
		f.check(a != "successful" && !strings.HasPrefix(a, "4") && !strings.HasPrefix(a, "HTTP 4"), "%d answered %s", n, a)
	}
	return f.result("handshake-flood", tried)
}
