// Package assets holds the default document root (the landing page and
// its icon; it uses the chat's style sheet), served when
// BAYEUX_DOCUMENT_ROOT is unset, and the chat's web resources under web/:
// icons, the style sheet of the chat and the pages around it, and the build
// output app.wasm (with .br and .gz variants) made by `make build`, and
// the JavaScript API of the Go Bayeux client under embed/: the loader
// bayeux.js and the build output bayeux.wasm (cmd/embedwasm, with .br and
// .gz variants).
package assets

import (
	"embed"
	"io/fs"
)

// FS holds the default document root. Go source files are not part of it.
//
//go:embed index.html favicon.svg
var FS embed.FS

//go:embed web
var web embed.FS

// Web holds the chat's resources, served under /chat/web/.
var Web, _ = fs.Sub(web, "web")

//go:embed embed
var embedded embed.FS

// Embed holds the JavaScript API of the Go Bayeux client, served under
// /embed/: bayeux.js and, once built, bayeux.wasm.
var Embed, _ = fs.Sub(embedded, "embed")
