package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

// The admin pages' style sheet and script, served by the admin handler
// itself under /admin/assets/ (whatever the document root holds), so the
// pages need no inline script or style and can keep a strict CSP.
//
//go:embed admin.css admin.js
var adminAssets embed.FS

type adminAssetFile struct {
	data        []byte
	contentType string
	version     string
}

var adminAssetFiles = func() map[string]adminAssetFile {
	m := map[string]adminAssetFile{}
	for name, ct := range map[string]string{"admin.css": "text/css; charset=utf-8", "admin.js": "text/javascript; charset=utf-8"} {
		b, err := adminAssets.ReadFile(name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		m[name] = adminAssetFile{data: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	return m
}()

// adminAsset returns the URL of an admin asset with its content hash, so
// browsers may cache it for good.
func adminAsset(name string) string {
	return "/admin/assets/" + name + "?v=" + adminAssetFiles[name].version
}

// serveAdminAsset serves GET /admin/assets/{name}; no login is needed.
func serveAdminAsset(w http.ResponseWriter, r *http.Request) {
	f, ok := adminAssetFiles[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == f.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("ETag", `"`+f.version+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}
