package chatui

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// show writes spans with links in ⟨⟩, for readable expectations.
func show(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		if s.link {
			b.WriteString("⟨" + s.text + "⟩")
		} else {
			b.WriteString(s.text)
		}
	}
	return b.String()
}

func TestLinkify(t *testing.T) {
	type testCase struct {
		name string
		in   string
		want string // links in ⟨⟩
	}
	const n = 1 << 20 // long inputs: linkify must stay linear
	for _, tc := range []testCase{
		{"empty", "", ""},
		{"plain", "no links here, only text.", "no links here, only text."},
		{"alone", "https://example.com", "⟨https://example.com⟩"},
		{"http", "http://example.com/a/b?c=d&e=f#g", "⟨http://example.com/a/b?c=d&e=f#g⟩"},
		{"in a sentence", "see https://example.com/docs for more", "see ⟨https://example.com/docs⟩ for more"},
		{"two", "http://a.example and https://b.example/x.", "⟨http://a.example⟩ and ⟨https://b.example/x⟩."},
		{"port and escapes", "http://127.0.0.1:8080/p?q=a%20b&r=1", "⟨http://127.0.0.1:8080/p?q=a%20b&r=1⟩"},

		// Trailing punctuation belongs to the sentence.
		{"full stop", "go to https://example.com.", "go to ⟨https://example.com⟩."},
		{"ellipsis", "https://example.com...", "⟨https://example.com⟩..."},
		{"comma", "https://example.com/a, then", "⟨https://example.com/a⟩, then"},
		{"question", "did you see https://example.com/?", "did you see ⟨https://example.com/⟩?"},
		{"colon and exclamation", "https://example.com/x:! ok", "⟨https://example.com/x⟩:! ok"},
		{"quotes", `"https://example.com/q"`, `"⟨https://example.com/q⟩"`},
		{"single quotes", "'https://example.com/q'", "'⟨https://example.com/q⟩'"},
		{"apostrophe inside", "https://example.com/it's", "⟨https://example.com/it's⟩"},
		{"emphasis", "*https://example.com/a_b_*", "*⟨https://example.com/a_b⟩_*"},
		{"angle brackets", "<https://example.com/a>", "<⟨https://example.com/a⟩>"},
		{"ideographic full stop", "https://例え.jp/パス。", "⟨https://例え.jp/パス⟩。"},

		// Parentheses and brackets: balanced ones are part of the URL.
		{"wrapped in parentheses", "(see https://example.com/a)", "(see ⟨https://example.com/a⟩)"},
		{"wikipedia", "https://en.wikipedia.org/wiki/Go_(programming_language)", "⟨https://en.wikipedia.org/wiki/Go_(programming_language)⟩"},
		{"wikipedia in parentheses", "(https://en.wikipedia.org/wiki/Go_(lang)).", "(⟨https://en.wikipedia.org/wiki/Go_(lang)⟩)."},
		{"brackets", "[https://example.com/a]", "[⟨https://example.com/a⟩]"},
		{"balanced brackets", "https://example.com/a[1]", "⟨https://example.com/a[1]⟩"},

		// Only http and https, in any case, at a word boundary.
		{"uppercase", "HTTPS://EXAMPLE.COM/A", "⟨HTTPS://EXAMPLE.COM/A⟩"},
		{"mixed case", "HtTp://Example.com", "⟨HtTp://Example.com⟩"},
		{"javascript", "javascript:alert(1)", "javascript:alert(1)"},
		{"javascript uppercase", "JAVASCRIPT:alert(document.cookie)", "JAVASCRIPT:alert(document.cookie)"},
		{"javascript with slashes", "javascript://%0Aalert(1)", "javascript://%0Aalert(1)"},
		{"javascript around a URL", "javascript:alert('https://x.example')", "javascript:alert('⟨https://x.example⟩')"},
		{"data", "data:text/html,<script>alert(1)</script>", "data:text/html,<script>alert(1)</script>"},
		{"vbscript and file", "vbscript:msgbox file:///etc/passwd ftp://x.example", "vbscript:msgbox file:///etc/passwd ftp://x.example"},
		{"scheme glued to a word", "xhttps://example.com", "xhttps://example.com"},
		{"scheme glued to a digit", "1http://example.com", "1http://example.com"},
		{"scheme glued to a letter", "éhttps://example.com", "éhttps://example.com"},
		{"after punctuation", "x:https://example.com", "x:⟨https://example.com⟩"},
		{"scheme without slashes", "http:example.com", "http:example.com"},

		// A host with a letter or digit is needed.
		{"scheme only", "http://", "http://"},
		{"scheme and dot", "https://.", "https://."},
		{"empty host", "http:///etc/passwd", "http:///etc/passwd"},
		{"empty host query", "https://?q=1", "https://?q=1"},
		{"after an empty host", "http:// https://example.com", "http:// ⟨https://example.com⟩"},

		// Internationalised names stay as typed; the browser encodes them.
		{"IDN", "https://bücher.example/straße?q=ü", "⟨https://bücher.example/straße?q=ü⟩"},
		{"punycode", "https://xn--bcher-kva.example/", "⟨https://xn--bcher-kva.example/⟩"},

		// What ends a URL: spaces, controls, format characters, < > " `.
		{"markup after", "https://example.com/<img src=x onerror=alert(1)>", "⟨https://example.com/⟩<img src=x onerror=alert(1)>"},
		{"tab", "https://example.com/a\tb", "⟨https://example.com/a⟩\tb"},
		{"newline", "https://example.com/a\nhttps://example.org", "⟨https://example.com/a⟩\n⟨https://example.org⟩"},
		{"no-break space", "https://example.com\u00a0next", "⟨https://example.com⟩\u00a0next"},
		{"ideographic space", "https://example.com\u3000next", "⟨https://example.com⟩\u3000next"},
		{"bidi override", "https://example.com/\u202egnp.exe", "⟨https://example.com/⟩\u202egnp.exe"},
		{"zero-width space", "https://exam\u200bple.com", "⟨https://exam⟩\u200bple.com"},
		{"backtick", "`https://example.com`", "`⟨https://example.com⟩`"},
		{"invalid UTF-8", "https://example.com/\xff\xfe", "⟨https://example.com/⟩\xff\xfe"},

		// Long inputs (run time linear in the length; see the benchmark).
		{"long plain", strings.Repeat("a", n), strings.Repeat("a", n)},
		{"many h", strings.Repeat("h", n), strings.Repeat("h", n)},
		{"many empty hosts", strings.Repeat("https:// ", n/9), strings.Repeat("https:// ", n/9)},
		{"many schemes", strings.Repeat("http://", n/7), "⟨" + strings.Repeat("http://", n/7) + "⟩"},
		{"deep parentheses", strings.Repeat("(", n/2) + "https://x.example" + strings.Repeat(")", n/2),
			strings.Repeat("(", n/2) + "⟨https://x.example⟩" + strings.Repeat(")", n/2)},
		{"long punctuation tail", "https://x.example" + strings.Repeat(".", n), "⟨https://x.example⟩" + strings.Repeat(".", n)},
		{"many links", strings.Repeat("https://x.example ", n/18), strings.Repeat("⟨https://x.example⟩ ", n/18)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := linkify(tc.in)
			if s := show(got); s != tc.want {
				if len(s) > 200 {
					s, tc.want = s[:200]+"…", tc.want[:min(200, len(tc.want))]+"…"
				}
				t.Errorf("linkify(%.80q)\n got %q\nwant %q", tc.in, s, tc.want)
			}
			checkSpans(t, tc.in, got)
		})
	}
}

