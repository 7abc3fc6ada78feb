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

var registerOnce sync.Once

// Register registers the chat's routes with go-app: the page "/" (the
// chat is mounted under a prefix such as /chat/, which go-app strips).
// It may be called more than once.
func Register() {
	registerOnce.Do(func() {
		app.Route("/", func() app.Composer { return &Chat{} })
	})
}
