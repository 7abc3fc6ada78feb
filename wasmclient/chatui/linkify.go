package chatui

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// span is a piece of a chat text: plain text, or an http(s) URL that the
// page shows as a link whose address is the text itself.
type span struct {
	text string
	link bool
}

// linkify splits a chat text into plain text and links. Only http:// and
// https:// URLs (scheme in any case) become links; nothing else does, so
// javascript:, data: and other schemes stay text. A URL starts at a word
// boundary (not after a letter or digit) and needs a letter or digit in
// its host; it ends before white space, a control or format character
// (bidi overrides, zero-width spaces), < > " or `, and then loses trailing
// punctuation (. , : ; ! ? ' * _ ~ and non-ASCII punctuation such as 。)
// and closing ) or ] that have no opening one inside it, so that
// "(see https://example.com/a_(b))." links https://example.com/a_(b).
//
// The text is untrusted: the caller must render every span as text (the
// link's text and address are the same string), never as HTML. linkify
// runs in time linear in len(text): each byte is looked at a bounded
// number of times.
func linkify(text string) []span {
	var out []span
	plain := 0 // start of the plain text not yet emitted
	for i := 0; i < len(text); {
		c := text[i]
		if c != 'h' && c != 'H' {
			i++
			continue
		}
		n := schemeLen(text[i:])
		if n == 0 || !wordBoundary(text[:i]) {
			i++
			continue
		}
		end, ok := urlEnd(text, i, i+n)
		if !ok {
			i = end // nothing up to end can start a URL (see urlEnd)
			continue
		}
		if plain < i {
			out = append(out, span{text: text[plain:i]})
		}
		out = append(out, span{text: text[i:end], link: true})
		plain, i = end, end
	}
	if plain < len(text) || len(out) == 0 {
		out = append(out, span{text: text[plain:]})
	}
	return out
}

// schemeLen returns the length of an http:// or https:// prefix of s
// (any case), or 0.
func schemeLen(s string) int {
	for _, p := range [...]string{"http://", "https://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return len(p)
		}
	}
	return 0
}

// wordBoundary reports whether a URL may start after before: it is empty
// or ends with a character that is neither a letter nor a digit.
func wordBoundary(before string) bool {
	r, _ := utf8.DecodeLastRuneInString(before)
	return before == "" || !(unicode.IsLetter(r) || unicode.IsDigit(r))
}

// urlEnd finds the end of the URL whose scheme is text[start:host]. ok is
// false when its host has no letter or digit; end is then where the host
// stopped, and no URL starts before it (the host has no 'h').
func urlEnd(text string, start, host int) (end int, ok bool) {
	var open, close [2]int // ( ) and [ ]
	inHost := true
	i := host
	for i < len(text) {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		if endsURL(r, size) {
			break
		}
		switch r {
		case '/', '?', '#':
			if inHost {
				if !ok {
					return i, false
				}
				inHost = false
			}
		case '(':
			open[0]++
		case ')':
			close[0]++
		case '[':
			open[1]++
		case ']':
			close[1]++
		default:
			if inHost && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				ok = true
			}
		}
		i += size
	}
	if !ok {
		return i, false
	}
	// Trailing punctuation and unbalanced closers belong to the sentence.
	// A letter or digit of the host is never trimmed, so the URL keeps one.
	for i > host {
		r, size := utf8.DecodeLastRuneInString(text[start:i])
		switch {
		case r == ')' && close[0] > open[0]:
			close[0]--
		case r == ']' && close[1] > open[1]:
			close[1]--
		case r < utf8.RuneSelf && strings.IndexRune(".,:;!?'*_~", r) >= 0:
		case r >= utf8.RuneSelf && unicode.IsPunct(r):
		default:
			return i, true
		}
		i -= size
	}
	return i, true
}

// endsURL reports whether r (of size bytes; an invalid byte has r
// RuneError and size 1) cannot be part of a URL.
func endsURL(r rune, size int) bool {
	switch {
	case r <= ' ' || r == 0x7f:
		return true
	case r < utf8.RuneSelf:
		return strings.IndexRune("<>\"`", r) >= 0
	case r == utf8.RuneError && size == 1:
		return true
	}
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
