package chatweb

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// fakeWeb is a web directory with a fake app.wasm and its .br variant.
func fakeWeb() fstest.MapFS {
	return fstest.MapFS{
		"app.wasm":     {Data: []byte("\x00asm fake wasm module")},
		"app.wasm.br":  {Data: []byte("fake brotli bytes")},
		"chat.css":     {Data: []byte("body{}")},
		"icon-192.png": {Data: []byte("png")},
		"icon-512.png": {Data: []byte("png")},
	}
}

func newHandler(t *testing.T, opts Options) http.Handler {
	t.Helper()
	if opts.Files == nil {
		opts.Files = fakeWeb()
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	h := newHandler(t, Options{})
	res := get(t, h, "/chat/?room=lobby")
	page := body(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /chat/: %s\n%s", res.Status, page)
	}
	for _, id := range []string{"chat-status", "chat-input", "chat-send", "chat-messages", "chat-members", "chat-room"} {
		if !strings.Contains(page, `data-testid="`+id+`"`) {
			t.Errorf("page lacks data-testid %s", id)
		}
	}
	if !strings.Contains(page, `>lobby</h2>`) { // attributes come in any order
		t.Errorf("page does not show the room from ?room=")
	}
	// Every go-app resource lives under /chat/; the links of the chat
	// itself are left alone.
	for _, want := range []string{`src="/chat/app.js"`, `src="/chat/wasm_exec.js"`, `href="/chat/manifest.webmanifest"`,
		`href="/chat/app.css"`, `href="/chat/web/chat.css"`, `src="/chat/web/icon-192.png"`, `href="/logout"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "githubusercontent") || strings.Contains(page, "https://") && !strings.Contains(page, `content="https://`) {
		t.Errorf("page refers to remote resources:\n%s", page)
	}
	hdr := res.Header
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self' 'wasm-unsafe-eval'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers = %v", hdr)
	}

	// An invalid room in the URL is not echoed.
	page = body(t, get(t, h, `/chat/?room=%22%3E%3Cscript%3E`))
	if strings.Contains(page, "<script>") || !strings.Contains(page, `>demo</h2>`) {
		t.Errorf("invalid room rendered:\n%s", page)
	}
	if res := get(t, h, "/chat/nothing-here"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /chat/nothing-here: %s", res.Status)
	}
}

func TestAppJS(t *testing.T) {
	h := newHandler(t, Options{})
	res := get(t, h, "/chat/app.js")
	js := body(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /chat/app.js: %s", res.Status)
	}
	for _, want := range []string{`"/chat/web/app.wasm"`, `"/chat/app-worker.js"`, `"GOAPP_ROOT_PREFIX":"/chat/"`,
		`"GOAPP_STATIC_RESOURCES_URL":"/chat/web"`, `goappWasmContentLength = "21"`} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	// The version is the hash of app.wasm.
	if !strings.Contains(js, `"GOAPP_VERSION":"`) {
		t.Errorf("app.js has no version")
	}
	other := fakeWeb()
	other["app.wasm"] = &fstest.MapFile{Data: []byte("another build")}
	h2 := newHandler(t, Options{Files: other})
	if e1, e2 := res.Header.Get("ETag"), get(t, h2, "/chat/app.js").Header.Get("ETag"); e1 == "" || e1 == e2 {
		t.Errorf("ETags (versions) %q and %q: want different for different wasm", e1, e2)
	}
}

func TestServiceWorkerHasNoFetchHandler(t *testing.T) {
	h := newHandler(t, Options{})
	res := get(t, h, "/chat/app-worker.js")
	js := body(t, res)
	if res.StatusCode != http.StatusOK || !strings.Contains(js, "install") {
		t.Fatalf("GET /chat/app-worker.js: %s\n%s", res.Status, js)
	}
	if strings.Contains(js, `"fetch"`) || strings.Contains(js, "onfetch") || strings.Contains(js, "respondWith") {
		t.Errorf("the service worker handles fetch:\n%s", js)
	}
}

func TestWasmCompressed(t *testing.T) {
	h := newHandler(t, Options{})
	res := get(t, h, "/chat/web/app.wasm", "Accept-Encoding", "gzip, deflate, br")
	if b := body(t, res); res.StatusCode != http.StatusOK || b != "fake brotli bytes" {
		t.Fatalf("GET app.wasm (br): %s %q", res.Status, b)
	}
	if res.Header.Get("Content-Encoding") != "br" || res.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("headers = %v", res.Header)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("no CSP on web resources")
	}
	res = get(t, h, "/chat/web/app.wasm")
	if b := body(t, res); b != "\x00asm fake wasm module" || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("GET app.wasm (identity): %q, %v", b, res.Header)
	}
	if res := get(t, h, "/chat/web/chat.css"); res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("GET chat.css: %s %v", res.Status, res.Header)
	}
	if res := get(t, h, "/chat/web/missing.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET missing: %s", res.Status)
	}
}

