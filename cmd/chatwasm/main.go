//go:build js && wasm

// Command chatwasm is the browser chat, compiled to WebAssembly:
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o assets/web/app.wasm ./cmd/chatwasm
//
// It holds no server code (that would double its size); the server
// serves it with internal/chatweb.
package main

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/bayeux-go/bayeux/wasmclient/chatui"
)

func main() {
	chatui.Register()
	app.RunWhenOnBrowser()
}
