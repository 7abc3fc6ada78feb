package admin

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// RecorderOptions configures NewRecorder. Zero fields take the defaults
// documented on them.
type RecorderOptions struct {
	// Interval is how often the server's counters are sampled. Default 2s.
	Interval time.Duration
	// Keep is how many samples are kept for the rate chart. Default 300
	// (ten minutes at 2s).
	Keep int
	// MaxChannels bounds the channels whose publishes are tracked; publishes
	// on further channels are counted only in the totals. Default 10000.
	MaxChannels int
	// ChannelIdle is how long a channel without publishes stays tracked.
	// Default 1h.
	ChannelIdle time.Duration
	// StaleAfter is how long a session's activity is remembered without a
	// message from it (a live session sends a /meta/connect at least every
	// poll timeout plus connect timeout). Default 10m.
	StaleAfter time.Duration
}

// Recorder follows a Server for the admin view and the metrics: it samples
// the server's counters into a rate history, counts publishes per channel
// (OnEvent), and notes each session's transport and last activity (the
// Authorize wrapper). Create it before the server, chain its OnEvent and
// Authorize into server.Options, then Attach the server; Close stops it.
type Recorder struct {
	opts    RecorderOptions
	started time.Time
	srv     atomic.Pointer[server.Server]

	// channels: name -> *channelStat; nchannels counts them.
	channels  sync.Map
	nchannels atomic.Int64
	// activity: session id -> what was seen, in shards.
	activity [64]activityShard

	mu      sync.Mutex
	samples []Sample // oldest first, at most opts.Keep
	stop    chan struct{}
	done    chan struct{}
	closed  bool
}

// Sample is a reading of the server's counters.
type Sample struct {
	Time time.Time
	// Counters since the server started.
	Handshakes, MessagesIn, MessagesOut, Published, Errors, Dropped int64
	// HeldConnects is a gauge.
	HeldConnects int64
	// Per-second rates since the previous sample (zero for the first).
	InRate, OutRate, PublishedRate float64
}

// NewRecorder returns a Recorder; call Attach once the server exists.
func NewRecorder(opts RecorderOptions) *Recorder {
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Keep <= 0 {
		opts.Keep = 300
	}
	if opts.MaxChannels <= 0 {
		opts.MaxChannels = 10000
	}
	if opts.ChannelIdle <= 0 {
		opts.ChannelIdle = time.Hour
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 10 * time.Minute
	}
	return &Recorder{opts: opts, started: time.Now()}
}

// Options returns the options with defaults filled in.
func (r *Recorder) Options() RecorderOptions { return r.opts }

// Started returns when the Recorder was created (the server's start, as
// the app creates both together).
func (r *Recorder) Started() time.Time { return r.started }

// Server returns the attached server, or nil.
func (r *Recorder) Server() *server.Server { return r.srv.Load() }

// Attach gives the Recorder its server and starts sampling. Call it once,
// right after server.New.
func (r *Recorder) Attach(s *server.Server) {
	if !r.srv.CompareAndSwap(nil, s) {
		panic("admin: Recorder attached twice")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	r.sampleLocked(time.Now())
	go r.loop(r.stop, r.done)
}

// Close stops sampling. It is safe to call more than once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	stop, done := r.stop, r.done
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

func (r *Recorder) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			r.Sample(now)
			if now.Sub(lastPrune) >= time.Minute {
				r.Prune(now)
				lastPrune = now
			}
		}
	}
}

// Sample reads the server's counters now and appends them to the history.
// The Recorder does so every Interval by itself; tests call it directly.
func (r *Recorder) Sample(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sampleLocked(now)
}

