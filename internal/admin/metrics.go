package admin

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// MetricsOptions configures Metrics.
type MetricsOptions struct {
	// Recorder gives the server (it must be attached) and the snapshot for
	// sessions per transport and channels.
	Recorder *Recorder
	// FailedLogins returns the number of failed logins (the
	// Authenticator's Failed counter); nil reports none.
	FailedLogins func() int64
	// Version and Engine label bayeux_build_info.
	Version, Engine string
	// Log receives errors while serving metrics; nil discards them.
	Log *slog.Logger
}

// Metrics returns the /metrics handler: the server's figures in the
// Prometheus text format, with the Go runtime and process collectors, from
// a registry of its own (nothing is registered globally).
func Metrics(o MetricsOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(o),
	)
	opts := promhttp.HandlerOpts{Registry: reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second}
	if o.Log != nil {
		opts.ErrorLog = slog.NewLogLogger(o.Log.Handler(), slog.LevelError)
	}
	return promhttp.HandlerFor(reg, opts)
}

// MetricNames are the bayeux_* metrics Metrics exposes (besides the go_*
// and process_* ones).
var MetricNames = []string{
	"bayeux_build_info", "bayeux_start_time_seconds",
	"bayeux_sessions", "bayeux_sessions_by_transport", "bayeux_held_connects", "bayeux_parked_connections", "bayeux_channels",
	"bayeux_queued_messages",
	"bayeux_handshakes_total", "bayeux_messages_in_total", "bayeux_messages_out_total",
	"bayeux_published_total", "bayeux_errors_total", "bayeux_dropped_messages_total",
	"bayeux_requests_denied_total", "bayeux_failed_logins_total", "bayeux_refused_total",
}

type collector struct {
	o MetricsOptions

	buildInfo, startTime                            *prometheus.Desc
	sessions, byTransport, held, parked, channels   *prometheus.Desc
	queued                                          *prometheus.Desc
	handshakes, in, out, published, errors, dropped *prometheus.Desc
	denied, failedLogins, refused                   *prometheus.Desc
}

func newCollector(o MetricsOptions) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		o:            o,
		buildInfo:    d("bayeux_build_info", "Always 1; labels give the version and the engine.", "version", "engine"),
		startTime:    d("bayeux_start_time_seconds", "When the server started, in seconds since the Unix epoch."),
		sessions:     d("bayeux_sessions", "Bayeux sessions stored by the engine (all nodes on a shared engine)."),
		byTransport:  d("bayeux_sessions_by_transport", "Sessions by the transport of their last message on this node (unknown: none seen here yet; local: in-process clients).", "transport"),
		held:         d("bayeux_held_connects", "/meta/connect requests held open on this node."),
		parked:       d("bayeux_parked_connections", "Connections waiting without a goroutine on this node: parked long-polls and idle WebSockets."),
		channels:     d("bayeux_channels", "Channels and patterns with at least one subscriber."),
		queued:       d("bayeux_queued_messages", "Messages waiting in session queues (only for engines that tell)."),
		handshakes:   d("bayeux_handshakes_total", "Successful handshakes on this node."),
		in:           d("bayeux_messages_in_total", "Bayeux messages received on this node."),
		out:          d("bayeux_messages_out_total", "Deliveries queued for subscribers by publishes on this node."),
		published:    d("bayeux_published_total", "Messages published on this node."),
		errors:       d("bayeux_errors_total", "Messages answered with successful:false on this node."),
		dropped:      d("bayeux_dropped_messages_total", "Messages dropped from full session queues (reported by this node's connects)."),
		denied:       d("bayeux_requests_denied_total", "HTTP requests refused by limits on this node."),
		failedLogins: d("bayeux_failed_logins_total", "Failed logins (wrong credentials or rate-limited)."),
		refused:      d("bayeux_refused_total", "Requests and messages refused by a limit on this node, by reason.", "reason"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buildInfo, c.startTime, c.sessions, c.byTransport, c.held, c.parked, c.channels,
		c.queued, c.handshakes, c.in, c.out, c.published, c.errors, c.dropped, c.denied, c.failedLogins, c.refused} {
		ch <- d
	}
}

// transports are always reported, so that their series do not vanish at
// zero.
var transports = []string{protocol.WebSocket, protocol.LongPolling, protocol.CallbackPolling, TransportLocal, TransportUnknown}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.o.Recorder
	s := r.Server()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.buildInfo, 1, c.o.Version, c.o.Engine)
	gauge(c.startTime, float64(r.Started().UnixNano())/1e9)
	var failed int64
	if c.o.FailedLogins != nil {
		failed = c.o.FailedLogins()
	}
	counter(c.failedLogins, failed)
	if s == nil {
		return
	}
	st := s.Stats()
	gauge(c.held, float64(st.HeldConnects.Load()))
	gauge(c.parked, float64(st.Parked.Load()))
	counter(c.handshakes, st.Handshakes.Load())
	counter(c.in, st.MessagesIn.Load())
	counter(c.out, st.MessagesOut.Load())
	counter(c.published, st.Published.Load())
	counter(c.errors, st.Errors.Load())
	counter(c.dropped, st.Dropped.Load())
	counter(c.denied, st.RequestsDenied.Load())
	for _, reason := range st.Refused.Reasons() {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused.Load(reason)), reason)
	}
	if n, ok := Pending(s.Engine()); ok {
		gauge(c.queued, float64(n))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l, ok := s.Engine().(server.SessionLister); ok {
		if n, err := l.SessionCount(ctx); err == nil {
			gauge(c.sessions, float64(n))
		} else {
			ch <- prometheus.NewInvalidMetric(c.sessions, err)
		}
	}
	snap, err := r.Snapshot(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.channels, err)
		return
	}
	gauge(c.channels, float64(snap.Subscribed))
	for _, t := range transports {
		gauge(c.byTransport, float64(snap.ByTransport[t]), t)
	}
	for t, n := range snap.ByTransport {
		if !isStandardTransport(t) {
			gauge(c.byTransport, float64(n), t)
		}
	}
}

func isStandardTransport(t string) bool {
	for _, s := range transports {
		if s == t {
			return true
		}
	}
	return false
}
