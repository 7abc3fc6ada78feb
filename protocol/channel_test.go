package protocol

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestValidateChannelAndPattern(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		in      string
		channel bool // valid as a concrete channel (ValidateChannel)
		pattern bool // valid as a subscription pattern (ValidatePattern)
	}
	long := "/" + strings.Repeat("a", 300)
	tests := []testCase{
		{"one segment", "/a", true, true},
		{"two segments", "/a/b", true, true},
		{"meta", "/meta/connect", true, true},
		{"service", "/service/echo", true, true},
		{"all allowed punctuation", "/a!#$()+-.@_{}~/x", true, true},
		{"digits and case", "/Chat/Room42", true, true},
		{"long name", long, true, true},
		{"single wildcard", "/a/*", false, true},
		{"double wildcard", "/a/**", false, true},
		{"root double wildcard", "/**", false, true},
		{"root single wildcard", "/*", false, true},
		{"deep wildcard", "/a/b/c/**", false, true},
		{"wildcard in the middle", "/a/*/b", false, false},
		{"double wildcard in the middle", "/a/**/b", false, false},
		{"double wildcard first", "/**/a", false, false},
		{"triple star", "/a/***", false, false},
		{"star inside a segment", "/a*", false, false},
		{"star suffix in segment", "/a/b*", false, false},
		{"no leading slash", "a/b", false, false},
		{"empty", "", false, false},
		{"slash only", "/", false, false},
		{"double slash", "//", false, false},
		{"empty inner segment", "/a//b", false, false},
		{"trailing slash", "/a/", false, false},
		{"trailing slash after wildcard", "/a/*/", false, false},
		{"space", "/a b", false, false},
		{"tab", "/a\tb", false, false},
		{"newline", "/a\n", false, false},
		{"NUL", "/a\x00", false, false},
		{"quote", "/a\"b", false, false},
		{"backslash", "/a\\b", false, false},
		{"percent", "/a%20b", false, false},
		{"question mark", "/a?b", false, false},
		{"colon", "/a:b", false, false},
		{"comma", "/a,b", false, false},
		{"unicode letter", "/caf\u00e9", false, false},
		{"unicode wildcard parent", "/\u65e5\u672c/*", false, false},
		{"emoji", "/chat/\U0001F600", false, false},
		{"invalid utf8", "/a\xff", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateChannel(tc.in)
			if (err == nil) != tc.channel {
				t.Errorf("ValidateChannel(%q) = %v, want valid=%v", tc.in, err, tc.channel)
			}
			if err != nil {
				var ce *ChannelError
				if !errors.As(err, &ce) || ce.Name != tc.in || ce.Reason == "" {
					t.Errorf("ValidateChannel(%q) error %#v is not a *ChannelError naming the channel", tc.in, err)
				}
				if !strings.HasPrefix(err.Error(), "bayeux: invalid channel ") {
					t.Errorf("error text %q", err.Error())
				}
			}
			err = ValidatePattern(tc.in)
			if (err == nil) != tc.pattern {
				t.Errorf("ValidatePattern(%q) = %v, want valid=%v", tc.in, err, tc.pattern)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	type testCase struct {
		pattern string
		name    string
		want    bool
	}
	tests := []testCase{
		{"/a", "/a", true},
		{"/a", "/b", false},
		{"/a", "/a/b", false},
		{"/a/b", "/a", false},
		{"/a/*", "/a/b", true},
		{"/a/*", "/a/bcd", true},
		{"/a/*", "/a", false},
		{"/a/*", "/a/b/c", false},
		{"/a/*", "/ab", false},
		{"/a/*", "/ab/c", false},
		{"/a/*", "/b/a", false},
		{"/a/**", "/a/b", true},
		{"/a/**", "/a/b/c", true},
		{"/a/**", "/a/b/c/d/e", true},
		{"/a/**", "/a", false},
		{"/a/**", "/ab", false},
		{"/a/**", "/ab/c", false},
		{"/a/b/**", "/a/b/c", true},
		{"/a/b/**", "/a/c/d", false},
		{"/**", "/a", true},
		{"/**", "/a/b", true},
		{"/**", "/meta/connect", true},
		{"/**", "/x/y/z/w", true},
		{"/*", "/a", true},
		{"/*", "/a/b", false},
		{"/meta/*", "/meta/connect", true},
		{"/service/**", "/service/echo", true},
	}
	for _, tc := range tests {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestWilds(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		want []string
	}
	tests := []testCase{
		{"/a", []string{"/*", "/**"}},
		{"/a/b", []string{"/a/*", "/a/**", "/**"}},
		{"/a/b/c", []string{"/a/b/*", "/a/b/**", "/a/**", "/**"}},
		{"/meta/connect", []string{"/meta/*", "/meta/**", "/**"}},
	}
	for _, tc := range tests {
		if got := Wilds(nil, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("Wilds(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	// Wilds appends to dst and leaves its prefix alone.
	dst := []string{"keep"}
	if got := Wilds(dst, "/a"); !slices.Equal(got, []string{"keep", "/*", "/**"}) {
		t.Errorf("Wilds(dst, /a) = %q", got)
	}
}

// randomChannel returns a valid concrete channel name drawn from a small
// alphabet so that random names and patterns often match.
func randomChannel(r *rand.Rand) string {
	segs := []string{"a", "b", "ab", "c", "meta", "x-1"}
	n := 1 + r.IntN(4)
	var b strings.Builder
	for range n {
		b.WriteByte('/')
		b.WriteString(segs[r.IntN(len(segs))])
	}
	return b.String()
}

func randomPattern(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return randomChannel(r)
	case 1:
		if r.IntN(5) == 0 {
			return "/*"
		}
		return randomChannel(r) + "/*"
	case 2:
		if r.IntN(5) == 0 {
			return "/**"
		}
		return randomChannel(r) + "/**"
	default:
		// A prefix of a channel with a wildcard, to hit near-misses.
		c := randomChannel(r)
		if i := strings.LastIndexByte(c, '/'); i > 0 {
			c = c[:i]
		}
		if r.IntN(2) == 0 {
			return c + "/*"
		}
		return c + "/**"
	}
}

// TestMatchWildsProperty: for valid names and patterns, Match(p, n) holds
// exactly when p == n or p is one of Wilds(n); that is what lets an engine
// find the subscribers of a channel by looking up Wilds.
func TestMatchWildsProperty(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	matches := 0
	for i := 0; i < 50000; i++ {
		n := randomChannel(r)
		p := randomPattern(r)
		if err := ValidateChannel(n); err != nil {
			t.Fatalf("generator made invalid channel %q: %v", n, err)
		}
		if err := ValidatePattern(p); err != nil {
			t.Fatalf("generator made invalid pattern %q: %v", p, err)
		}
		wilds := Wilds(nil, n)
		want := p == n || slices.Contains(wilds, p)
		if got := Match(p, n); got != want {
			t.Fatalf("Match(%q, %q) = %v, but p==n||p in Wilds(n)=%q is %v", p, n, got, wilds, want)
		}
		if want {
			matches++
		}
		for _, w := range wilds {
			if !Match(w, n) {
				t.Fatalf("Wilds(%q) contains %q which does not match it", n, w)
			}
			if err := ValidatePattern(w); err != nil {
				t.Fatalf("Wilds(%q) contains invalid pattern %q", n, w)
			}
			if ValidateChannel(w) == nil {
				t.Fatalf("Wilds(%q) contains non-wildcard %q", n, w)
			}
		}
	}
	if matches < 1000 {
		t.Fatalf("only %d of the random pairs matched; the generator is too sparse", matches)
	}
}

func TestChannelKinds(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name                string
		meta, service, wild bool
	}
	tests := []testCase{
		{"/meta", true, false, false},
		{"/meta/connect", true, false, false},
		{"/meta/*", true, false, true},
		{"/metadata", false, false, false},
		{"/service", false, true, false},
		{"/service/echo", false, true, false},
		{"/services/x", false, false, false},
		{"/service/**", false, true, true},
		{"/chat/room", false, false, false},
		{"/chat/*", false, false, true},
		{"/**", false, false, true},
	}
	for _, tc := range tests {
		if got := IsMeta(tc.name); got != tc.meta {
			t.Errorf("IsMeta(%q) = %v", tc.name, got)
		}
		if got := IsService(tc.name); got != tc.service {
			t.Errorf("IsService(%q) = %v", tc.name, got)
		}
		if got := IsWild(tc.name); got != tc.wild {
			t.Errorf("IsWild(%q) = %v", tc.name, got)
		}
	}
}
