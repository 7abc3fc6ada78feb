package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// run is the state of one benchmark run.
type run struct {
	cfg Config
	tr  Transport

	start time.Time // monotonic origin
	base  int64     // unix ns at start

	channels []string
	chanIdx  map[string]uint32
	members  []int64 // subscribers per channel
	pad      []byte
	clients  []*client

	// measured window, as scheduled unix ns; set when publishing starts,
	// while the connect loops already run
	win atomic.Pointer[window]

	hist    Histogram // delivery latency from the scheduled time
	sendLag Histogram // from the scheduled time to the publish request going out
	pubRTT  Histogram // publish request round trips

	sent, sentWin, pubFailed, pubRequests atomic.Int64
	delivered, deliveredWin, dup, reord   atomic.Int64
	foreign                               atomic.Int64
	inflight                              atomic.Int64 // ticks scheduled, not yet answered
	expected                              atomic.Int64 // deliveries expected from answered publishes
	connects, rehandshakes, handshakes    atomic.Int64

	errMu   sync.Mutex
	errs    map[string]int64
	samples map[string]string
}

// window is the measured window as scheduled unix ns, [from, to).
type window struct{ from, to int64 }

func (w *window) in(ts int64) bool { return w != nil && ts >= w.from && ts < w.to }

// window returns the measured window (nil before publishing starts).
func (r *run) window() *window { return r.win.Load() }

// now returns the current time as unix ns, from the monotonic clock.
func (r *run) now() int64 { return r.base + int64(time.Since(r.start)) }

func (r *run) countErr(err error) {
	var re *errRefused
	if errors.As(err, &re) {
		kind := "bayeux_" + re.reply.Error
		if re.reply.Error == "" {
			kind = "bayeux_unsuccessful"
		}
		r.countKind(kind, re.Error())
		return
	}
	r.countKind(errorKind(err), err.Error())
}

func (r *run) countKind(kind, sample string) { r.countN(kind, sample, 1) }

func (r *run) countN(kind, sample string, n int64) {
	r.errMu.Lock()
	r.errs[kind] += n
	if _, ok := r.samples[kind]; !ok && sample != "" {
		r.samples[kind] = sample
	}
	r.errMu.Unlock()
}

func (r *run) errorCount() int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	var n int64
	for _, v := range r.errs {
		n += v
	}
	return n
}

// lookup returns the index of a channel given as a raw JSON string.
func (r *run) lookup(raw []byte) (uint32, bool) {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		i, ok := r.chanIdx[string(raw[1:len(raw)-1])]
		return i, ok
	}
	s, ok := unquote(raw)
	if !ok {
		return 0, false
	}
	i, ok := r.chanIdx[s]
	return i, ok
}

// handleBatch reads one reply body received at `at` (unix ns): deliveries
// are checked against c's streams and timed; replies are returned.
func (r *run) handleBatch(c *client, body []byte, at int64) ([]*protocol.Message, error) {
	var replies []*protocol.Message
	err := r.scanBatch(c, body, at, func(elem []byte) error {
		m, err := decodeReply(elem)
		if err != nil {
			return errSyntax
		}
		replies = append(replies, m)
		return nil
	})
	return replies, err
}

// pushBatch is the Push of client c: it counts the deliveries of body,
// received at `at`, and returns its replies as a JSON array (nil if none).
func (r *run) pushBatch(c *client, body []byte, at time.Time) []byte {
	var replies []byte
	err := r.scanBatch(c, body, r.base+int64(at.Sub(r.start)), func(elem []byte) error {
		if replies == nil {
			replies = append(make([]byte, 0, len(elem)+2), '[')
		} else {
			replies = append(replies, ',')
		}
		replies = append(replies, elem...)
		return nil
	})
	if err != nil {
		r.countErr(err)
	}
	if replies != nil {
		replies = append(replies, ']')
	}
	return replies
}

