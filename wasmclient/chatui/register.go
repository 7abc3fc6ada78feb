// Package chatui is the browser chat: go-app components that talk to the
// Bayeux server through wasmclient, compiled to WebAssembly by
// cmd/chatwasm and prerendered by the server (internal/chatweb).
//
// The server and the wasm binary must register the same routes: both call
// Register (NewHandler does it for the server).
//
// Messages are always rendered as text, never as HTML. The component
// starts network work only in OnMount, which runs in the browser and not
// while the server prerenders the page.
package chatui

import (
	"sync"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

var (
	registerMu sync.Mutex
	registered = map[string]bool{}
)

// Register registers the chat's routes with go-app: the page "/" (the
// chat is mounted under a prefix such as /chat/, which go-app strips).
// It is RegisterAt("/") and may be called more than once.
func Register() { RegisterAt("/") }

// RegisterAt registers the chat page at path in the calling go-app app,
// so that another go-app app can show the chat among its own pages, for
// example RegisterAt("/support/chat"). path is a go-app route path (it
// starts with "/"; "" means "/"). The page reads the room from its URL's
// query (?room=NAME) whatever its path, and talks to the Bayeux endpoint
// /cometd of the page's origin, so the app must be served from the
// origin of the bayeux server (or proxy /cometd to it).
//
// As with every go-app route, the server's app.Handler and the wasm
// binary must both call it with the same path. Calling it again with the
// same path does nothing; several paths may be registered.
func RegisterAt(path string) {
	if path == "" {
		path = "/"
	}
	registerMu.Lock()
	defer registerMu.Unlock()
	if registered[path] {
		return
	}
	registered[path] = true
	app.Route(path, func() app.Composer { return &Chat{} })
}