func (r *Recorder) sampleLocked(now time.Time) {
	s := r.srv.Load()
	if s == nil {
		return
	}
	st := s.Stats()
	cur := Sample{
		Time:         now,
		Handshakes:   st.Handshakes.Load(),
		MessagesIn:   st.MessagesIn.Load(),
		MessagesOut:  st.MessagesOut.Load(),
		Published:    st.Published.Load(),
		Errors:       st.Errors.Load(),
		Dropped:      st.Dropped.Load(),
		HeldConnects: st.HeldConnects.Load(),
	}
	if n := len(r.samples); n > 0 {
		prev := r.samples[n-1]
		if dt := now.Sub(prev.Time).Seconds(); dt > 0 {
			cur.InRate = rate(prev.MessagesIn, cur.MessagesIn, dt)
			cur.OutRate = rate(prev.MessagesOut, cur.MessagesOut, dt)
			cur.PublishedRate = rate(prev.Published, cur.Published, dt)
		}
	}
	if len(r.samples) >= r.opts.Keep {
		copy(r.samples, r.samples[len(r.samples)-r.opts.Keep+1:])
		r.samples = r.samples[:r.opts.Keep-1]
	}
	r.samples = append(r.samples, cur)
}

func rate(from, to int64, seconds float64) float64 {
	if to < from {
		return 0
	}
	return float64(to-from) / seconds
}

// Samples returns the sampled history, oldest first.
func (r *Recorder) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples...)
}

// Rates are message rates per second averaged over a recent window.
type Rates struct {
	In, Out, Published float64
	// Window is the time the rates were averaged over (zero when fewer
	// than two samples exist yet).
	Window time.Duration
}

// RecentRates averages the rates over about the last window (at least
// one sampling interval).
func (r *Recorder) RecentRates(window time.Duration) Rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.samples)
	if n < 2 {
		return Rates{}
	}
	last := r.samples[n-1]
	i := n - 2
	for i > 0 && last.Time.Sub(r.samples[i].Time) < window {
		i--
	}
	first := r.samples[i]
	dt := last.Time.Sub(first.Time)
	if dt <= 0 {
		return Rates{}
	}
	sec := dt.Seconds()
	return Rates{
		In:        rate(first.MessagesIn, last.MessagesIn, sec),
		Out:       rate(first.MessagesOut, last.MessagesOut, sec),
		Published: rate(first.Published, last.Published, sec),
		Window:    dt,
	}
}

// channelStat counts publishes on one channel in one-second buckets.
type channelStat struct {
	mu      sync.Mutex
	total   int64
	last    time.Time
	buckets [rateWindow + 2]struct{ sec, n int64 }
}

// rateWindow is how many seconds a channel's rate is averaged over.
const rateWindow = 30

func (c *channelStat) add(now time.Time) {
	sec := now.Unix()
	c.mu.Lock()
	c.total++
	c.last = now
	b := &c.buckets[sec%int64(len(c.buckets))]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n++
	c.mu.Unlock()
}

// ChannelActivity is what the Recorder saw published on a channel.
type ChannelActivity struct {
	// Total counts publishes since the channel was first seen.
	Total int64
	// Last is the time of the newest publish.
	Last time.Time
	// Rate is publishes per second over the last 30 seconds.
	Rate float64
}

func (c *channelStat) read(now time.Time) ChannelActivity {
	sec := now.Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, b := range c.buckets {
		// The last rateWindow complete seconds and the current one.
		if b.sec > sec-rateWindow-1 && b.sec <= sec {
			n += b.n
		}
	}
	window := float64(rateWindow) + float64(now.Nanosecond())/1e9
	return ChannelActivity{Total: c.total, Last: c.last, Rate: float64(n) / window}
}

// OnEvent follows the server's events (chain it into server.Options
// OnEvent): it counts publishes per channel and forgets the activity of
// sessions that ended. It does not block.
func (r *Recorder) OnEvent(ev server.Event) {
	switch ev.Kind {
	case server.EventPublish:
		r.published(ev.Channel, time.Now())
	case server.EventClientDisconnect:
		r.activityShard(ev.ClientID).delete(ev.ClientID)
	}
}

