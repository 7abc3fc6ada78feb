package server

import (
	"net/http"
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
	return mux
}
