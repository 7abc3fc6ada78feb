//go:build js && wasm

// Command embedwasm is the JavaScript API of the Go Bayeux client
// (wasmclient), compiled to WebAssembly for pages on any site:
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o assets/embed/bayeux.wasm ./cmd/embedwasm
//
// The server serves it under /embed/ with the loader /embed/bayeux.js,
// which runs it and resolves Bayeux.ready. The API itself is
// internal/jsapi. It holds no go-app and no net/http, so it stays small.
package main

import "github.com/bayeux-go/bayeux/internal/jsapi"

func main() {
	jsapi.Install(jsapi.New())
	select {}
}
