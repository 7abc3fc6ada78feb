package server

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

//go:embed testdata/docroot
var staticTestEmbed embed.FS

// staticTestRoot returns the on-disk fixture document root.
func staticTestRoot(t *testing.T) fs.FS {
	t.Helper()
	root, err := os.OpenRoot(filepath.Join("testdata", "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root.FS()
}

// staticTestServe runs one request against h. headers are name, value pairs.
func staticTestServe(h http.Handler, method, target string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func staticTestFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "docroot", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFileServerResolve(t *testing.T) {
	type testCase struct {
		name     string
		target   string
		status   int
		body     string // exact body if non-empty and status is 200
		ctype    string // exact Content-Type if non-empty
		location string // exact Location if non-empty
	}
	tests := []testCase{
		{name: "root index", target: "/", status: 200, body: string(staticTestFixture(t, "index.html")), ctype: "text/html; charset=utf-8"},
		{name: "plain file", target: "/hello.txt", status: 200, body: "hello, world\n", ctype: "text/plain; charset=utf-8"},
		{name: "first index wins", target: "/sub/", status: 200, body: "<p>sub index.htm</p>\n", ctype: "text/html; charset=utf-8"},
		{name: "second index", target: "/sub2/", status: 200, body: "<p>sub2 index.html</p>\n"},
		{name: "directory redirect", target: "/sub", status: 301, location: "./sub/"},
		{name: "directory redirect keeps query", target: "/sub2?a=1&b=x%20y", status: 301, location: "./sub2/?a=1&b=x%20y"},
		{name: "no index", target: "/noindex/", status: 403},
		{name: "file in unindexed dir", target: "/noindex/file.txt", status: 200, body: "file in a directory without index\n"},
		{name: "missing", target: "/nope.txt", status: 404},
		{name: "missing dir", target: "/nope/", status: 404},
		{name: "file with slash", target: "/hello.txt/", status: 404},
		{name: "below file", target: "/hello.txt/x", status: 404},
		{name: "dotfile", target: "/.secret", status: 404},
		{name: "nested dotfile", target: "/sub/.env", status: 404},
		{name: "git dir", target: "/.git/config", status: 404},
		{name: "dot dir", target: "/./hello.txt", status: 404},
		{name: "dotdot", target: "/../etc/passwd", status: 404},
		{name: "inner dotdot", target: "/sub/../hello.txt", status: 404},
		{name: "encoded dotdot", target: "/%2e%2e/%2e%2e/etc/passwd", status: 404},
		{name: "encoded inner dotdot", target: "/sub/%2E%2E/.secret", status: 404},
		{name: "encoded slash dotdot", target: "/sub%2f..%2fhello.txt", status: 404},
		{name: "backslash", target: "/sub%5c..%5chello.txt", status: 400},
		{name: "NUL", target: "/hello.txt%00.png", status: 400},
		{name: "double slash", target: "//hello.txt", status: 200, body: "hello, world\n"},
		{name: "css", target: "/style.css", status: 200, ctype: "text/css; charset=utf-8"},
		{name: "js", target: "/app.js", status: 200, ctype: "text/javascript; charset=utf-8"},
		{name: "mjs", target: "/mod.mjs", status: 200, ctype: "text/javascript; charset=utf-8"},
		{name: "json", target: "/data.json", status: 200, ctype: "application/json"},
		{name: "svg", target: "/logo.svg", status: 200, ctype: "image/svg+xml"},
		{name: "png", target: "/pixel.png", status: 200, ctype: "image/png"},
		{name: "wasm", target: "/app.wasm", status: 200, ctype: "application/wasm"},
		{name: "unknown type", target: "/blob.unknownext", status: 200, ctype: "application/octet-stream"},
	}
	h := FileServer(FileServerOptions{
		Root:           staticTestRoot(t),
		DirectoryIndex: []string{"index.htm", "index.html"},
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := staticTestServe(h, "GET", tc.target)
			if w.Code != tc.status {
				t.Fatalf("GET %s: status %d, want %d; body %q", tc.target, w.Code, tc.status, w.Body)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
			if got := w.Header().Get("Content-Type"); tc.ctype != "" && got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if got := w.Header().Get("X-Content-Type-Options"); w.Code != 301 && got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if w.Code >= 400 {
				if b := w.Body.String(); !strings.HasPrefix(b, strconv.Itoa(w.Code)+" ") || strings.Contains(b, "testdata") || strings.Contains(b, "/") {
					t.Errorf("error body %q: want a fixed text starting with the status code and no path", b)
				}
			}
		})
	}
}

func TestFileServerDefaultIndex(t *testing.T) {
	h := FileServer(FileServerOptions{Root: staticTestRoot(t)})
	if w := staticTestServe(h, "GET", "/sub/"); w.Code != 200 || w.Body.String() != "<p>sub index.html</p>\n" {
		t.Errorf("GET /sub/: %d %q, want index.html", w.Code, w.Body)
	}
	h = FileServer(FileServerOptions{Root: staticTestRoot(t), DirectoryIndex: []string{"../index.html", ".secret", "sub/index.htm"}})
	if w := staticTestServe(h, "GET", "/"); w.Code != 403 {
		t.Errorf("GET / with only invalid index names: status %d, want 403", w.Code)
	}
}

func TestFileServerMethods(t *testing.T) {
	type testCase struct {
		method string
		status int
	}
	h := FileServer(FileServerOptions{Root: staticTestRoot(t)})
	for _, tc := range []testCase{
		{"POST", 405}, {"PUT", 405}, {"DELETE", 405}, {"OPTIONS", 405}, {"PATCH", 405},
		{"GET", 200}, {"HEAD", 200},
	} {
		t.Run(tc.method, func(t *testing.T) {
			w := staticTestServe(h, tc.method, "/hello.txt")
			if w.Code != tc.status {
				t.Fatalf("%s: status %d, want %d", tc.method, w.Code, tc.status)
			}
			if tc.status == 405 {
				if got := w.Header().Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow %q, want %q", got, "GET, HEAD")
				}
			}
		})
	}
	w := staticTestServe(h, "HEAD", "/hello.txt")
	if w.Body.Len() != 0 {
		t.Errorf("HEAD body %q, want empty", w.Body)
	}
	if got := w.Header().Get("Content-Length"); got != "13" {
		t.Errorf("HEAD Content-Length %q, want 13", got)
	}
}

func TestFileServerSymlinkEscape(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	docroot := filepath.Join(base, "docroot")
	for _, dir := range []string{outside, docroot} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docroot, "ok.txt"), []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"relative.txt": filepath.Join("..", "outside", "secret.txt"),
		"absolute.txt": secret,
		"dir":          outside,
		"inside.txt":   "ok.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(docroot, name)); err != nil {
			t.Skipf("symlinks unsupported: %v", err)
		}
	}
	root, err := os.OpenRoot(docroot)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	h := FileServer(FileServerOptions{Root: root.FS()})

	type testCase struct {
		target string
		status int
	}
	for _, tc := range []testCase{
		{"/relative.txt", 404},
		{"/absolute.txt", 404},
		{"/dir/secret.txt", 404},
		{"/dir/", 404},
		{"/dir", 404},
		{"/inside.txt", 200},
	} {
		w := staticTestServe(h, "GET", tc.target)
		if w.Code != tc.status {
			t.Errorf("GET %s: status %d, want %d", tc.target, w.Code, tc.status)
		}
		if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), base) {
			t.Errorf("GET %s: body %q leaks", tc.target, w.Body)
		}
	}
}

