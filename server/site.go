package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
)

// SiteOptions configures Server.Site.
type SiteOptions struct {
	// Endpoint is the path of the Bayeux endpoint; it and every sub-path go
	// to the Server. Default "/cometd".
	Endpoint string
	// ContentHandlers are extra handlers keyed by http.ServeMux pattern
	// (for example "/api/" or "GET /status"), like the seed's
	// ContentHandler option. They take precedence over the document root.
	ContentHandlers map[string]http.Handler
	// Files configures the document root served for every other path. A
	// nil Files.Root serves nothing (404).
	Files FileServerOptions
}

// Site returns the whole HTTP handler of a Bayeux web server: the Bayeux
// endpoint, the extra content handlers, and the document root. It panics
// if a ContentHandlers pattern is invalid or conflicts, as
// http.ServeMux.Handle does.
//
// Every route gets what the Bayeux endpoint does for itself: the client's
// address and scheme are decided once (Options.TrustedProxies; handlers
// read them with internal/realip), concurrent requests per client IP are
// capped by Options.ClientMaxConnections (429 beyond), and a request body
// cut by the http.Server's ReadTimeout is counted as RefusedBodyTimeout.
func (s *Server) Site(opts SiteOptions) http.Handler {
	ep := strings.TrimSuffix(opts.Endpoint, "/")
	if ep == "" {
		ep = "/cometd"
	}
	mux := http.NewServeMux()
	mux.Handle(ep, s)
	mux.Handle(ep+"/", s)
	for pattern, h := range opts.ContentHandlers {
		mux.Handle(pattern, h)
	}
	if opts.Files.Root != nil {
		mux.Handle("/", FileServer(opts.Files))
	} else {
		mux.Handle("/", http.NotFoundHandler())
	}
	return s.guard(ep, mux)
}

// guard is the front of every route but the Bayeux endpoint under ep
// (which does the same itself, holding its IP slot as long as a held
// connect or a WebSocket lives).
func (s *Server) guard(ep string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == ep || strings.HasPrefix(p, ep+"/") {
			next.ServeHTTP(w, r)
			return
		}
		r, cl := s.proxies.Attach(r)
		s.noteIgnored(cl)
		if !s.ips.acquire(cl.IP) {
			s.refuse(RefusedIPRequests)
			tooMany(w, r)
			return
		}
		defer s.ips.release(cl.IP)
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = &timedBody{ReadCloser: r.Body, s: s}
		}
		next.ServeHTTP(w, r)
	})
}

// timedBody is a request body that counts the request as RefusedBodyTimeout
// when the server's read deadline cuts it.
type timedBody struct {
	io.ReadCloser
	s       *Server
	counted bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !b.counted && errors.Is(err, os.ErrDeadlineExceeded) {
		b.counted = true
		b.s.refuse(RefusedBodyTimeout)
	}
	return n, err
}
