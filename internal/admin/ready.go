package admin

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/server"
)

// shutdownReporter is implemented by a Server that can tell whether its
// shutdown began (the proposed server.(*Server).ShuttingDown).
type shutdownReporter interface {
	ShuttingDown() bool
}

// Ready is the /readyz handler: 200 "ready" while the engine answers, 503
// once shutdown began or when the engine fails or takes longer than
// Timeout. /healthz (liveness) stays 200 as long as the process serves.
type Ready struct {
	Server *server.Server
	// Timeout bounds the engine check. Default 2s.
	Timeout  time.Duration
	shutting atomic.Bool
}

// BeginShutdown makes the check fail from now on; call it when shutdown
// starts (next to Server.BeginShutdown).
func (h *Ready) BeginShutdown() { h.shutting.Store(true) }

// Check returns nil when the server is ready.
func (h *Ready) Check(ctx context.Context) error {
	if h.shutting.Load() {
		return errShuttingDown
	}
	if sr, ok := any(h.Server).(shutdownReporter); ok && sr.ShuttingDown() {
		return errShuttingDown
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Any lookup that must reach the engine's store will do.
	_, _, err := h.Server.Engine().Session(ctx, readinessProbe)
	return err
}

// readinessProbe is a session id no client ever has (ids are base32).
const readinessProbe = "readiness-probe"

type readyError string

func (e readyError) Error() string { return string(e) }

const errShuttingDown = readyError("shutting down")

func (h *Ready) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := h.Check(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		msg := "engine not answering"
		if err == errShuttingDown {
			msg = err.Error()
		}
		// The engine's error is not shown: /readyz is public.
		io.WriteString(w, "not ready: "+msg+"\n")
		return
	}
	io.WriteString(w, "ready\n")
}