func (r *Recorder) published(channel string, now time.Time) {
	v, ok := r.channels.Load(channel)
	if !ok {
		if r.nchannels.Load() >= int64(r.opts.MaxChannels) {
			return
		}
		var loaded bool
		v, loaded = r.channels.LoadOrStore(channel, &channelStat{})
		if !loaded {
			r.nchannels.Add(1)
		}
	}
	v.(*channelStat).add(now)
}

// Channel returns the activity seen on channel.
func (r *Recorder) Channel(channel string, now time.Time) (ChannelActivity, bool) {
	v, ok := r.channels.Load(channel)
	if !ok {
		return ChannelActivity{}, false
	}
	return v.(*channelStat).read(now), true
}

// Channels returns the activity of every tracked channel.
func (r *Recorder) Channels(now time.Time) map[string]ChannelActivity {
	out := map[string]ChannelActivity{}
	r.channels.Range(func(k, v any) bool {
		out[k.(string)] = v.(*channelStat).read(now)
		return true
	})
	return out
}

// activity is what the Authorize wrapper saw of one session. It is kept
// for every session, so it is small and stored by value: the transport is
// an index into transportNames.
type activity struct {
	transport uint8
	last      int64 // unix nanoseconds
}

// transportNames are the names activity.transport indexes; 0 is unknown.
var transportNames = []string{"", protocol.LongPolling, protocol.CallbackPolling, protocol.WebSocket, "local"}

type activityShard struct {
	mu sync.Mutex
	m  map[string]activity
}

func (sh *activityShard) delete(id string) {
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

var activitySeed = maphash.MakeSeed()

func (r *Recorder) activityShard(id string) *activityShard {
	return &r.activity[maphash.String(activitySeed, id)%uint64(len(r.activity))]
}

// Activity is a session's transport and the time of its last message, as
// seen on this node.
type Activity struct {
	Transport string
	LastSeen  time.Time
}

// Activity returns what is known of session id, or ok=false.
func (r *Recorder) Activity(id string) (Activity, bool) {
	sh := r.activityShard(id)
	sh.mu.Lock()
	a, ok := sh.m[id]
	sh.mu.Unlock()
	if !ok {
		return Activity{}, false
	}
	return Activity{Transport: transportNames[a.transport], LastSeen: time.Unix(0, a.last)}, true
}

// AuthorizeFunc is the type of server.Options.Authorize.
type AuthorizeFunc func(ctx context.Context, c *server.Client, m *protocol.Message) error

// Authorize wraps the server's authorization hook (next may be nil): it
// notes the transport and time of every message a session sends, then
// lets next decide. Local clients bypass Authorize, so they are not seen.
func (r *Recorder) Authorize(next AuthorizeFunc) AuthorizeFunc {
	return func(ctx context.Context, c *server.Client, m *protocol.Message) error {
		if id := c.ID(); id != "" {
			r.seen(id, c.Transport(), time.Now())
		}
		if next == nil {
			return nil
		}
		return next(ctx, c, m)
	}
}

func (r *Recorder) seen(id, transport string, now time.Time) {
	a := activity{last: now.UnixNano()}
	if i := slices.Index(transportNames, transport); i > 0 {
		a.transport = uint8(i)
	}
	sh := r.activityShard(id)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[string]activity)
	}
	sh.m[id] = a
	sh.mu.Unlock()
}

// Prune forgets channels idle for ChannelIdle and session activity older
// than StaleAfter (sessions that ended without an event this node saw).
// The Recorder calls it every minute.
func (r *Recorder) Prune(now time.Time) {
	r.channels.Range(func(k, v any) bool {
		c := v.(*channelStat)
		c.mu.Lock()
		idle := now.Sub(c.last) > r.opts.ChannelIdle
		c.mu.Unlock()
		if idle {
			if _, loaded := r.channels.LoadAndDelete(k); loaded {
				r.nchannels.Add(-1)
			}
		}
		return true
	})
	cut := now.Add(-r.opts.StaleAfter).UnixNano()
	for i := range r.activity {
		sh := &r.activity[i]
		sh.mu.Lock()
		for id, a := range sh.m {
			if a.last < cut {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	}
}
