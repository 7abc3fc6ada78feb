package chatui

import (
	"context"
	"errors"

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

var errNoToken = errors.New("chatui: the page framing the chat gave no token")

// askParent is the client's Options.Token in a framed chat: it asks
// frame-token.js for a token from the parent window (which waits 3 s for
// the first one, 15 s for later ones).
func askParent(context.Context) (string, error) {
	if !hasFrameToken() {
		return "", errNoToken // not framed, or no embed origins
	}
	ch := make(chan string, 1)
	var then app.Func
	then = app.FuncOf(func(_ app.Value, args []app.Value) any {
		ch <- args[0].String()
		then.Release()
		return nil
	})
	app.Window().Call("__bayeuxFrameToken").Call("then", then)
	// The promise settles within 15 s whatever happens, so ctx is not
	// waited on.
	if tok := <-ch; tok != "" {
		return tok, nil
	}
	return "", errNoToken
}

// hasFrameToken reports whether frame-token.js can ask a parent page:
// the chat is framed and the server lists embed origins.
func hasFrameToken() bool {
	return app.Window().Get("__bayeuxFrameToken").Type() == app.TypeFunction
}
