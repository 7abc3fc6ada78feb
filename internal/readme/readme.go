// Package readme shows the project's README in the server's default
// document root: Page renders it to an HTML page in the product's style,
// and WithFile adds such a page to a file system.
//
// The README is the project's own text (trusted); raw HTML in it is
// dropped all the same (goldmark's default), and links are kept as
// written.
package readme

import (
	"bytes"
	"html/template"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
)

// Page renders the Markdown md (GitHub-flavoured: tables, autolinks) to a
// whole HTML page styled by the style sheet at styleSheet. Headings get
// ids from their text ("## Quick start" → id="quick-start", as on
// GitHub for plain headings), so that other pages can link to sections.
func Page(md []byte, styleSheet string) ([]byte, error) {
	var body bytes.Buffer
	gm := goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithParserOptions(parser.WithAutoHeadingID()),
	)
	if err := gm.Convert(md, &body); err != nil {
		return nil, err
	}
	var page bytes.Buffer
	err := pageTemplate.Execute(&page, struct {
		StyleSheet string
		Body       template.HTML
	}{styleSheet, template.HTML(body.String())})
	return page.Bytes(), err
}

var pageTemplate = template.Must(template.New("readme").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>README · bayeux</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{{.StyleSheet}}">
</head>
<body class="page">
<main class="card doc readme">
<p><a href="/">← bayeux</a> · <a href="/chat/">chat</a> · <a href="/admin/">admin</a></p>
{{.Body}}
</main>
</body>
</html>
`))

// WithFile returns base with one more regular file, name (a path as
// fs.ValidPath takes it), holding content; name hides a file of base
// with the same name. It is read-only and safe for concurrent use.
// Listing a directory of base does not show the file.
func WithFile(base fs.FS, name string, content []byte) fs.FS {
	return withFile{FS: base, name: name, content: content}
}

type withFile struct {
	fs.FS
	name    string
	content []byte
}

func (w withFile) Open(name string) (fs.File, error) {
	if name != w.name {
		return w.FS.Open(name)
	}
	return &memFile{Reader: bytes.NewReader(w.content), info: memInfo{name: w.name, size: int64(len(w.content))}}, nil
}

// memFile is an open withFile file; it is an io.ReadSeeker, as
// http.ServeContent wants.
type memFile struct {
	*bytes.Reader
	info memInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

var _ io.ReadSeeker = (*memFile)(nil)

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return path.Base(i.name) }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} } // the server then tags it by content
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
