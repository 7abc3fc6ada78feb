package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Result is the outcome of a run; with -json it is printed as one line.
type Result struct {
	Scenario  string     `json:"scenario"`
	URL       string     `json:"url"`
	Transport string     `json:"transport"`
	Config    ConfigJSON `json:"config"`
	// Clients is the number of simulated clients that handshook,
	// subscribed and connected (fanout: subscribers + the publisher).
	Clients int `json:"clients"`
	// SetupS is how long the clients took to handshake, subscribe and
	// connect (cfg.Workers at a time).
	SetupS float64 `json:"setup_s"`
	// WindowS is the measured window actually observed, in seconds.
	WindowS float64 `json:"window_s"`

	// Exact counts over the whole run (warmup included): messages sent,
	// distinct deliveries, deliveries expected (accepted messages times
	// the subscribers of their channel), lost (expected but never
	// arrived), duplicated, and reordered (arrived after a later message
	// of the same publisher on the same channel).
	Sent       int64 `json:"sent"`
	Refused    int64 `json:"refused"`
	Delivered  int64 `json:"delivered"`
	Expected   int64 `json:"expected"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Reordered  int64 `json:"reordered"`
	// Foreign counts deliveries the bench did not publish (other
	// channels, other tools), ignored.
	Foreign int64 `json:"foreign"`

	// Errors counts failures by kind: http_NNN, timeout, net, bad_reply,
	// bayeux_<error string>, rehandshake (a 402 / reconnect:handshake that
	// made the client handshake and subscribe again), reconnect_none,
	// setup_no_connect, server_dropped (messages a server said it dropped
	// from a full session queue, ext.dropped). ErrorSamples has one message for each kind.
	Errors       map[string]int64  `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`

	// LatencyMs is measured from the scheduled send time to receipt, for
	// messages scheduled inside the window (handshake scenario: the
	// handshake round trip).
	LatencyMs Latency `json:"latency_ms"`
	// SendLagMs is how late publish requests went out against their
	// schedule (generator lag plus waiting for the previous publish of
	// the same client); PublishRTTMs is the publish round trip. Both
	// help to tell where the latency comes from.
	SendLagMs    *Latency `json:"send_lag_ms,omitempty"`
	PublishRTTMs *Latency `json:"publish_rtt_ms,omitempty"`

	MsgsPerS       float64 `json:"msgs_per_s"`       // messages scheduled in the window / window
	DeliveriesPerS float64 `json:"deliveries_per_s"` // their deliveries / window
	HandshakesPerS float64 `json:"handshakes_per_s"` // handshake scenario
	Handshakes     int64   `json:"handshakes"`
	Connects       int64   `json:"connects"`     // /meta/connect replies received
	PubRequests    int64   `json:"pub_requests"` // publish HTTP requests

	// ServerCPUPct is the server's CPU during the window, in percent of
	// one core (null without -pid).
	ServerCPUPct *float64  `json:"server_cpu_pct"`
	ServerRSSKB  *RSSStats `json:"server_rss_kb"`
	// BenchCPUPct is this generator's CPU during the window, in percent
	// of one core; near 100 × gomaxprocs the generator was the bottleneck.
	BenchCPUPct float64 `json:"bench_cpu_pct"`
	// RedisCPUPct is the redis-server processes' CPU during the window
	// (-redis-pid), in percent of one core; RedisCPUUsPerMsg the same per
	// message published in the window, in microseconds.
	RedisCPUPct      *float64 `json:"redis_cpu_pct,omitempty"`
	RedisCPUUsPerMsg *float64 `json:"redis_cpu_us_per_msg,omitempty"`
	// OtherCPUPct is what the rest of the machine used meanwhile (all
	// processes but the generator and, with -pid and -redis-pid, the
	// server and Redis), in percent of one core, from /proc/stat; more
	// than a few percent means the numbers are disturbed.
	OtherCPUPct *float64 `json:"other_cpu_pct"`
	Warnings    []string `json:"warnings,omitempty"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// RSSStats is the server's resident memory in KiB.
type RSSStats struct {
	Baseline int64 `json:"baseline"` // before the clients came
	Max      int64 `json:"max"`      // during the window
	Avg      int64 `json:"avg"`      // during the window
	// Burst is the RSS right after the last client connected (before the
	// warmup), End the RSS at the end of the window (idle scenario).
	Burst int64 `json:"burst,omitempty"`
	End   int64 `json:"end,omitempty"`
	// PerClientKB is (avg - baseline) / clients (idle scenario);
	// PerClientBurstKB is (burst - baseline) / clients, right after the
	// clients came, and PerClientSteadyKB (end - baseline) / clients, once
	// the server had warmup + duration to settle.
	PerClientKB       *float64 `json:"per_client_kb,omitempty"`
	PerClientBurstKB  *float64 `json:"per_client_burst_kb,omitempty"`
	PerClientSteadyKB *float64 `json:"per_client_steady_kb,omitempty"`
}

// ConfigJSON is the configuration as reported.
type ConfigJSON struct {
	Clients        int     `json:"clients"`
	Subscribers    int     `json:"subscribers,omitempty"`
	Rooms          int     `json:"rooms,omitempty"`
	RoomsPerClient int     `json:"rooms_per_client,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	Batch          int     `json:"batch,omitempty"`
	Size           int     `json:"size"`
	DurationS      float64 `json:"duration_s"`
	WarmupS        float64 `json:"warmup_s"`
	TimeoutS       float64 `json:"timeout_s"`
	Workers        int     `json:"workers"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
	ChannelPrefix  string  `json:"channel_prefix"`
	HTTP           string  `json:"http"`
	PID            int     `json:"pid,omitempty"`
}

func configJSON(c Config) ConfigJSON {
	j := ConfigJSON{
		Clients: c.Clients, Size: c.Size,
		DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(), TimeoutS: c.Timeout.Seconds(),
		Workers: c.Workers, GOMAXPROCS: c.Procs, ChannelPrefix: c.ChannelPrefix, PID: c.PID, HTTP: c.HTTP,
	}
	switch c.Scenario {
	case Fanout:
		j.Clients = 0
		j.Subscribers = c.Subscribers
		j.Rate, j.Batch = c.Rate, c.Batch
	case Rooms:
		j.Rooms, j.RoomsPerClient = c.Rooms, c.RoomsPerClient
		j.Rate, j.Batch = c.Rate, c.Batch
	case Handshake:
		j.Clients = 0
	}
	return j
}

func latency(h *Histogram) Latency {
	return Latency{
		Count: h.Count(), Min: ms(h.Min()), Mean: ms(h.Mean()),
		P50: ms(h.Percentile(0.50)), P90: ms(h.Percentile(0.90)), P99: ms(h.Percentile(0.99)),
		P999: ms(h.Percentile(0.999)), Max: ms(h.Max()),
	}
}

// finish fills res from the run. quiet says that every client goroutine
// has stopped, so the per-stream counts can be read.
func (r *run) finish(res *Result, w *watcher, quiet bool) {
	w.end()
	res.LatencyMs = latency(&r.hist)
	if r.sendLag.Count() > 0 {
		l, rtt := latency(&r.sendLag), latency(&r.pubRTT)
		res.SendLagMs, res.PublishRTTMs = &l, &rtt
	}
	res.Sent = r.sent.Load()
	res.Refused = r.pubFailed.Load()
	res.Delivered = r.delivered.Load()
	res.Duplicated = r.dup.Load()
	res.Reordered = r.reord.Load()
	res.Foreign = r.foreign.Load()
	res.Handshakes = r.handshakes.Load()
	res.Connects = r.connects.Load()
	res.PubRequests = r.pubRequests.Load()
	if quiet {
		res.Expected = r.expectedExact()
		res.Lost = r.lostExact()
	} else {
		res.Expected = r.expected.Load()
		res.Lost = max(0, res.Expected-res.Delivered)
		res.Warnings = append(res.Warnings, "some clients did not stop in time; lost is estimated as expected - delivered")
	}
	r.errMu.Lock()
	res.Errors = maps.Clone(r.errs)
	if len(r.samples) > 0 {
		res.ErrorSamples = maps.Clone(r.samples)
	}
	r.errMu.Unlock()

	win := w.window()
	if win <= 0 {
		win = r.cfg.Duration
	}
	res.WindowS = win.Seconds()
	if r.cfg.Scenario == Fanout || r.cfg.Scenario == Rooms {
		res.MsgsPerS = float64(r.sentWin.Load()) / win.Seconds()
		res.DeliveriesPerS = float64(r.deliveredWin.Load()) / win.Seconds()
	}
	if pct, ok := w.serverCPUPct(); ok {
		res.ServerCPUPct = &pct
	}
	if pct, ok := w.redisCPUPct(); ok {
		res.RedisCPUPct = &pct
		if n := r.sentWin.Load(); n > 0 {
			us := pct / 100 * win.Seconds() * 1e6 / float64(n)
			res.RedisCPUUsPerMsg = &us
		}
	}
	if len(w.pids) > 0 && w.err == nil && w.rss.n > 0 {
		s := &RSSStats{Baseline: w.base, Max: w.rss.max, Avg: w.rss.avg(), Burst: w.burst, End: w.rss.last}
		if r.cfg.Scenario == Idle && res.Clients > 0 {
			perClient := func(kb int64) *float64 {
				per := float64(kb-s.Baseline) / float64(res.Clients)
				return &per
			}
			s.PerClientKB = perClient(s.Avg)
			s.PerClientSteadyKB = perClient(s.End)
			if s.Burst > 0 {
				s.PerClientBurstKB = perClient(s.Burst)
			}
		}
		res.ServerRSSKB = s
	}
	if len(w.pids) > 0 && w.err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("server process(es) %v: %v", w.pids, w.err))
	}
	res.BenchCPUPct = w.benchCPUPct()
	if limit := 90 * float64(r.cfg.Procs); res.BenchCPUPct > limit {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"the generator used %.0f%% CPU (over 90%% of its %d core(s)): it may have been the bottleneck", res.BenchCPUPct, r.cfg.Procs))
	}
	if pct, ok := w.otherCPUPct(); ok {
		res.OtherCPUPct = &pct
		if pct > 15 {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"other processes used %.0f%% CPU during the window: the machine was not quiet, the numbers are disturbed", pct))
		}
	}
	if res.Foreign > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d deliveries were not the bench's own (ignored)", res.Foreign))
	}
}

