package chatweb

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/bayeux-go/bayeux/internal/origin"
	"github.com/bayeux-go/bayeux/server"
)

// EmbedPrefix is where the JavaScript API of the Go Bayeux client lives:
// the loader bayeux.js and bayeux.wasm (cmd/embedwasm, with .br and .gz
// variants made by the build).
const EmbedPrefix = "/embed"

// EmbedOptions configures NewEmbed.
type EmbedOptions struct {
	// Files holds bayeux.js and the build output bayeux.wasm (and its
	// .br, .gz variants). Usually assets.Embed. Required.
	Files fs.FS
	// AllowedOrigins are the origins (scheme://host[:port], matched by
	// scheme, host and port) whose pages may fetch the files with fetch()
	// (the loader fetches bayeux.wasm that way, which needs
	// Access-Control-Allow-Origin); "*" allows every origin. The same
	// list as the Bayeux server's AllowedOrigins (BAYEUX_ALLOWED_ORIGINS):
	// a page that may not talk to /cometd has no use for the client.
	// The files are public: no origin gets credentials.
	AllowedOrigins []string
}

// NewEmbed returns the handler of EmbedPrefix + "/": the files of
// opts.Files, with CORS headers for the allowed origins. Responses carry
// no cookies and nothing private.
func NewEmbed(opts EmbedOptions) (http.Handler, error) {
	if opts.Files == nil {
		return nil, errors.New("chatweb: EmbedOptions.Files is nil")
	}
	allowed, err := origin.ParseList(opts.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("chatweb: AllowedOrigins: %w", err)
	}
	files := server.FileServer(server.FileServerOptions{
		Root: opts.Files,
		PostHandle: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
		},
	})
	h := http.StripPrefix(EmbedPrefix, files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); o != "" {
			if ok, listed := allowed.Match(o); ok {
				if listed {
					hd.Set("Access-Control-Allow-Origin", o)
				} else {
					hd.Set("Access-Control-Allow-Origin", "*")
				}
				// Module scripts and fetches from a page with COEP need it.
				hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
			}
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			hd.Set("Access-Control-Allow-Methods", "GET, HEAD")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			hd.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