// scanBatch reads one reply body received at `at` (unix ns): deliveries
// are checked against c's streams and timed; replies (and other meta
// messages) go to reply.
func (r *run) scanBatch(c *client, body []byte, at int64, reply func(elem []byte) error) error {
	var delivered, inWin, dup, reord, foreign int64
	win := r.window()
	c.mu.Lock()
	err := eachMessage(body, func(d delivery, elem []byte) error {
		if d.reply || d.meta {
			return reply(elem)
		}
		ch, ok := r.lookup(d.channel)
		if !ok || !d.hasSeq || d.pub < 0 || d.pub >= int64(len(r.clients)) || d.seq < 0 || d.seq > 1<<32-1 {
			foreign++
			return nil
		}
		switch c.tracker.Add(uint32(d.pub), ch, uint32(d.seq)) {
		case duplicate:
			dup++
			return nil
		case reordered:
			reord++
		}
		delivered++
		if win.in(d.ts) {
			inWin++
			r.hist.Record(time.Duration(at - d.ts))
		}
		return nil
	})
	c.mu.Unlock()
	if delivered > 0 {
		r.delivered.Add(delivered)
	}
	if inWin > 0 {
		r.deliveredWin.Add(inWin)
	}
	if dup > 0 {
		r.dup.Add(dup)
	}
	if reord > 0 {
		r.reord.Add(reord)
	}
	if foreign > 0 {
		r.foreign.Add(foreign)
	}
	return err
}

// Run runs one benchmark and returns its results. It always ends by
// itself: setup, warmup, the measured window, then at most cfg.Timeout of
// draining and a bounded cleanup.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &run{
		cfg:     cfg,
		start:   time.Now(),
		errs:    make(map[string]int64),
		samples: make(map[string]string),
		chanIdx: make(map[string]uint32),
	}
	r.base = r.start.UnixNano()
	r.pad = bytes.Repeat([]byte{'x'}, cfg.Size)
	r.tr = cfg.Transport
	if r.tr == nil {
		var trs []Transport
		for _, u := range cfg.urls() {
			var tr Transport
			if cfg.TransportType == TransportWebSocket {
				tr = NewWebSocket(u)
			} else if cfg.HTTP == "std" {
				tr = NewLongPolling(u, cfg.Clients+cfg.Subscribers+cfg.Workers)
			} else {
				raw, err := NewRawLongPolling(u)
				if err != nil {
					return nil, err
				}
				tr = raw
			}
			trs = append(trs, tr)
		}
		r.tr = trs[0]
		if len(trs) > 1 {
			r.tr = &spread{trs: trs}
		}
		defer r.tr.Close()
	}
	res := &Result{Scenario: cfg.Scenario, URL: cfg.URL, Transport: r.tr.ConnectionType(), Config: configJSON(cfg)}
	watch := newWatcher(cfg)
	watch.baseline()

	if cfg.Scenario == Handshake {
		r.runHandshakes(ctx, watch, res)
		return res, nil
	}
	if err := r.build(); err != nil {
		return nil, err
	}
	clientsCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var wg sync.WaitGroup
	setupBegan := time.Now()
	ready := r.setupAll(clientsCtx, &wg)
	res.Clients = len(ready)
	res.SetupS = time.Since(setupBegan).Seconds()
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bayeux-bench: %d of %d clients handshook, subscribed and connected in %.1fs\n",
			len(ready), len(r.clients), res.SetupS)
	}
	if len(ready) == 0 {
		stopClients()
		wg.Wait()
		r.finish(res, watch, true)
		return res, fmt.Errorf("no client could handshake and subscribe (%s)", r.errSummary())
	}
	if ctx.Err() != nil {
		stopClients()
		wg.Wait()
		return nil, ctx.Err()
	}

	progress := r.startProgress(ctx)
	defer progress()

	t0 := time.Now()
	ts0 := r.base + int64(t0.Sub(r.start))
	from := ts0 + int64(cfg.Warmup)
	r.win.Store(&window{from: from, to: from + int64(cfg.Duration)})

	if cfg.Scenario == Idle {
		watch.afterBurst()
		if sleep(ctx, cfg.Warmup) {
			watch.begin()
			sleep(ctx, cfg.Duration)
			watch.end()
		}
	} else {
		pubs := r.publishers(ready)
		for _, c := range pubs {
			wg.Go(func() { c.publishLoop(clientsCtx) })
		}
		r.schedule(ctx, pubs, t0, watch)
		r.drain(ctx)
	}
	stopClients()
	quiet := waitTimeout(&wg, 5*time.Second)
	r.disconnectAll(ready)
	for _, c := range r.clients {
		if c.conn != nil {
			_ = c.conn.Close()
		}
	}
	r.finish(res, watch, quiet)
	return res, nil
}

