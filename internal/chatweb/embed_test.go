package chatweb

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
)

// A framed request skips the login guard (a cross-site frame has no
// login cookie); a top-level one does not.
func TestGuardSkippedInFrame(t *testing.T) {
	guard := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		})
	}
	h := newHandler(t, Options{Guard: guard, EmbedOrigins: []string{"https://blog.example"}})
	if res := get(t, h, "/chat/?room=x", "Sec-Fetch-Dest", "document"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("top-level page: %s, want the guard's redirect", res.Status)
	}
	res := get(t, h, "/chat/?room=x", "Sec-Fetch-Dest", "iframe")
	if res.StatusCode != http.StatusOK {
		t.Errorf("framed page: %s, want 200 without the guard", res.Status)
	}
	if !strings.Contains(res.Header.Get("Vary"), "Sec-Fetch-Dest") {
		t.Errorf("framed page: Vary %q lacks Sec-Fetch-Dest", res.Header.Get("Vary"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' https://blog.example") {
		t.Errorf("framed page: CSP %q", csp)
	}
}

func TestEmbedFiles(t *testing.T) {
	files := fstest.MapFS{
		"bayeux.js":   {Data: []byte("window.Bayeux = {};")},
		"bayeux.wasm": {Data: []byte("\x00asm")},
	}
	h, err := NewEmbed(EmbedOptions{Files: files, AllowedOrigins: []string{"https://blog.example"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		origin, acao string
	}{
		{"", ""},
		{"https://blog.example", "https://blog.example"},
		{"https://blog.example:443", "https://blog.example:443"},
		{"http://blog.example", ""},
		{"https://blog.example:8443", ""},
		{"https://evil.example", ""},
	} {
		var hdr []string
		if tc.origin != "" {
			hdr = []string{"Origin", tc.origin}
		}
		res := get(t, h, "/embed/bayeux.wasm", hdr...)
		if res.StatusCode != http.StatusOK {
			t.Errorf("origin %q: %s", tc.origin, res.Status)
		}
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != tc.acao {
			t.Errorf("origin %q: Access-Control-Allow-Origin %q, want %q", tc.origin, got, tc.acao)
		}
	}
	if res := get(t, h, "/embed/bayeux.js"); res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Errorf("bayeux.js: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	if res := get(t, h, "/embed/nothing"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %s", res.Status)
	}
	all, _ := NewEmbed(EmbedOptions{Files: files, AllowedOrigins: []string{"*"}})
	res := get(t, all, "/embed/bayeux.js", "Origin", "https://any.example")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf(`"*": Access-Control-Allow-Origin %q, want *`, got)
	}
	if got := res.Header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf(`"*": Access-Control-Allow-Credentials %q`, got)
	}
	if _, err := NewEmbed(EmbedOptions{Files: files, AllowedOrigins: []string{"blog.example"}}); err == nil {
		t.Errorf("NewEmbed with an origin without scheme succeeded")
	}
	if _, err := NewEmbed(EmbedOptions{}); err == nil {
		t.Errorf("NewEmbed without Files succeeded")
	}
}