func TestFileServerTypeExpires(t *testing.T) {
	type testCase struct {
		target string
		maxAge int // -1: no caching headers
	}
	h := FileServer(FileServerOptions{
		Root: staticTestRoot(t),
		TypeExpires: map[string]time.Duration{
			"image/png":        time.Hour,
			"Text/*":           10 * time.Minute,
			"text/css":         time.Minute,
			"application/wasm": 24 * time.Hour,
		},
	})
	for _, tc := range []testCase{
		{"/pixel.png", 3600},
		{"/hello.txt", 600},
		{"/app.js", 600},
		{"/style.css", 60},
		{"/app.wasm", 86400},
		{"/data.json", -1},
		{"/logo.svg", -1},
	} {
		t.Run(tc.target, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			w := staticTestServe(h, "GET", tc.target)
			after := time.Now()
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			cc, exp := w.Header().Get("Cache-Control"), w.Header().Get("Expires")
			if tc.maxAge < 0 {
				if cc != "" || exp != "" {
					t.Errorf("Cache-Control %q, Expires %q; want none", cc, exp)
				}
				return
			}
			if want := "public, max-age=" + strconv.Itoa(tc.maxAge); cc != want {
				t.Errorf("Cache-Control %q, want %q", cc, want)
			}
			e, err := http.ParseTime(exp)
			if err != nil {
				t.Fatalf("Expires %q: %v", exp, err)
			}
			d := time.Duration(tc.maxAge) * time.Second
			if e.Before(before.Add(d)) || e.After(after.Add(d)) {
				t.Errorf("Expires %v, want between %v and %v", e, before.Add(d), after.Add(d))
			}
		})
	}

	h = FileServer(FileServerOptions{Root: staticTestRoot(t), TypeExpires: map[string]time.Duration{"*/*": time.Second, "image/*": -time.Hour}})
	if got := staticTestServe(h, "GET", "/data.json").Header().Get("Cache-Control"); got != "public, max-age=1" {
		t.Errorf("*/*: Cache-Control %q", got)
	}
	if got := staticTestServe(h, "GET", "/logo.svg").Header().Get("Cache-Control"); got != "public, max-age=0" {
		t.Errorf("negative duration: Cache-Control %q", got)
	}
	if got := staticTestServe(h, "GET", "/nope").Header().Get("Cache-Control"); got != "" {
		t.Errorf("404: Cache-Control %q, want none", got)
	}
}