// build makes the channels and the clients of the scenario.
func (r *run) build() error {
	cfg := &r.cfg
	addChan := func(name string) uint32 {
		if err := protocol.ValidateChannel(name); err != nil {
			panic(err) // prefix is validated below
		}
		i := uint32(len(r.channels))
		r.channels = append(r.channels, name)
		r.chanIdx[name] = i
		return i
	}
	if err := protocol.ValidateChannel(cfg.ChannelPrefix + "/x"); err != nil || protocol.IsMeta(cfg.ChannelPrefix) || protocol.IsService(cfg.ChannelPrefix) {
		return fmt.Errorf("-channel-prefix %q is not usable for broadcast channels", cfg.ChannelPrefix)
	}
	newClient := func(i int) *client {
		return &client{r: r, idx: uint32(i), wake: make(chan struct{}, 1), streams: make(map[uint32]*pubStream), connected: make(chan struct{})}
	}
	switch cfg.Scenario {
	case Fanout:
		ch := addChan(cfg.ChannelPrefix + "/fanout")
		for i := range cfg.Subscribers {
			c := newClient(i)
			c.subs = []uint32{ch}
			r.clients = append(r.clients, c)
		}
		p := newClient(cfg.Subscribers)
		p.pubChans = []uint32{ch}
		r.clients = append(r.clients, p)
	case Rooms:
		for k := range cfg.Rooms {
			addChan(cfg.ChannelPrefix + "/rooms/" + strconv.Itoa(k))
		}
		for i := range cfg.Clients {
			c := newClient(i)
			for k := range cfg.RoomsPerClient {
				c.subs = append(c.subs, uint32((i*cfg.RoomsPerClient+k)%cfg.Rooms))
			}
			c.pubChans = c.subs
			r.clients = append(r.clients, c)
		}
	case Idle:
		ch := addChan(cfg.ChannelPrefix + "/idle")
		for i := range cfg.Clients {
			c := newClient(i)
			c.subs = []uint32{ch}
			r.clients = append(r.clients, c)
		}
	}
	r.members = make([]int64, len(r.channels))
	return nil
}

