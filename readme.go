// Package bayeux is the root of the bayeux module: a Bayeux 1.0 (cometd)
// server (package server and the binary cmd/bayeux), its Go client
// (wasmclient) and a chat in the browser (wasmclient/chatui). See
// README.md. This package only holds the README, which the server shows
// in its default document root (internal/readme).
package bayeux

import _ "embed"

// README is the project's README.md (GitHub-flavoured Markdown).
//
//go:embed README.md
var README []byte
