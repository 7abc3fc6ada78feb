package readme

import (
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bayeux-go/bayeux"
)

func TestPage(t *testing.T) {
	md := "# Title\n\n## Quick start\n\nRun `make`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script>\n\nsee https://example.com\n"
	page, err := Page([]byte(md), "/chat/web/chat.css?x=<y>")
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{
		`<h2 id="quick-start">Quick start</h2>`,
		`<code>make</code>`,
		`<table>`,
		`<a href="https://example.com">https://example.com</a>`,
		`<link rel="stylesheet" href="/chat/web/chat.css?x=%3cy%3e">`,
		`<body class="page">`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "<script>") {
		t.Errorf("raw HTML kept:\n%s", s)
	}
}

// TestProjectREADME: the project's README renders, with the section ids
// the landing page links to.
func TestProjectREADME(t *testing.T) {
	page, err := Page(bayeux.README, "/s.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"quick-start", "configuration", "chat-and-login", "embedding", "admin-metrics-and-health",
		"several-nodes-on-redis", "protocol-notes", "using-the-server-as-a-go-library"} {
		if !strings.Contains(string(page), `id="`+id+`"`) {
			t.Errorf("README page has no id %q", id)
		}
	}
}

func TestWithFile(t *testing.T) {
	base := fstest.MapFS{
		"index.html":   {Data: []byte("index")},
		"readme.html":  {Data: []byte("old")},
		"sub/file.txt": {Data: []byte("sub")},
	}
	fsys := WithFile(base, "readme.html", []byte("new page"))
	type testCase struct {
		name, want string
	}
	for _, tc := range []testCase{{"readme.html", "new page"}, {"index.html", "index"}, {"sub/file.txt", "sub"}} {
		b, err := fs.ReadFile(fsys, tc.name)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, b, err, tc.want)
		}
	}
	if _, err := fs.ReadFile(fsys, "missing"); err == nil {
		t.Error("a missing file opened")
	}
	f, err := fsys.Open("readme.html")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Name() != "readme.html" || fi.Size() != 8 || !fi.Mode().IsRegular() || fi.IsDir() {
		t.Errorf("Stat = %v %v", fi, err)
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		t.Fatal("not an io.ReadSeeker")
	}
	if _, err := rs.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(rs); string(rest) != "page" {
		t.Errorf("after Seek(4): %q", rest)
	}
}