// setupAll handshakes and subscribes every client with cfg.Workers at a
// time, starts the connect loops of those that made it, and waits (at
// most cfg.Timeout) for their first connect replies. It returns the
// clients that are ready.
func (r *run) setupAll(ctx context.Context, wg *sync.WaitGroup) []*client {
	cfg := &r.cfg
	ok := make([]bool, len(r.clients))
	jobs := make(chan int)
	var sw sync.WaitGroup
	for range min(cfg.Workers, len(r.clients)) {
		sw.Go(func() {
			for i := range jobs {
				c := r.clients[i]
				conn, err := r.tr.Dial(func(batch []byte, at time.Time) []byte { return r.pushBatch(c, batch, at) })
				if err != nil {
					r.countErr(err)
					continue
				}
				c.conn = conn
				if err := c.setup(ctx); err != nil {
					if ctx.Err() == nil {
						r.countErr(err)
					}
					continue
				}
				r.handshakes.Add(1)
				ok[i] = true
				wg.Go(func() { c.connectLoop(ctx) })
			}
		})
	}
feed:
	for i := range r.clients {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	sw.Wait()
	var ready []*client
	deadline := time.NewTimer(cfg.Timeout)
	defer deadline.Stop()
	for i, c := range r.clients {
		if !ok[i] {
			continue
		}
		select {
		case <-c.connected:
		case <-deadline.C:
		case <-ctx.Done():
		}
		select {
		case <-c.connected:
			ready = append(ready, c)
			for _, ch := range c.subs {
				r.members[ch]++
			}
		default:
			r.countKind("setup_no_connect", "no successful /meta/connect within -timeout after subscribing")
		}
	}
	return ready
}

// publishers returns the clients that publish.
func (r *run) publishers(ready []*client) []*client {
	var pubs []*client
	for _, c := range ready {
		if len(c.pubChans) > 0 {
			pubs = append(pubs, c)
		}
	}
	return pubs
}

// schedule emits ticks on a fixed timeline from t0: tick i at
// t0 + i*batch/rate, to publisher i mod len(pubs), stamped with that time
// whenever it is actually sent (open loop: being late does not move the
// schedule).
func (r *run) schedule(ctx context.Context, pubs []*client, t0 time.Time, watch *watcher) {
	cfg := &r.cfg
	if len(pubs) == 0 {
		return
	}
	every := time.Duration(float64(time.Second) * float64(cfg.Batch) / cfg.Rate)
	if every <= 0 {
		every = 1
	}
	total := cfg.Warmup + cfg.Duration
	ts0 := r.base + int64(t0.Sub(r.start))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	began := false
	for i := int64(0); ; i++ {
		off := time.Duration(i) * every
		if off >= total {
			break
		}
		if !began && off >= cfg.Warmup {
			watch.begin()
			began = true
		}
		if wait := time.Until(t0.Add(off)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		r.inflight.Add(1)
		pubs[i%int64(len(pubs))].enqueue(ts0 + int64(off))
	}
	if !began {
		watch.begin()
	}
	if wait := time.Until(t0.Add(total)); wait > 0 {
		sleep(ctx, wait)
	}
	watch.end()
}

// drain waits, at most cfg.Timeout, for the publishes to be answered and
// every expected delivery to arrive.
func (r *run) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.inflight.Load() == 0 && r.delivered.Load() >= r.expectedNow() {
			return
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

// expectedNow is the number of deliveries expected from the publishes
// answered so far.
func (r *run) expectedNow() int64 { return r.expected.Load() }

// expectedExact is the exact expected count; it needs the publish loops
// to be quiet (it is called when inflight is 0, or after they stopped).
func (r *run) expectedExact() int64 {
	var total int64
	for _, c := range r.clients {
		for ch, ps := range c.streams {
			total += int64(ps.sent-ps.failed) * r.members[ch]
		}
	}
	return total
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// disconnectAll ends the sessions, so that the next run starts against a
// clean server (bounded: at most 10 s).
func (r *run) disconnectAll(ready []*client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := make(chan *client)
	var wg sync.WaitGroup
	for range min(r.cfg.Workers, len(ready)) {
		wg.Go(func() {
			for c := range jobs {
				if ctx.Err() == nil {
					_ = c.disconnect(ctx)
				}
			}
		})
	}
	for _, c := range ready {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
}

// startProgress prints a line every 5 s on cfg.Progress; the returned
// function stops it.
func (r *run) startProgress(ctx context.Context) func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		began := time.Now()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			fmt.Fprintf(r.cfg.Progress, "bayeux-bench: %s %3.0fs sent=%d delivered=%d dup=%d reordered=%d errors=%d p99=%.1fms connects=%d\n",
				r.cfg.Scenario, time.Since(began).Seconds(), r.sent.Load(), r.delivered.Load(), r.dup.Load(), r.reord.Load(),
				r.errorCount(), ms(r.hist.Percentile(0.99)), r.connects.Load())
		}
	}()
	return func() { cancel(); <-done }
}

func (r *run) errSummary() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	var parts []string
	for k, v := range r.errs {
		s := fmt.Sprintf("%s=%d", k, v)
		if ex := r.samples[k]; ex != "" {
			s += " (" + ex + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no errors recorded"
	}
	return strings.Join(parts, ", ")
}

// runHandshakes is the handshake scenario: cfg.Workers loops of
// handshake + disconnect, each on a fresh connection (new cookies), for
// warmup + duration; only the window counts.
func (r *run) runHandshakes(ctx context.Context, watch *watcher, res *Result) {
	cfg := &r.cfg
	t0 := time.Now()
	winFrom := t0.Add(cfg.Warmup)
	winTo := winFrom.Add(cfg.Duration)
	// Requests are not cut at winTo (that would count as timeouts): the
	// loops stop starting new ones, and what ends after winTo is not counted.
	progress := r.startProgress(ctx)
	defer progress()
	var wg sync.WaitGroup
	var okWin atomic.Int64
	for range cfg.Workers {
		wg.Go(func() {
			var conn Conn
			defer func() {
				if conn != nil {
					_ = conn.Close()
				}
			}()
			for ctx.Err() == nil && time.Now().Before(winTo) {
				// Every handshake comes from a new browser: new cookies. A
				// transport that can forget its cookies keeps its TCP
				// connection (no port exhaustion at thousands per second).
				if rs, ok := conn.(interface{ ResetCookies() }); ok {
					rs.ResetCookies()
				} else {
					if conn != nil {
						_ = conn.Close()
					}
					var err error
					if conn, err = r.tr.Dial(nil); err != nil {
						r.countErr(err)
						return
					}
				}
				c := &client{r: r, conn: conn, connected: make(chan struct{})}
				began := time.Now()
				err := c.handshake(ctx)
				took := time.Since(began)
				if err != nil {
					if ctx.Err() == nil {
						r.countErr(err)
						sleep(ctx, 10*time.Millisecond)
					}
					continue
				}
				r.handshakes.Add(1)
				if began.After(winFrom) && time.Now().Before(winTo) {
					okWin.Add(1)
					r.hist.Record(took)
				}
				dctx, dcancel := context.WithTimeout(ctx, cfg.Timeout)
				if err := c.disconnect(dctx); err != nil && ctx.Err() == nil {
					r.countErr(err)
				}
				dcancel()
			}
		})
	}
	if sleep(ctx, cfg.Warmup) {
		watch.begin()
		sleep(ctx, time.Until(winTo))
		watch.end()
	}
	wg.Wait()
	res.HandshakesPerS = float64(okWin.Load()) / cfg.Duration.Seconds()
	r.finish(res, watch, true)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// spread dials its connections on several transports in turn: clients
// spread over the nodes of a cluster.
type spread struct {
	trs  []Transport
	next atomic.Int64
}

func (s *spread) ConnectionType() string { return s.trs[0].ConnectionType() }

func (s *spread) Dial(push Push) (Conn, error) {
	return s.trs[int(s.next.Add(1)-1)%len(s.trs)].Dial(push)
}

func (s *spread) Close() {
	for _, t := range s.trs {
		t.Close()
	}
}

// watcher measures the server processes (CPU, RSS), the Redis processes
// (CPU) and this process (CPU) over the measured window.
type watcher struct {
	pids             []int // the server's, first cfg.PID
	redis            []int
	base             int64 // RSS before the run, KiB
	burst            int64 // RSS right after the clients came, KiB
	began, ended     time.Time
	srvCPU0, srvCPU1 time.Duration
	rdsCPU0, rdsCPU1 time.Duration
	selfCPU0, self1  time.Duration
	sys0, sys1       time.Duration // all processes (0 when /proc/stat is unreadable)
	rss              rssSampler
	stop             chan struct{}
	done             chan struct{}
	err              error
}

func newWatcher(cfg Config) *watcher {
	w := &watcher{redis: cfg.RedisPIDs}
	if cfg.PID > 0 {
		w.pids = append([]int{cfg.PID}, cfg.PIDs...)
	}
	return w
}

// cpu sums the CPU time of processes.
func cpu(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		d, err := ProcCPU(pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// rss sums the resident memory of processes, in KiB.
func rss(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		kb, err := ProcRSS(pid)
		if err != nil {
			return 0, err
		}
		total += kb
	}
	return total, nil
}

func (w *watcher) baseline() {
	if len(w.pids) > 0 {
		w.base, w.err = rss(w.pids)
	}
}

// afterBurst samples the RSS right after the clients came.
func (w *watcher) afterBurst() {
	if len(w.pids) > 0 && w.err == nil {
		w.burst, _ = rss(w.pids)
	}
}

func (w *watcher) begin() {
	if !w.began.IsZero() {
		return
	}
	w.began = time.Now()
	w.selfCPU0 = selfCPU()
	w.sys0, _ = systemBusy()
	if len(w.redis) > 0 {
		w.rdsCPU0, _ = cpu(w.redis)
	}
	if len(w.pids) == 0 || w.err != nil {
		return
	}
	w.srvCPU0, w.err = cpu(w.pids)
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := rss(w.pids); err == nil {
				w.rss.add(kb)
			}
			select {
			case <-t.C:
			case <-w.stop:
				return
			}
		}
	}()
}

func (w *watcher) end() {
	if w.began.IsZero() || !w.ended.IsZero() {
		return
	}
	w.ended = time.Now()
	w.self1 = selfCPU()
	w.sys1, _ = systemBusy()
	if len(w.redis) > 0 {
		w.rdsCPU1, _ = cpu(w.redis)
	}
	if w.stop != nil {
		close(w.stop)
		<-w.done
		if kb, err := rss(w.pids); err == nil {
			w.rss.add(kb)
		}
		var err error
		if w.srvCPU1, err = cpu(w.pids); err != nil && w.err == nil {
			w.err = err
		}
	}
}

// redisCPUPct is the Redis processes' CPU during the window, in percent
// of one core.
func (w *watcher) redisCPUPct() (float64, bool) {
	d := w.window()
	if len(w.redis) == 0 || d <= 0 || w.rdsCPU1 == 0 {
		return 0, false
	}
	return 100 * float64(w.rdsCPU1-w.rdsCPU0) / float64(d), true
}

// window returns the length of the measured window.
func (w *watcher) window() time.Duration {
	if w.began.IsZero() || w.ended.IsZero() {
		return 0
	}
	return w.ended.Sub(w.began)
}

// benchCPUPct reports this process's CPU during the window, in percent of
// one core.
func (w *watcher) benchCPUPct() float64 {
	d := w.window()
	if d <= 0 {
		return 0
	}
	return 100 * float64(w.self1-w.selfCPU0) / float64(d)
}

// otherCPUPct reports the CPU used by every process but this one and the
// server during the window, in percent of one core: other load on the
// machine skews the numbers.
func (w *watcher) otherCPUPct() (float64, bool) {
	d := w.window()
	if d <= 0 || w.sys0 == 0 || w.sys1 == 0 {
		return 0, false
	}
	other := w.sys1 - w.sys0 - (w.self1 - w.selfCPU0)
	if srv, ok := w.serverCPUPct(); ok {
		other -= time.Duration(srv / 100 * float64(d))
	}
	if rds, ok := w.redisCPUPct(); ok {
		other -= time.Duration(rds / 100 * float64(d))
	}
	return max(0, 100*float64(other)/float64(d)), true
}

func (w *watcher) serverCPUPct() (float64, bool) {
	d := w.window()
	if len(w.pids) == 0 || w.err != nil || d <= 0 || w.stop == nil {
		return 0, false
	}
	return 100 * float64(w.srvCPU1-w.srvCPU0) / float64(d), true
}