func TestFileServerPostHandle(t *testing.T) {
	var calls []string
	var mu sync.Mutex
	h := FileServer(FileServerOptions{
		Root:        staticTestRoot(t),
		TypeExpires: map[string]time.Duration{"text/plain": time.Hour},
		PostHandle: func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls = append(calls, r.URL.Path)
			mu.Unlock()
			if w.Header().Get("Content-Type") == "" || w.Header().Get("ETag") == "" {
				t.Errorf("PostHandle: headers not prepared: %v", w.Header())
			}
			w.Header().Set("X-Bayeux", "yes")
			w.Header().Set("Cache-Control", "private")
		},
	})
	w := staticTestServe(h, "GET", "/hello.txt")
	if w.Code != 200 || w.Body.String() != "hello, world\n" {
		t.Fatalf("status %d body %q", w.Code, w.Body)
	}
	if got := w.Header().Get("X-Bayeux"); got != "yes" {
		t.Errorf("X-Bayeux %q, want yes", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "private" {
		t.Errorf("Cache-Control %q, want private", got)
	}
	staticTestServe(h, "GET", "/missing")
	staticTestServe(h, "GET", "/sub")
	staticTestServe(h, "GET", "/")
	if want := []string{"/hello.txt", "/"}; strings.Join(calls, ",") != strings.Join(want, ",") {
		t.Errorf("PostHandle calls %q, want %q", calls, want)
	}
}

func TestFileServerConditional(t *testing.T) {
	h := FileServer(FileServerOptions{Root: staticTestRoot(t)})
	w := staticTestServe(h, "GET", "/hello.txt")
	etag, lastMod := w.Header().Get("ETag"), w.Header().Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || lastMod == "" {
		t.Fatalf("ETag %q Last-Modified %q: want a strong ETag and Last-Modified", etag, lastMod)
	}

	type testCase struct {
		name    string
		headers []string
		status  int
		body    string
	}
	for _, tc := range []testCase{
		{"range", []string{"Range", "bytes=0-4"}, 206, "hello"},
		{"suffix range", []string{"Range", "bytes=-6"}, 206, "world\n"},
		{"unsatisfiable range", []string{"Range", "bytes=100-"}, 416, ""},
		{"if-none-match", []string{"If-None-Match", etag}, 304, ""},
		{"if-none-match other", []string{"If-None-Match", `"other"`}, 200, "hello, world\n"},
		{"if-modified-since", []string{"If-Modified-Since", lastMod}, 304, ""},
		{"if-range match", []string{"Range", "bytes=7-11", "If-Range", etag}, 206, "world"},
		{"if-range mismatch", []string{"Range", "bytes=7-11", "If-Range", `"other"`}, 200, "hello, world\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := staticTestServe(h, "GET", "/hello.txt", tc.headers...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
		})
	}
}

