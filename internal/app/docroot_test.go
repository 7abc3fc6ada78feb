package app

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// fetchPage GETs u (following redirects, as a browser does) and returns
// the final status and body.
func fetchPage(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestDefaultDocumentRootLinks: the landing page and the README page of
// the default document root say what the server is, link to the chat,
// the admin and the README's sections, and no link is dead: every local
// link answers 200 (after the login redirect for guarded pages) and every
// #fragment names an element of its page; links off the server are
// well-formed http(s) URLs (the tests have no internet to follow them).
func TestDefaultDocumentRootLinks(t *testing.T) {
	r := start(t, nil)
	base, _ := url.Parse(r.url + "/")
	type testCase struct {
		page      string
		wantText  []string
		wantLinks []string
	}
	for _, tc := range []testCase{
		{page: "/", wantText: []string{"Bayeux", "/cometd"},
			wantLinks: []string{"/chat/", "/admin/", "/readme.html#quick-start", "/readme.html#configuration", "/readme.html#embedding"}},
		{page: "/readme.html", wantText: []string{"Quick start", "BAYEUX_DOCUMENT_ROOT"},
			wantLinks: []string{"/", "/chat/"}},
	} {
		t.Run(tc.page, func(t *testing.T) {
			status, body := fetchPage(t, r.url+tc.page)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d", tc.page, status)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(body, s) {
					t.Errorf("%s does not say %q", tc.page, s)
				}
			}
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			links := map[string]bool{}
			doc.Find("a[href], link[href]").Each(func(_ int, s *goquery.Selection) {
				links[s.AttrOr("href", "")] = true
			})
			for _, l := range tc.wantLinks {
				if !links[l] {
					t.Errorf("%s has no link to %s", tc.page, l)
				}
			}
			if !links["/chat/web/chat.css"] {
				t.Errorf("%s does not use the chat's style sheet", tc.page)
			}
			for href := range links {
				u, err := base.Parse(href)
				switch {
				case err != nil:
					t.Errorf("link %q: %v", href, err)
				case u.Host != base.Host:
					if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
						t.Errorf("link %q is not a well-formed http(s) URL", href)
					}
				default:
					status, target := fetchPage(t, u.String())
					if status != http.StatusOK {
						t.Errorf("link %q: %d", href, status)
					}
					if u.Fragment != "" && !strings.Contains(target, `id="`+u.Fragment+`"`) {
						t.Errorf("link %q: no element with id %q on %s", href, u.Fragment, u.Path)
					}
				}
			}
		})
	}
}

// TestLoginPageStyle: the login page uses the chat's style sheet, which
// the server serves, and keeps its test ids.
func TestLoginPageStyle(t *testing.T) {
	r := start(t, nil)
	status, body := fetchPage(t, r.url+"/login")
	if status != http.StatusOK {
		t.Fatalf("GET /login: %d", status)
	}
	if !strings.Contains(body, `<link rel="stylesheet" href="/chat/web/chat.css">`) {
		t.Errorf("/login does not link the chat's style sheet:\n%s", body)
	}
	resp, err := http.Get(r.url + "/chat/web/chat.css")
	if err != nil {
		t.Fatal(err)
	}
	css, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") ||
		!strings.Contains(string(css), "prefers-color-scheme: dark") || !strings.Contains(string(css), ".form-error") {
		t.Errorf("GET /chat/web/chat.css: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}
