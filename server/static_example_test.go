package server_test

import (
	"embed"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/bayeux-go/bayeux/server"
)

func ExampleFileServer() {
	root, err := os.OpenRoot("testdata/docroot")
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()

	files := server.FileServer(server.FileServerOptions{
		Root:           root.FS(),
		DirectoryIndex: []string{"index.htm", "index.html"},
		TypeExpires: map[string]time.Duration{
			"application/wasm": 24 * time.Hour,
			"image/*":          time.Hour,
		},
		PostHandle: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Frame-Options", "DENY")
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static", files))

	r := httptest.NewRequest("GET", "/static/app.wasm", nil)
	r.Header.Set("Accept-Encoding", "gzip, br")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)

	fmt.Println(w.Code)
	for _, h := range []string{"Content-Type", "Content-Encoding", "Vary", "Cache-Control", "X-Frame-Options"} {
		fmt.Printf("%s: %s\n", h, w.Header().Get(h))
	}
	// Output:
	// 200
	// Content-Type: application/wasm
	// Content-Encoding: br
	// Vary: Accept-Encoding
	// Cache-Control: public, max-age=86400
	// X-Frame-Options: DENY
}

//go:embed testdata/docroot
var exampleDocroot embed.FS

func ExampleFileServer_embed() {
	docroot, err := fs.Sub(exampleDocroot, "testdata/docroot")
	if err != nil {
		log.Fatal(err)
	}
	files := server.FileServer(server.FileServerOptions{Root: docroot})

	for _, target := range []string{"/sub2", "/sub2/", "/noindex/", "/.secret"} {
		w := httptest.NewRecorder()
		files.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		fmt.Printf("%s %d %q %q\n", target, w.Code, w.Header().Get("Location"), w.Body)
	}
	// Output:
	// /sub2 301 "./sub2/" ""
	// /sub2/ 200 "" "<p>sub2 index.html</p>\n"
	// /noindex/ 403 "" "403 directory listing denied\n"
	// /.secret 404 "" "404 page not found\n"
}