// lostExact sums, over every receiver and every stream it should have
// received, the messages that never arrived.
func (r *run) lostExact() int64 {
	pubsOf := make([][]*client, len(r.channels))
	for _, c := range r.clients {
		for ch := range c.streams {
			pubsOf[ch] = append(pubsOf[ch], c)
		}
	}
	var lost int64
	for _, c := range r.clients {
		select {
		case <-c.connected:
		default:
			continue // never ready: not counted as a member
		}
		c.mu.Lock()
		for _, ch := range c.subs {
			for _, p := range pubsOf[ch] {
				ps := p.streams[ch]
				lost += int64(c.tracker.Lost(p.idx, ch, ps.sent, ps.failed))
			}
		}
		c.mu.Unlock()
	}
	return lost
}

// WriteJSON writes res as one line.
func (res *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes a readable summary.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	c := res.Config
	fmt.Fprintf(&b, "bayeux-bench %s against %s (%s)\n", res.Scenario, res.URL, res.Transport)
	switch res.Scenario {
	case Fanout:
		fmt.Fprintf(&b, "  %d subscribers on one channel, %.0f msg/s in batches of %d, %d-char pad\n", c.Subscribers, c.Rate, c.Batch, c.Size)
	case Rooms:
		fmt.Fprintf(&b, "  %d clients in %d rooms (%d each), %.0f msg/s in total in batches of %d, %d-char pad\n", c.Clients, c.Rooms, c.RoomsPerClient, c.Rate, c.Batch, c.Size)
	case Idle:
		fmt.Fprintf(&b, "  %d idle %s clients\n", c.Clients, res.Transport)
	case Handshake:
		fmt.Fprintf(&b, "  %d workers handshaking and disconnecting\n", c.Workers)
	}
	fmt.Fprintf(&b, "  window %.1fs after %.1fs warmup", res.WindowS, c.WarmupS)
	if res.Scenario != Handshake {
		fmt.Fprintf(&b, "; %d clients ready", res.Clients)
	}
	b.WriteString("\n")
	if res.Scenario == Fanout || res.Scenario == Rooms {
		fmt.Fprintf(&b, "  sent %d (refused %d), delivered %d of %d expected: lost %d, duplicated %d, reordered %d\n",
			res.Sent, res.Refused, res.Delivered, res.Expected, res.Lost, res.Duplicated, res.Reordered)
		fmt.Fprintf(&b, "  throughput: %.0f msg/s in, %.0f deliveries/s out; %d publish requests, %d connects\n",
			res.MsgsPerS, res.DeliveriesPerS, res.PubRequests, res.Connects)
	}
	if res.Scenario == Handshake {
		fmt.Fprintf(&b, "  %.0f handshakes/s\n", res.HandshakesPerS)
	}
	if l := res.LatencyMs; l.Count > 0 {
		what := "latency from scheduled send"
		if res.Scenario == Handshake {
			what = "handshake round trip"
		}
		fmt.Fprintf(&b, "  %s (ms, %d samples): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (mean %.2f)\n",
			what, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	}
	if l := res.SendLagMs; l != nil {
		fmt.Fprintf(&b, "  publish send lag (ms): p50 %.2f  p99 %.2f  max %.2f; publish round trip (ms): p50 %.2f  p99 %.2f  max %.2f\n",
			l.P50, l.P99, l.Max, res.PublishRTTMs.P50, res.PublishRTTMs.P99, res.PublishRTTMs.Max)
	}
	if res.ServerCPUPct != nil {
		fmt.Fprintf(&b, "  server CPU %.1f%% of a core", *res.ServerCPUPct)
		if s := res.ServerRSSKB; s != nil {
			fmt.Fprintf(&b, ", RSS max %d KiB avg %d KiB (baseline %d KiB)", s.Max, s.Avg, s.Baseline)
			if s.PerClientKB != nil {
				fmt.Fprintf(&b, ", %.1f KiB per client", *s.PerClientKB)
			}
			if s.PerClientBurstKB != nil && s.PerClientSteadyKB != nil {
				fmt.Fprintf(&b, " (%.1f right after the clients came, %.1f at the end)", *s.PerClientBurstKB, *s.PerClientSteadyKB)
			}
		}
		b.WriteString("\n")
	}
	if res.RedisCPUPct != nil {
		fmt.Fprintf(&b, "  redis-server CPU %.1f%% of a core", *res.RedisCPUPct)
		if res.RedisCPUUsPerMsg != nil {
			fmt.Fprintf(&b, ", %.1f us per published message", *res.RedisCPUUsPerMsg)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  generator CPU %.1f%% of a core (gomaxprocs %d)", res.BenchCPUPct, c.GOMAXPROCS)
	if res.OtherCPUPct != nil {
		fmt.Fprintf(&b, "; other processes %.1f%%", *res.OtherCPUPct)
	}
	b.WriteString("\n")
	if len(res.Errors) > 0 {
		b.WriteString("  errors:")
		for _, k := range slices.Sorted(maps.Keys(res.Errors)) {
			fmt.Fprintf(&b, " %s=%d", k, res.Errors[k])
		}
		b.WriteString("\n")
		for _, k := range slices.Sorted(maps.Keys(res.ErrorSamples)) {
			fmt.Fprintf(&b, "    %s: %s\n", k, res.ErrorSamples[k])
		}
	}
	for _, s := range res.Warnings {
		fmt.Fprintf(&b, "  WARNING: %s\n", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
