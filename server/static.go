package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FileServerOptions configures FileServer.
type FileServerOptions struct {
	// Root is the document root. Required. For a directory on disk,
	// open it with os.OpenRoot and pass root.FS(), which refuses paths
	// and symbolic links that escape the directory; do not use
	// os.DirFS, which follows symbolic links anywhere. An embed.FS
	// (usually narrowed with fs.Sub) or any other fs.FS works too.
	Root fs.FS

	// DirectoryIndex lists the index file names tried, in order, for
	// a directory request. Names must be single path elements; others
	// are ignored. If empty, []string{"index.html"} is used.
	DirectoryIndex []string

	// TypeExpires maps a MIME type without parameters (for example
	// "image/png"), a wildcard subtype ("image/*") or "*/*" to how
	// long responses of that type may be cached. The most specific
	// match wins. A matching response gets an Expires header (now
	// plus the duration) and "Cache-Control: public, max-age=N".
	// Types not matched get no caching headers beyond those of
	// http.ServeContent (Last-Modified).
	TypeExpires map[string]time.Duration

	// PostHandle, if set, is called for every file response after
	// its headers (Content-Type, Content-Encoding, ETag, Vary,
	// caching headers) are set and before the status and body are
	// written, so it can add, change or remove headers. It must not
	// write the status or body. It is not called for error
	// responses or redirects.
	PostHandle func(w http.ResponseWriter, r *http.Request)
}

// staticMaxBuffered bounds the size of a file that is read into memory
// because the file system's files do not implement io.Seeker.
const staticMaxBuffered = 32 << 20

// staticTypeOverrides are Content-Types used instead of the system's
// MIME table, which varies between hosts.
var staticTypeOverrides = map[string]string{
	".css":  "text/css; charset=utf-8",
	".htm":  "text/html; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json",
	".mjs":  "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".wasm": "application/wasm",
}

// staticEncodings are the precompressed variants looked for, in order
// of preference.
var staticEncodings = []struct{ coding, ext string }{
	{"br", ".br"},
	{"gzip", ".gz"},
}

// FileServer returns an http.Handler that serves GET and HEAD requests
// with files from opts.Root. It panics if opts.Root is nil.
//
// Security rules:
//   - Only GET and HEAD are allowed; other methods get 405 with
//     "Allow: GET, HEAD".
//   - A URL path containing a NUL byte or a backslash gets 400.
//   - A URL path with any element beginning with "." (dotfiles such
//     as ".git" or ".env", and "..", also when percent-encoded) gets
//     404. The path is then cleaned and checked with fs.ValidPath.
//   - Only regular files are served. Directories are never listed: a
//     directory request is answered with its first existing
//     DirectoryIndex file, or 403 if there is none.
//   - Escaping the document root through symbolic links is prevented
//     by the file system; with an os.Root it results in 404.
//   - Error bodies are fixed texts and never contain file system
//     paths or error details.
//
// A directory requested without a trailing slash is redirected (301)
// to the same path with a slash, using a relative Location so that the
// handler works under http.StripPrefix; the query is preserved.
//
// The Content-Type is derived from the file name extension and every
// file response carries "X-Content-Type-Options: nosniff". Files are
// served with http.ServeContent, so Range and conditional requests
// work; the ETag is strong and derived from the size and modification
// time, or, for files without a modification time such as those of an
// embed.FS, from a hash of the content computed once and cached (such
// file systems are assumed not to change).
//
// If a file F has a precompressed sibling F.br or F.gz and the
// request's Accept-Encoding allows "br" or "gzip" respectively, the
// sibling is served instead (br preferred) with the matching
// Content-Encoding and F's Content-Type. Responses for F then carry
// "Vary: Accept-Encoding". Requests for F.br or F.gz themselves serve
// those files as they are.
//
// The handler is safe for concurrent use by multiple goroutines,
// provided that opts.Root and opts.PostHandle are.
func FileServer(opts FileServerOptions) http.Handler {
	if opts.Root == nil {
		panic("server: FileServer: nil Root")
	}
	s := &fileServer{
		root:       opts.Root,
		index:      []string{"index.html"},
		postHandle: opts.PostHandle,
	}
	if len(opts.DirectoryIndex) > 0 {
		s.index = nil
		for _, name := range opts.DirectoryIndex {
			if fs.ValidPath(name) && name != "." && !strings.Contains(name, "/") && !strings.HasPrefix(name, ".") {
				s.index = append(s.index, name)
			}
		}
	}
	if len(opts.TypeExpires) > 0 {
		s.expires = make(map[string]time.Duration, len(opts.TypeExpires))
		for typ, d := range opts.TypeExpires {
			s.expires[strings.ToLower(strings.TrimSpace(typ))] = d
		}
	}
	return s
}

type fileServer struct {
	root       fs.FS
	index      []string
	expires    map[string]time.Duration
	postHandle func(http.ResponseWriter, *http.Request)

	hashes sync.Map // fileServerHashKey -> string; for files without modtime
}

