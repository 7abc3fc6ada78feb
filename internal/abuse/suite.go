package abuse

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// attack is one attack of the suite: a name and the function that runs
// it against the target and judges what the server answered.
type attack struct {
	name string
	run  func(ctx context.Context, e *env) Result
	// limit bounds the attack's run (the context's deadline); 0: the
	// default, attackTimeout.
	limit func(e *env) time.Duration
}

// attackTimeout bounds one attack.
const attackTimeout = 30 * time.Second

// attacks are the attacks in the order they run. The ones that log in
// come before login guessing, and handshake flooding comes last: against
// a server the suite did not start every attacker shares one address,
// and guessing locks the account out for that address.
var attacks = []attack{
	{name: "queue-flood", run: queueFlood},
	{name: "logout-replay", run: logoutReplay},
	{name: "slow-bodies", run: slowBodies, limit: slowLimit},
	{name: "jsonp-cookie", run: jsonpCookie},
	{name: "invalid-utf8", run: invalidUTF8},
	{name: "wildcard-lurking", run: wildcardLurking},
	{name: "chat-ext", run: chatExt},
	{name: "room-flood", run: roomFlood},
	{name: "big-batch", run: bigBatch},
	{name: "login-guessing", run: loginGuessing},
	{name: "handshake-flood", run: handshakeFlood},
}

// env is what the attacks share: the target, where attackers come from,
// and the RSS watch. Attacks run one at a time.
type env struct {
	t    *target
	base *url.URL
	rss  *rssWatch // nil without a PID

	mu       sync.Mutex
	loopback bool // the target is on IPv4 loopback: each peer gets an address of its own
	nextIP   int
	peers    []*peer
}

func newEnv(t *target, rss *rssWatch) (*env, error) {
	u, err := url.Parse(t.url)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-url %s: want http:// or https://", t.url)
	}
	e := &env{t: t, base: u, rss: rss}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() && ip.To4() != nil {
		// Linux routes all of 127/8 to the loopback interface; elsewhere
		// only 127.0.0.1 may be there.
		if c, err := net.ListenPacket("udp4", "127.66.0.1:0"); err == nil {
			c.Close()
			e.loopback = true
		}
	}
	return e, nil
}

// peer returns a new attacker: its own cookies and, on loopback, its own
// source address (127.66.x.y), so that one attack's refusals by a
// per-address limit do not decide another's.
func (e *env) peer() *peer {
	e.mu.Lock()
	defer e.mu.Unlock()
	ip := ""
	if e.loopback {
		e.nextIP++
		ip = fmt.Sprintf("127.66.%d.%d", e.nextIP/250, e.nextIP%250+1)
	}
	p := newPeer(e.base, ip)
	e.peers = append(e.peers, p)
	return p
}

// sameAddress returns a new browser (its own cookies) at p's address.
func (e *env) sameAddress(p *peer) *peer {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := newPeer(e.base, p.ip)
	e.peers = append(e.peers, q)
	return q
}

// closePeers drops every peer's idle connections.
func (e *env) closePeers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.peers {
		p.close()
	}
	e.peers = nil
}

// Options configures Run.
type Options struct {
	// URL of a running server to attack; empty: start Bin.
	URL string
	// PID of the running server, for its RSS (0: not measured).
	PID int
	// User and Password of an account of the running server (a test
	// account: login guessing locks it out from this address).
	User, Password string
	// Bin is the server binary to start when URL is empty.
	Bin string
	// Only lists the attacks to run (empty: all).
	Only []string
}