func TestFileServerPrecompressed(t *testing.T) {
	type testCase struct {
		name     string
		target   string
		accept   string
		encoding string // expected Content-Encoding
		body     string // fixture served
		ctype    string
		vary     bool
	}
	h := FileServer(FileServerOptions{Root: staticTestRoot(t)})
	for _, tc := range []testCase{
		{"br preferred", "/app.wasm", "gzip, deflate, br", "br", "app.wasm.br", "application/wasm", true},
		{"gzip only", "/app.wasm", "gzip", "gzip", "app.wasm.gz", "application/wasm", true},
		{"br refused", "/app.wasm", "br;q=0, gzip;q=0.5", "gzip", "app.wasm.gz", "application/wasm", true},
		{"star", "/app.wasm", "*", "br", "app.wasm.br", "application/wasm", true},
		{"star without br", "/app.wasm", "br;q=0, *", "gzip", "app.wasm.gz", "application/wasm", true},
		{"none acceptable", "/app.wasm", "deflate", "", "app.wasm", "application/wasm", true},
		{"no header", "/app.wasm", "", "", "app.wasm", "application/wasm", true},
		{"case insensitive", "/app.wasm", "GZIP", "gzip", "app.wasm.gz", "application/wasm", true},
		{"only gz exists", "/lib.js", "br, gzip", "gzip", "lib.js.gz", "text/javascript; charset=utf-8", true},
		{"only br accepted", "/lib.js", "br", "", "lib.js", "text/javascript; charset=utf-8", true},
		{"no variants", "/hello.txt", "br, gzip", "", "hello.txt", "text/plain; charset=utf-8", false},
		{"direct gz", "/app.wasm.gz", "gzip", "", "app.wasm.gz", "", false},
		{"direct br", "/app.wasm.br", "br", "", "app.wasm.br", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.accept != "" {
				headers = []string{"Accept-Encoding", tc.accept}
			}
			w := staticTestServe(h, "GET", tc.target, headers...)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			if got := w.Header().Get("Content-Encoding"); got != tc.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tc.encoding)
			}
			if !bytes.Equal(w.Body.Bytes(), staticTestFixture(t, tc.body)) {
				t.Errorf("body is not %s", tc.body)
			}
			if got := w.Header().Get("Content-Type"); tc.ctype != "" && got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := w.Header().Get("Vary"); (got == "Accept-Encoding") != tc.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", got, tc.vary)
			}
		})
	}

	// Each representation has its own ETag, and the gzip variant decodes
	// to the original.
	tags := map[string]bool{}
	for _, ae := range []string{"br", "gzip", "identity"} {
		w := staticTestServe(h, "GET", "/app.wasm", "Accept-Encoding", ae)
		tag := w.Header().Get("ETag")
		if tags[tag] {
			t.Errorf("Accept-Encoding %s: ETag %s reused", ae, tag)
		}
		tags[tag] = true
		if w := staticTestServe(h, "GET", "/app.wasm", "Accept-Encoding", ae, "If-None-Match", tag); w.Code != 304 {
			t.Errorf("Accept-Encoding %s: If-None-Match: status %d, want 304", ae, w.Code)
		}
		if ae == "gzip" {
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(b, staticTestFixture(t, "app.wasm")) {
				t.Errorf("gzip variant decodes to %q, %v", b, err)
			}
		}
	}
}

