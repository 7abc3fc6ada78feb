// Package chatweb serves the browser chat under /chat/: the page
// prerendered by go-app (wasmclient/chatui), go-app's scripts, manifest
// and service worker, and the chat's web resources (app.wasm, its .br and
// .gz variants, chat.css, icons) under /chat/web/.
//
// It does no authentication: the caller wraps the handler with its login
// requirement (Options.Guard), which a page loaded into a frame skips (see
// Guard). NewEmbed serves the JavaScript API of the Go Bayeux client
// under /embed/.
package chatweb

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/bayeux-go/bayeux/internal/origin"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/wasmclient/chatui"
)

// Prefix is where the chat lives; New's handler answers paths under
// Prefix + "/" and Prefix itself.
const Prefix = "/chat"

// Options configures New.
type Options struct {
	// Files holds the chat's web resources, served under /chat/web/:
	// app.wasm (with app.wasm.br and app.wasm.gz, made by `make build`),
	// chat.css, icon-192.png and icon-512.png. Usually assets.Web.
	// Required.
	Files fs.FS

	// Guard, if set, wraps the page (/chat/, the only HTML the chat
	// has), typically with a login requirement, except when the browser
	// loads the page into a frame (Sec-Fetch-Dest: iframe or frame): a
	// cross-site frame gets no login cookie where third-party cookies are
	// blocked, and a redirect to the login page would only show a login
	// that cannot stick. The page holds nothing private; its data comes
	// through Bayeux, which checks who is asking, and in a frame the chat
	// asks for a login itself. Who may frame the page at all is
	// EmbedOrigins. go-app's scripts,
	// manifest and service worker and the web resources are served
	// without it: they hold nothing private, and browsers fetch the
	// manifest without cookies, so a guarded manifest would be the login
	// page. Wrapping New's whole handler instead works, except for that.
	Guard func(http.Handler) http.Handler

	// EmbedOrigins lists the origins (scheme://host[:port], "*" for any)
	// allowed to show the chat in a frame, besides the chat's own origin,
	// and to hand the framed chat a login token by postMessage (the page
	// lists them in a meta tag, chatui.EmbedOriginsMetaName); they match
	// by scheme, host and port (a default port is the same as none).
	// Empty: no framing at all (X-Frame-Options: DENY).
	EmbedOrigins []string
}

// New returns the handler of the chat, to mount at "/chat/" (and "/chat",
// which it redirects to "/chat/"). The page's version, which makes
// browsers reload the app, is a hash of app.wasm. If Files has no
// app.wasm, the page says that the chat is not built.
func New(opts Options) (http.Handler, error) {
	if opts.Files == nil {
		return nil, errors.New("chatweb: Options.Files is nil")
	}
	csp, err := contentSecurityPolicy(opts.EmbedOrigins)
	if err != nil {
		return nil, err
	}
	wasm, err := fs.ReadFile(opts.Files, "app.wasm")
	built := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chatweb: reading app.wasm: %w", err)
	}

	version := "unbuilt"
	if built {
		sum := sha256.Sum256(wasm)
		version = hex.EncodeToString(sum[:8])
	}
	goapp := chatui.NewHandler(version, resolver{})
	if list, _ := origin.ParseList(opts.EmbedOrigins); !list.Empty() {
		// A framed chat takes login tokens from these origins only
		// (normalised, as frame-ancestors lists them).
		goapp.RawHeaders = append(goapp.RawHeaders, embedOriginsMeta(list.Sources()))
	}
	if built {
		// The wasm is sent compressed, so its Content-Length is not the
		// size go-app's loader counts for its progress.
		goapp.WasmContentLength = strconv.Itoa(len(wasm))
	}

	files := server.FileServer(server.FileServerOptions{
		Root: opts.Files,
		PostHandle: func(w http.ResponseWriter, r *http.Request) {
			// Same URLs for every build: revalidate (ETag) every time.
			w.Header().Set("Cache-Control", "no-cache")
		},
	})

	mux := http.NewServeMux()
	mux.Handle(Prefix+"/web/", http.StripPrefix(Prefix+"/web", files))
	// go-app would fetch these from its own host (with the request's
	// Host header) and cache them: the chat has none.
	for _, p := range []string{"/robots.txt", "/sitemap.xml", "/ads.txt"} {
		mux.Handle(Prefix+p, http.NotFoundHandler())
	}
	page := http.StripPrefix(Prefix, goapp)
	if !built {
		page = http.HandlerFunc(notBuilt)
	}
	if opts.Guard != nil {
		page = framedUnguarded(page, opts.Guard(page))
	}
	mux.Handle(Prefix+"/{$}", page)
	mux.Handle(Prefix+"/", http.StripPrefix(Prefix, goapp))
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		target := Prefix + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
	})

	frameDeny := len(opts.EmbedOrigins) == 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		if frameDeny {
			h.Set("X-Frame-Options", "DENY")
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		mux.ServeHTTP(w, r)
	}), nil
}

