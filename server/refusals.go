package server

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Reasons the server itself refuses for (others count their own).
const (
	// RefusedOrigin: a cross-origin request from an origin not allowed.
	RefusedOrigin = "origin"
	// RefusedIPRequests: more concurrent requests from one IP address
	// than Options.ClientMaxConnections.
	RefusedIPRequests = "ip_requests"
	// RefusedPublishSize: a published message over
	// Options.MaxPublishSize.
	RefusedPublishSize = "publish_size"
	// RefusedSessionsPerIP: a handshake from an address holding
	// Options.MaxSessionsPerIP sessions.
	RefusedSessionsPerIP = "sessions_per_ip"
	// RefusedHandshakeRate: a handshake from an address over
	// Options.HandshakeRate.
	RefusedHandshakeRate = "handshake_rate"
	// The engine's drops (EngineHooks.Dropped) count under their reasons:
	// DropQueueLength, DropQueueBytes, DropQueuedBytes (messages) and
	// DropHistory (channel histories).
	// RefusedIPConns: a connection beyond Options.MaxConnsPerIP, closed
	// as soon as it was accepted.
	RefusedIPConns = "ip_conns"
	// RefusedBodyTimeout: a request body that did not arrive within the
	// http.Server's ReadTimeout (BAYEUX_READ_TIMEOUT), cut with 408.
	RefusedBodyTimeout = "body_timeout"
	// RefusedJSONPSite: a callback-polling (JSONP) request that the
	// browser says came from another site (Sec-Fetch-Site).
	RefusedJSONPSite = "jsonp_cross_site"
	// RefusedBatch: a request or WebSocket frame with more messages than
	// Options.MaxBatch (refused before the rest is decoded).
	RefusedBatch = "batch_messages"
	// RefusedRecover: a subscribe that asked to recover more messages
	// than Options.MaxRecover (or than a reply's bytes): told they are
	// not recovered.
	RefusedRecover = "recover_limit"
)

// refuse counts an HTTP request refused by a limit.
func (s *Server) refuse(reason string) {
	s.stats.RequestsDenied.Add(1)
	s.stats.Refused.Add(reason)
}

// Refusals counts requests and messages refused by a limit, by reason (a
// short snake_case name such as "queue_bytes" or "login_rate"). Every
// limit of the server, and of the application around it, counts here what
// it refuses, so that /metrics shows each as
// bayeux_refused_total{reason="..."}. The zero value is ready; it is safe
// for concurrent use.
type Refusals struct {
	m sync.Map // reason -> *atomic.Int64
}

// Declare makes reasons known with a count of 0, so that their series
// exist before the first refusal.
func (r *Refusals) Declare(reasons ...string) {
	for _, reason := range reasons {
		r.counter(reason)
	}
}

// Add counts one refusal for reason.
func (r *Refusals) Add(reason string) { r.counter(reason).Add(1) }

// AddN counts n refusals for reason.
func (r *Refusals) AddN(reason string, n int64) { r.counter(reason).Add(n) }

// Load returns how many refusals reason counted.
func (r *Refusals) Load(reason string) int64 {
	if c, ok := r.m.Load(reason); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func (r *Refusals) counter(reason string) *atomic.Int64 {
	if c, ok := r.m.Load(reason); ok {
		return c.(*atomic.Int64)
	}
	c, _ := r.m.LoadOrStore(reason, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// Reasons returns every reason counted so far, sorted.
func (r *Refusals) Reasons() []string {
	var out []string
	r.m.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}