func TestFileServerEmbedFS(t *testing.T) {
	sub, err := fs.Sub(staticTestEmbed, "testdata/docroot")
	if err != nil {
		t.Fatal(err)
	}
	h := FileServer(FileServerOptions{Root: sub, DirectoryIndex: []string{"index.htm", "index.html"}})
	type testCase struct {
		target   string
		accept   string
		status   int
		encoding string
	}
	for _, tc := range []testCase{
		{"/", "", 200, ""},
		{"/sub/", "", 200, ""},
		{"/sub", "", 301, ""},
		{"/noindex/", "", 403, ""},
		{"/.secret", "", 404, ""},
		{"/%2e%2e/static.go", "", 404, ""},
		{"/app.wasm", "br", 200, "br"},
		{"/app.wasm", "gzip", 200, "gzip"},
	} {
		w := staticTestServe(h, "GET", tc.target, "Accept-Encoding", tc.accept)
		if w.Code != tc.status || w.Header().Get("Content-Encoding") != tc.encoding {
			t.Errorf("GET %s (%s): status %d encoding %q, want %d %q", tc.target, tc.accept, w.Code, w.Header().Get("Content-Encoding"), tc.status, tc.encoding)
		}
	}

	// embed.FS has no modification times: the ETag is a content hash.
	w := staticTestServe(h, "GET", "/hello.txt")
	etag := w.Header().Get("ETag")
	if len(etag) < 10 || w.Header().Get("Last-Modified") != "" {
		t.Fatalf("ETag %q Last-Modified %q", etag, w.Header().Get("Last-Modified"))
	}
	if w := staticTestServe(h, "GET", "/hello.txt", "If-None-Match", etag); w.Code != 304 {
		t.Errorf("If-None-Match: status %d, want 304", w.Code)
	}
	if w := staticTestServe(h, "GET", "/hello.txt", "Range", "bytes=0-4"); w.Code != 206 || w.Body.String() != "hello" {
		t.Errorf("Range: %d %q", w.Code, w.Body)
	}
	if other := staticTestServe(h, "GET", "/app.js").Header().Get("ETag"); other == etag {
		t.Errorf("different files share ETag %s", etag)
	}
}

// staticTestNoSeekFS hides the Seek method of its files.
type staticTestNoSeekFS struct{ fs.FS }

type staticTestNoSeekFile struct{ fs.File }

func (f staticTestNoSeekFS) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return staticTestNoSeekFile{file}, nil
}