// checkSpans asserts what every result of linkify must be: the spans
// give back the text, links are http(s) URLs at a word boundary without
// a character that ends a URL, and plain spans are never adjacent.
func checkSpans(t *testing.T, in string, spans []span) {
	t.Helper()
	var b strings.Builder
	for i, s := range spans {
		pos := b.Len()
		b.WriteString(s.text)
		if i > 0 && !s.link && !spans[i-1].link {
			t.Errorf("adjacent plain spans at %d", pos)
		}
		if !s.link {
			continue
		}
		if schemeLen(s.text) == 0 || !wordBoundary(in[:pos]) {
			t.Errorf("link %.80q at %d is not an http(s) URL at a word boundary", s.text, pos)
		}
		for j, r := range s.text {
			if endsURL(r, utf8.RuneLen(r)) || (r == utf8.RuneError && !utf8.FullRuneInString(s.text[j:])) {
				t.Errorf("link %.80q holds %q", s.text, r)
			}
		}
		if last := s.text[len(s.text)-1]; strings.IndexByte(".,:;!?'*_~", last) >= 0 {
			t.Errorf("link %.80q ends with punctuation", s.text)
		}
	}
	if b.String() != in {
		t.Errorf("spans give back %.80q, not the text", b.String())
	}
}

func FuzzLinkify(f *testing.F) {
	for _, s := range []string{"see https://example.com/a_(b)).", "javascript:alert(1)", "HTTP://X.Y/é。", "http:// http://", "(https://x)]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkSpans(t, in, linkify(in))
	})
}

// BenchmarkLinkify shows linkify's time grows linearly with the input:
// ns/op per KB stays the same from 1 KB to 1 MB for every shape.
func BenchmarkLinkify(b *testing.B) {
	shapes := map[string]string{
		"text":   "just some words without any address in them at all ",
		"links":  "look at https://example.com/a_(b) and (http://x.example/y). ",
		"scheme": "http://",
		"empty":  "https:// ",
		"parens": "((((((((",
	}
	for name, unit := range shapes {
		for _, size := range []int{1 << 10, 1 << 14, 1 << 20} {
			in := strings.Repeat(unit, size/len(unit)+1)[:size]
			b.Run(name+"/"+byteSize(size), func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					linkify(in)
				}
			})
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MB"
	}
	return strconv.Itoa(n>>10) + "KB"
}