func TestRedirect(t *testing.T) {
	h := newHandler(t, Options{})
	for target, want := range map[string]string{"/chat": "/chat/", "/chat?room=x": "/chat/?room=x"} {
		res := get(t, h, target)
		if res.StatusCode != http.StatusMovedPermanently && res.StatusCode != http.StatusPermanentRedirect {
			t.Errorf("GET %s: %s", target, res.Status)
		}
		if loc := res.Header.Get("Location"); loc != want {
			t.Errorf("GET %s: Location %q, want %q", target, loc, want)
		}
	}
}

func TestProxyResourcesNotFetched(t *testing.T) {
	h := newHandler(t, Options{})
	for _, p := range []string{"/chat/robots.txt", "/chat/sitemap.xml", "/chat/ads.txt"} {
		if res := get(t, h, p, "Host", "attacker.example"); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s", p, res.Status)
		}
	}
}

func TestGuardWrapsOnlyThePage(t *testing.T) {
	guard := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		})
	}
	h := newHandler(t, Options{Guard: guard})
	if res := get(t, h, "/chat/?room=x"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("page: %s, want the guard's redirect", res.Status)
	}
	for _, p := range []string{"/chat/manifest.webmanifest", "/chat/app.js", "/chat/app-worker.js", "/chat/wasm_exec.js", "/chat/web/chat.css"} {
		if res := get(t, h, p); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200 without the guard", p, res.Status)
		}
	}
}

func TestNotBuilt(t *testing.T) {
	web := fakeWeb()
	delete(web, "app.wasm")
	delete(web, "app.wasm.br")
	h := newHandler(t, Options{Files: web})
	res := get(t, h, "/chat/")
	page := body(t, res)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "make build") {
		t.Errorf("GET /chat/ without app.wasm: %s\n%s", res.Status, page)
	}
	if res := get(t, h, "/chat/web/chat.css"); res.StatusCode != http.StatusOK {
		t.Errorf("web resources without app.wasm: %s", res.Status)
	}
}

func TestEmbedOrigins(t *testing.T) {
	h := newHandler(t, Options{EmbedOrigins: []string{"https://blog.example:443", "http://dev.example:8080/"}})
	res := get(t, h, "/chat/")
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' http://dev.example:8080 https://blog.example") {
		t.Errorf("CSP = %q", csp)
	}
	if res.Header.Get("X-Frame-Options") != "" {
		t.Errorf("X-Frame-Options set with embed origins")
	}
	if page := body(t, res); !strings.Contains(page, `<meta name="bayeux-embed-origins" content="http://dev.example:8080 https://blog.example">`) {
		t.Errorf("the page does not list the embed origins for the frame's token exchange:\n%s", page)
	}
	if page := body(t, get(t, newHandler(t, Options{}), "/chat/")); strings.Contains(page, "bayeux-embed-origins") {
		t.Errorf("a chat that may not be framed lists embed origins")
	}
	for _, o := range []string{"https://x; script-src *", "blog.example", "https://blog.example/page"} {
		if _, err := New(Options{Files: fakeWeb(), EmbedOrigins: []string{o}}); err == nil {
			t.Errorf("embed origin %q was accepted", o)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Errorf("New without Files succeeded")
	}
}

func TestResolver(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/chat/",
		"/":                     "/chat/",
		"/web":                  "/chat/web",
		"/web/app.wasm":         "/chat/web/app.wasm",
		"web/chat.css":          "/chat/web/chat.css",
		"/app.js":               "/chat/app.js",
		"/app-worker.js":        "/chat/app-worker.js",
		"/manifest.webmanifest": "/chat/manifest.webmanifest",
		"/logout":               "/logout",
		"?room=x":               "?room=x",
		"https://cdn.example/x": "https://cdn.example/x",
		"data:image/png,x":      "data:image/png,x",
	} {
		if got := (resolver{}).Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEmbedOriginsMetaEscapes(t *testing.T) {
	got := embedOriginsMeta([]string{"https://a.example", `https://b.example"><script>`})
	want := `<meta name="bayeux-embed-origins" content="https://a.example https://b.example&#34;&gt;&lt;script&gt;">`
	if got != want {
		t.Errorf("embedOriginsMeta = %s, want %s", got, want)
	}
}