// Run runs the attacks and writes the report to w: the target and its
// settings, one line per attack, the server's RSS before, after and at
// its peak, and a summary. It returns the results; an error means the
// suite could not start.
func Run(ctx context.Context, o Options, w io.Writer) ([]Result, error) {
	run := attacks
	if len(o.Only) > 0 {
		run = nil
		for _, name := range o.Only {
			i := slices.IndexFunc(attacks, func(a attack) bool { return a.name == name })
			if i < 0 {
				return nil, fmt.Errorf("no attack %q (attacks: %s)", name, attackNames())
			}
			run = append(run, attacks[i])
		}
	}
	var t *target
	var err error
	if o.URL == "" {
		if t, err = startTarget(ctx, o.Bin); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "target: %s started at %s (pid %d), temporary data dir, users %s (admin), %s, %s, %s\n",
			o.Bin, t.url, t.pid, t.admin.name, t.user.name, t.victim.name, t.rooms.name)
		fmt.Fprintf(w, "settings: %s; every other limit at its default\n", strings.Join(t.settings, " "))
	} else {
		if t, err = attachTarget(o.URL, o.PID, account{o.User, o.Password}); err != nil {
			return nil, err
		}
		pid := "no -pid: RSS not measured"
		if o.PID > 0 {
			pid = fmt.Sprintf("pid %d", o.PID)
		}
		fmt.Fprintf(w, "target: %s (%s), user %s; limits expected from the BAYEUX_* environment (unset: defaults)\n", t.url, pid, t.user.name)
	}
	defer t.stop()

	var rss *rssWatch
	if t.pid > 0 {
		if rss, err = watchRSS(t.pid); err != nil {
			return nil, err
		}
	}
	e, err := newEnv(t, rss)
	if err != nil {
		if rss != nil {
			rss.end()
		}
		return nil, err
	}
	if e.loopback {
		fmt.Fprintln(w, "attackers: one loopback address each (127.66.x.y), so per-address limits count them apart")
	} else {
		fmt.Fprintln(w, "attackers: all from this host's address")
	}

	began := time.Now()
	var results []Result
	for _, a := range run {
		limit := attackTimeout
		if a.limit != nil {
			limit = a.limit(e)
		}
		actx, cancel := context.WithTimeout(ctx, limit)
		start := time.Now()
		r := a.run(actx, e)
		cancel()
		e.closePeers()
		r.Name, r.Took = a.name, time.Since(start)
		if r.Verdict == Error && t.logTail != nil {
			r.Saw += "\nserver log (last lines):\n" + t.logTail.String()
		}
		r.WriteTo(w)
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}

	if rss != nil {
		first, last, peak, err := rss.end()
		fmt.Fprintf(w, "server RSS: before %s, after %s, peak %s (sampled every %v)\n", mb(first), mb(last), mb(peak), rssEvery)
		if err != nil {
			fmt.Fprintf(w, "server RSS: %v\n", err)
		}
	} else {
		fmt.Fprintln(w, "server RSS: not measured (no -pid)")
	}
	counts := map[Verdict]int{}
	for _, r := range results {
		counts[r.Verdict]++
	}
	fmt.Fprintf(w, "%d attacks in %s: %d PASS, %d FAIL, %d ERROR\n", len(results), time.Since(began).Round(100*time.Millisecond),
		counts[Pass], counts[Fail], counts[Error])
	if err := t.stop(); err != nil {
		fmt.Fprintf(w, "stopping the server: %v\n", err)
	}
	return results, nil
}

func attackNames() string {
	var names []string
	for _, a := range attacks {
		names = append(names, a.name)
	}
	return strings.Join(names, ", ")
}

// Main is the bayeux-abuse command: it parses args, runs the suite and
// returns the exit status: 0 when every attack was refused, 1 when one
// succeeded or could not be run, 2 for bad usage or a suite that could
// not start.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bayeux-abuse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var only string
	fs.StringVar(&o.URL, "url", "", "attack the server running at this URL (only servers you own) instead of starting -bin")
	fs.IntVar(&o.PID, "pid", 0, "with -url: the server's process id, for its RSS (/proc/PID/status)")
	fs.StringVar(&o.User, "user", "", "with -url: a test account of the server (password in $ABUSE_PASSWORD); login guessing locks it out from this address for the login limit's window")
	fs.StringVar(&o.Bin, "bin", "bin/bayeux", "server binary to start on a loopback port when -url is not given")
	fs.StringVar(&only, "only", "", "comma-separated attacks to run (default all): "+attackNames())
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bayeux-abuse [flags]\n\nAttacks a Bayeux server as an outsider would and says, for each attack, whether the\nserver defended itself. Point it only at servers you own. With -url, the limits the\nverdicts expect are read from the BAYEUX_* environment, as the server reads them.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bayeux-abuse: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if only != "" {
		o.Only = strings.Split(only, ",")
	}
	if o.URL != "" {
		o.Password = os.Getenv("ABUSE_PASSWORD")
		if o.User == "" || o.Password == "" {
			fmt.Fprintln(stderr, "bayeux-abuse: -url needs -user and $ABUSE_PASSWORD (a test account of that server)")
			return 2
		}
	} else if o.PID != 0 || o.User != "" {
		fmt.Fprintln(stderr, "bayeux-abuse: -pid and -user go with -url")
		return 2
	}
	results, err := Run(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "bayeux-abuse:", err)
		return 2
	}
	for _, r := range results {
		if r.Verdict != Pass {
			return 1
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}