func TestFileServerMapFS(t *testing.T) {
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	mfs := fstest.MapFS{
		"index.html":       {Data: []byte("<p>map</p>")},
		"a/b/c.txt":        {Data: []byte("abc"), ModTime: mtime},
		"a/b/c.txt.gz":     {Data: []byte("not really gzip"), ModTime: mtime},
		".git/config":      {Data: []byte("[core]")},
		"a/.htpasswd":      {Data: []byte("user:pass")},
		"empty":            {Mode: fs.ModeDir},
		"dirindex/index.x": {Data: []byte("index x")},
		"dirindex/index.y": {Mode: fs.ModeDir},
	}
	type testCase struct {
		name   string
		fsys   fs.FS
		target string
		accept string
		status int
		body   string
	}
	var tests []testCase
	for _, v := range []struct {
		name string
		fsys fs.FS
	}{{"MapFS", mfs}, {"NoSeek", staticTestNoSeekFS{mfs}}} {
		tests = append(tests,
			testCase{v.name + " index", v.fsys, "/", "", 200, "<p>map</p>"},
			testCase{v.name + " nested", v.fsys, "/a/b/c.txt", "", 200, "abc"},
			testCase{v.name + " gz", v.fsys, "/a/b/c.txt", "gzip", 200, "not really gzip"},
			testCase{v.name + " dir redirect", v.fsys, "/a/b", "", 301, ""},
			testCase{v.name + " no index", v.fsys, "/a/b/", "", 403, ""},
			testCase{v.name + " empty dir", v.fsys, "/empty/", "", 403, ""},
			testCase{v.name + " git", v.fsys, "/.git/config", "", 404, ""},
			testCase{v.name + " htpasswd", v.fsys, "/a/.htpasswd", "", 404, ""},
			testCase{v.name + " index is dir", v.fsys, "/dirindex/", "", 200, "index x"},
		)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := FileServer(FileServerOptions{Root: tc.fsys, DirectoryIndex: []string{"index.html", "index.y", "index.x"}})
			w := staticTestServe(h, "GET", tc.target, "Accept-Encoding", tc.accept)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
		})
	}

	h := FileServer(FileServerOptions{Root: staticTestNoSeekFS{mfs}})
	w := staticTestServe(h, "GET", "/a/b/c.txt", "Range", "bytes=1-")
	if w.Code != 206 || w.Body.String() != "bc" {
		t.Errorf("NoSeek range: %d %q", w.Code, w.Body)
	}
	if got, want := w.Header().Get("Last-Modified"), mtime.Format(http.TimeFormat); got != want {
		t.Errorf("Last-Modified %q, want %q", got, want)
	}
}

func TestFileServerConcurrent(t *testing.T) {
	sub, err := fs.Sub(staticTestEmbed, "testdata/docroot")
	if err != nil {
		t.Fatal(err)
	}
	roots := []fs.FS{sub, staticTestRoot(t)}
	for _, root := range roots {
		h := FileServer(FileServerOptions{Root: root, TypeExpires: map[string]time.Duration{"*/*": time.Minute}})
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				for _, target := range []string{"/", "/hello.txt", "/app.wasm", "/sub/", "/nope"} {
					w := staticTestServe(h, "GET", target, "Accept-Encoding", []string{"br", "gzip", ""}[i%3])
					if w.Code != 200 && w.Code != 404 {
						t.Errorf("GET %s: %d", target, w.Code)
					}
				}
			})
		}
		wg.Wait()
	}
}

func TestFileServerNilRoot(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("FileServer with nil Root did not panic")
		}
	}()
	FileServer(FileServerOptions{})
}

func TestStaticAcceptsEncoding(t *testing.T) {
	type testCase struct {
		header []string
		coding string
		want   bool
	}
	for _, tc := range []testCase{
		{nil, "gzip", false},
		{[]string{""}, "gzip", false},
		{[]string{"gzip"}, "gzip", true},
		{[]string{"deflate, gzip"}, "gzip", true},
		{[]string{"deflate", "gzip"}, "gzip", true},
		{[]string{"gzip;q=0"}, "gzip", false},
		{[]string{"gzip; q=0.0"}, "gzip", false},
		{[]string{"gzip;q=0.001"}, "gzip", true},
		{[]string{"gzip;q=bogus"}, "gzip", false},
		{[]string{"*"}, "br", true},
		{[]string{"*;q=0"}, "br", false},
		{[]string{"br;q=0, *"}, "br", false},
		{[]string{"br, *;q=0"}, "br", true},
		{[]string{"x-gzip"}, "gzip", false},
		{[]string{" BR "}, "br", true},
	} {
		if got := staticAcceptsEncoding(tc.header, tc.coding); got != tc.want {
			t.Errorf("staticAcceptsEncoding(%q, %q) = %v, want %v", tc.header, tc.coding, got, tc.want)
		}
	}
}
