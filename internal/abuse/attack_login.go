package abuse

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"

	"github.com/bayeux-go/bayeux/protocol"
)

// Bursts of login guessing (issue 13, finding 1): the sizes that beat the
// old limit. Each is one user from one address, the right password last.
const (
	loginBurst     = 100
	handshakeBurst = 90
)

// guessBurst is what one burst of guesses got.
type guessBurst struct {
	via    string         // "/login" or "ext.auth"
	from   string         // the attacker's address
	counts map[string]int // outcome -> guesses: loginOK, loginWrong, loginLimited, or another answer
	right  string         // the right password's outcome
	// checked is the passwords the server says it checked (/metrics:
	// failed logins not refused by a login limit, plus a success); -1
	// when unknown.
	checked int
	refused *delta // the refusals /metrics counted meanwhile (nil: unknown)
}

// burst sends n guesses at once: n-1 wrong ones released together and,
// once they are all on the wire (written, by httptrace, or failed), the
// right one. (Sent merely after them, the right one would often go first:
// Go runs the goroutine created last first.) It tallies the outcomes
// guess returns.
func burst(ctx context.Context, n int, guess func(ctx context.Context, password string) string, right string) (map[string]int, string) {
	var wg, sent sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	rightOutcome := ""
	start := make(chan struct{})
	sent.Add(n - 1)
	for i := range n - 1 {
		wg.Go(func() {
			var once sync.Once
			done := func() { once.Do(sent.Done) }
			defer done()
			gctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { done() }})
			<-start
			o := guess(gctx, fmt.Sprintf("wrong-%d", i))
			mu.Lock()
			counts[o]++
			mu.Unlock()
		})
	}
	close(start)
	sent.Wait()
	o := guess(ctx, right)
	wg.Wait()
	counts[o]++
	rightOutcome = o
	return counts, rightOutcome
}

// handshakeOutcome reads an ext.auth handshake's reply as a login outcome.
func handshakeOutcome(b bayeux) string {
	r := b.reply(protocol.MetaHandshake)
	switch {
	case b.err != nil:
		return "error: " + b.err.Error()
	case r == nil:
		return fmt.Sprintf("HTTP %d", b.status)
	case r.IsSuccessful():
		return loginOK
	case r.Error == "403::invalid_credentials":
		return loginWrong
	case r.Error == "403::rate_limited":
		return loginLimited
	}
	return r.Error
}

// loginGuessing is finding 1 of issue 13: 100 parallel wrong-password
// /login POSTs, then 90 parallel ext.auth handshakes, each for the victim
// from one address with the right password sent last. At most the
// per-user-and-address limit's number of guesses may be checked, and the
// right password must not get in once that many were wrong.
func loginGuessing(ctx context.Context, e *env) Result {
	v := e.t.victim
	limit := e.t.limits.LoginLimitUserIP
	tried := fmt.Sprintf("%d parallel /login POSTs, then %d parallel ext.auth handshakes, for user %s from one address each (all wrong passwords but the last, the right one)",
		loginBurst, handshakeBurst, v.name)
	obs := e.peer()
	var bursts []guessBurst

	p := e.peer()
	before := obs.scrape(ctx)
	counts, right := burst(ctx, loginBurst, func(ctx context.Context, pw string) string { return p.login(ctx, v.name, pw) }, v.password)
	after := obs.scrape(ctx)
	bursts = append(bursts, tallyGuesses("/login", p.from(), counts, right, before, after))

	q := e.peer()
	var sessions []*session
	var mu sync.Mutex
	counts, right = burst(ctx, handshakeBurst, func(ctx context.Context, pw string) string {
		s, b := q.handshake(ctx, map[string]any{"auth": map[string]string{"user": v.name, "password": pw}})
		if s != nil {
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
		}
		return handshakeOutcome(b)
	}, v.password)
	for _, s := range sessions {
		s.disconnect()
	}
	before, after = after, obs.scrape(ctx)
	bursts = append(bursts, tallyGuesses("ext.auth", q.from(), counts, right, before, after))
	if ctx.Err() != nil {
		return errorResult("login-guessing", tried, ctx.Err())
	}
	return judgeGuesses(tried, limit, bursts)
}

// tallyGuesses makes a guessBurst of a burst's outcomes and the /metrics
// before and after it.
func tallyGuesses(via, from string, counts map[string]int, right string, before, after *metrics) guessBurst {
	g := guessBurst{via: via, from: from, counts: counts, right: right, checked: -1, refused: after.since(before)}
	// A server that does not count the login limits' refusals (their
	// series exist from the start) cannot tell checked from refused.
	if _, counts := after.refusedReasons()["login_user_ip"]; !counts {
		return g
	}
	if d := g.refused; d != nil {
		g.checked = int(d.failedLogins - d.sum("login_"))
		if right == loginOK {
			g.checked++
		}
	}
	return g
}

// judgeGuesses: each burst may have had at most limit passwords checked
// (by its answers, and by /metrics when known), and its right password
// may have got in only as one of those (fewer than limit wrong answers
// before it): beyond the limit, it must be refused unchecked.
func judgeGuesses(tried string, limit int, bursts []guessBurst) Result {
	var f findings
	for _, g := range bursts {
		wrong := g.counts[loginWrong]
		checked := wrong
		if g.right == loginOK {
			checked++
		}
		var parts []string
		for _, o := range slices.Sorted(maps.Keys(g.counts)) {
			parts = append(parts, fmt.Sprintf("%s %d", o, g.counts[o]))
		}
		rightSaw := "the right password: " + g.right
		switch {
		case g.right == loginOK && wrong < limit:
			rightSaw = fmt.Sprintf("the right password got in as one of the %d checks allowed", limit)
		case g.right == loginLimited:
			rightSaw = "the right password refused unchecked"
		}
		f.note("%s from %s: %s; %s; %d checked by the answers, %s by /metrics (%s)", g.via, g.from, strings.Join(parts, ", "),
			rightSaw, checked, checkedString(g.checked), g.refused)
		f.check(checked > limit, "%s: %d passwords checked, limit %d", g.via, checked, limit)
		f.check(g.checked > limit, "%s: /metrics counts %d passwords checked, limit %d", g.via, g.checked, limit)
		f.check(g.right == loginOK && wrong >= limit, "%s: the right password got in after %d wrong ones were checked (limit %d)", g.via, wrong, limit)
		f.check(g.counts[loginOK] > 1 || (g.counts[loginOK] == 1 && g.right != loginOK), "%s: a wrong password logged in", g.via)
		for o, n := range g.counts {
			f.check(strings.HasPrefix(o, "HTTP 5") || strings.HasPrefix(o, "5"), "%s: %d answered %s", g.via, n, o)
		}
	}
	return f.result("login-guessing", tried)
}

func checkedString(n int) string {
	if n < 0 {
		return "unknown"
	}
	return fmt.Sprint(n)
}