type fileServerHashKey struct {
	name string
	size int64
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	upath := r.URL.Path
	if strings.ContainsAny(upath, "\x00\\") {
		http.Error(w, "400 bad request", http.StatusBadRequest)
		return
	}
	for _, elem := range strings.Split(upath, "/") {
		if strings.HasPrefix(elem, ".") {
			staticNotFound(w)
			return
		}
	}
	name := strings.TrimPrefix(path.Clean("/"+upath), "/")
	if name == "" {
		name = "."
	}
	if !fs.ValidPath(name) {
		staticNotFound(w)
		return
	}

	f, fi, err := s.open(name)
	if err != nil {
		staticOpenError(w, err)
		return
	}
	defer f.Close()

	if !fi.IsDir() {
		if strings.HasSuffix(upath, "/") {
			staticNotFound(w)
			return
		}
		s.serveFile(w, r, name, f, fi)
		return
	}
	if name != "." && !strings.HasSuffix(upath, "/") {
		loc := "./" + url.PathEscape(path.Base(name)) + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	for _, idx := range s.index {
		iname := path.Join(name, idx)
		idx, idxInfo, err := s.open(iname)
		if err != nil {
			continue
		}
		if !idxInfo.Mode().IsRegular() {
			idx.Close()
			continue
		}
		defer idx.Close()
		s.serveFile(w, r, iname, idx, idxInfo)
		return
	}
	http.Error(w, "403 directory listing denied", http.StatusForbidden)
}

// open opens name and stats it.
func (s *fileServer) open(name string) (fs.File, fs.FileInfo, error) {
	f, err := s.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// serveFile serves the regular file f named name, or one of its
// precompressed variants.
func (s *fileServer) serveFile(w http.ResponseWriter, r *http.Request, name string, f fs.File, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		staticNotFound(w)
		return
	}
	h := w.Header()
	ctype := staticContentType(name)

	coding := ""
	if ext := path.Ext(name); ext != ".br" && ext != ".gz" {
		hasVariant := false
		for _, enc := range staticEncodings {
			vname := name + enc.ext
			if !staticIsRegular(s.root, vname) {
				continue
			}
			hasVariant = true
			if !staticAcceptsEncoding(r.Header.Values("Accept-Encoding"), enc.coding) {
				continue
			}
			vf, vfi, err := s.open(vname)
			if err != nil {
				continue
			}
			defer vf.Close()
			if vfi.Mode().IsRegular() {
				name, f, fi, coding = vname, vf, vfi, enc.coding
				break
			}
		}
		if hasVariant {
			h.Add("Vary", "Accept-Encoding")
		}
	}

	content, ok := f.(io.ReadSeeker)
	if !ok {
		if fi.Size() > staticMaxBuffered {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		b, err := io.ReadAll(io.LimitReader(f, staticMaxBuffered+1))
		if err != nil || len(b) > staticMaxBuffered {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		content = bytes.NewReader(b)
	}
	etag, err := s.etag(name, fi, content)
	if err != nil {
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	if coding != "" {
		etag += "-" + coding
		h.Set("Content-Encoding", coding)
	}
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+etag+`"`)
	if d, ok := s.lookupExpires(ctype); ok {
		d = max(d, 0)
		h.Set("Expires", time.Now().Add(d).UTC().Format(http.TimeFormat))
		h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(d/time.Second), 10))
	}
	if s.postHandle != nil {
		s.postHandle(w, r)
	}
	http.ServeContent(w, r, name, fi.ModTime(), content)
}

// etag returns the opaque part of a strong entity tag for the file
// name. content is left positioned at its start.
func (s *fileServer) etag(name string, fi fs.FileInfo, content io.ReadSeeker) (string, error) {
	if mt := fi.ModTime(); !mt.IsZero() {
		return strconv.FormatInt(mt.UnixNano(), 36) + "-" + strconv.FormatInt(fi.Size(), 36), nil
	}
	key := fileServerHashKey{name, fi.Size()}
	if v, ok := s.hashes.Load(key); ok {
		return v.(string), nil
	}
	hash := sha256.New()
	if _, err := io.Copy(hash, content); err != nil {
		return "", err
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tag := hex.EncodeToString(hash.Sum(nil)[:16])
	s.hashes.Store(key, tag)
	return tag, nil
}

// lookupExpires returns the cache lifetime configured for ctype.
func (s *fileServer) lookupExpires(ctype string) (time.Duration, bool) {
	if len(s.expires) == 0 {
		return 0, false
	}
	typ, _, _ := strings.Cut(ctype, ";")
	typ = strings.ToLower(strings.TrimSpace(typ))
	if d, ok := s.expires[typ]; ok {
		return d, true
	}
	if major, _, ok := strings.Cut(typ, "/"); ok {
		if d, ok := s.expires[major+"/*"]; ok {
			return d, true
		}
	}
	d, ok := s.expires["*/*"]
	return d, ok
}

// staticContentType returns the Content-Type for the file name.
func staticContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := staticTypeOverrides[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); ext != "" && t != "" {
		return t
	}
	return "application/octet-stream"
}

// staticIsRegular reports whether name exists in fsys as a regular file.
func staticIsRegular(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.Mode().IsRegular()
}

// staticAcceptsEncoding reports whether the Accept-Encoding header
// values accept coding with a non-zero quality, either by name or
// through "*".
func staticAcceptsEncoding(values []string, coding string) bool {
	named, star := -1.0, -1.0
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			tok, params, _ := strings.Cut(item, ";")
			tok = strings.TrimSpace(tok)
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil {
						f = 0
					}
					q = f
				}
			}
			switch {
			case strings.EqualFold(tok, coding):
				named = max(named, q)
			case tok == "*":
				star = max(star, q)
			}
		}
	}
	if named >= 0 {
		return named > 0
	}
	return star > 0
}

// staticNotFound writes a 404 response.
func staticNotFound(w http.ResponseWriter) {
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// staticOpenError writes the response for a failure to open a file.
func staticOpenError(w http.ResponseWriter, err error) {
	if errors.Is(err, fs.ErrPermission) {
		http.Error(w, "403 forbidden", http.StatusForbidden)
		return
	}
	// Not found, not a directory, or escaping the root.
	staticNotFound(w)
}