// framedUnguarded serves requests for a frame with open and the others
// with guarded. The answer depends on Sec-Fetch-Dest, so caches must key on
// it.
func framedUnguarded(open, guarded http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Sec-Fetch-Dest")
		switch r.Header.Get("Sec-Fetch-Dest") {
		case "iframe", "frame":
			open.ServeHTTP(w, r)
		default:
			guarded.ServeHTTP(w, r)
		}
	})
}

// contentSecurityPolicy is the policy of every chat response. go-app's
// page has no inline script or style: its scripts (wasm_exec.js, app.js)
// and styles are files. Compiling the WebAssembly module needs
// 'wasm-unsafe-eval'; nothing uses eval. Icons may be data: URLs (the
// SVG favicon is one). The Bayeux client talks to /cometd on the same
// origin.
func contentSecurityPolicy(embed []string) (string, error) {
	frames := "'none'"
	list, err := origin.ParseList(embed)
	if err != nil {
		return "", fmt.Errorf("chatweb: EmbedOrigins: %w", err)
	}
	if !list.Empty() {
		// Normalised origins (a default port is the same as none, as
		// browsers match frame-ancestors).
		frames = "'self' " + strings.Join(list.Sources(), " ")
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' 'wasm-unsafe-eval'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src 'self'",
		"font-src 'self'",
		"manifest-src 'self'",
		"worker-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors " + frames,
	}, "; "), nil
}

// embedOriginsMeta is the page's meta tag listing the embed origins,
// which a framed chat takes login tokens from (see chatui's
// embedtoken.go). The list is not secret: frame-ancestors says the same.
func embedOriginsMeta(origins []string) string {
	return `<meta name="` + chatui.EmbedOriginsMetaName + `" content="` + html.EscapeString(strings.Join(origins, " ")) + `">`
}

// notBuilt answers the page when app.wasm is missing.
func notBuilt(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprint(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bayeux chat: not built</title></head>
<body><h1>The chat is not built</h1>
<p>This server has no <code>app.wasm</code>. Run <code>make build</code> (it compiles
<code>cmd/chatwasm</code> to <code>assets/web/app.wasm</code> and embeds it in
<code>bin/bayeux</code>), then start the server again.</p>
<p><a href="/logout">Log out</a></p></body></html>
`)
}

// resolver maps go-app's paths to the chat's URLs under Prefix: the page
// "/", go-app's own files (/app.js, /app-worker.js ...) and the web
// resources "/web/...". Other paths (links such as /logout, queries such
// as ?room=x) and remote or data: URLs are left alone. Unlike
// app.PrefixedLocation it serves nothing, and it never panics.
type resolver struct{}

// goappFiles are the files go-app's handler serves itself.
var goappFiles = map[string]bool{
	"/app.css":              true,
	"/app.js":               true,
	"/app-worker.js":        true,
	"/wasm_exec.js":         true,
	"/manifest.webmanifest": true,
	"/goapp.js":             true,
	"/manifest.json":        true,
}

var _ app.ResourceResolver = resolver{}

// Resolve implements app.ResourceResolver.
func (resolver) Resolve(location string) string {
	switch {
	case location == "" || location == "/":
		return Prefix + "/"
	case strings.HasPrefix(location, "/web/") || location == "/web":
		return Prefix + location
	case strings.HasPrefix(location, "web/") || location == "web":
		return Prefix + "/" + location
	case goappFiles[location]:
		return Prefix + location
	}
	return location
}
