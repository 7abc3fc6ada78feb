package chatui

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// A framed chat logs in with a token from the page that frames it: the
// host site's backend mints a short-lived token for its logged-in user,
// and the host page hands it to the frame by postMessage, never in the
// URL. The exchange itself, with its origin checks against
// BAYEUX_EMBED_ORIGINS, is the page's script web/frame-token.js (in
// JavaScript: the same in Go would cost the wasm about 30 KB); the chat
// asks it for a token before it logs in and before each token expires
// (the client's refresh, wasmclient.Options.Token).

// EmbedOriginsMetaName names the meta tag that lists the origins allowed
// to frame the chat (and so to hand it tokens), separated by spaces. The
// server adds it to the page (internal/chatweb).
const EmbedOriginsMetaName = "bayeux-embed-origins"

// FrameTokenScript is the page's script that takes tokens from the
// parent window (under the web resources).
const FrameTokenScript = "/web/frame-token.js"

// firstTokenWait is how long a framed chat waits for the host page's first
// token before it offers its own login form; refreshWait bounds later
// requests.
const (
	firstTokenWait = 3 * time.Second
	refreshWait    = 15 * time.Second
)

var errNoToken = errors.New("chatui: the page framing the chat gave no token")

// askParent asks frame-token.js for a token from the parent window and
// waits up to d for it.
func askParent(ctx context.Context, d time.Duration) (string, error) {
	if !hasFrameToken() {
		return "", errNoToken // not framed, or no embed origins
	}
	w := app.Window()
	ch := make(chan string, 1)
	var then app.Func
	then = app.FuncOf(func(_ app.Value, args []app.Value) any {
		ch <- args[0].String()
		then.Release()
		return nil
	})
	w.Call("__bayeuxFrameToken", d.Milliseconds()).Call("then", then)
	select {
	case tok := <-ch:
		if tok == "" {
			return "", errNoToken
		}
		return tok, nil
	case <-ctx.Done():
		return "", ctx.Err() // the promise settles within d and releases then
	}
}

// hasFrameToken reports whether frame-token.js can ask a parent page:
// the chat is framed and the server lists embed origins.
func hasFrameToken() bool {
	return app.Window().Get("__bayeuxFrameToken").Type() == app.TypeFunction
}

// frameToken returns the client's Options.Token for a framed chat: it
// asks the page framing it, for firstTokenWait the first time (a page that
// gives none leaves the chat to its login form soon) and refreshWait
// later.
func frameToken() func(context.Context) (string, error) {
	var mu sync.Mutex
	wait := firstTokenWait
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		d := wait
		wait = refreshWait
		mu.Unlock()
		return askParent(ctx, d)
	}
}
