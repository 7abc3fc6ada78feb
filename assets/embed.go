// Package assets holds the default document root: the landing page, its
// style sheet and icons. The server serves these files when
// BAYEUX_DOCUMENT_ROOT is unset.
package assets

import "embed"

// FS holds the bundled files. Go source files are not part of it.
//
//go:embed index.html style.css favicon.svg
var FS embed.FS
