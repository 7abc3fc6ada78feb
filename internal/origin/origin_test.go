package origin

import (
	"slices"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		list    []string
		origin  string
		allowed bool
		listed  bool
	}
	for _, tc := range []testCase{
		{"exact", []string{"https://a.example"}, "https://a.example", true, true},
		{"default https port written in the list", []string{"https://a.example:443"}, "https://a.example", true, true},
		{"default https port sent", []string{"https://a.example"}, "https://a.example:443", true, true},
		{"default http port", []string{"http://a.example"}, "http://a.example:80", true, true},
		{"other scheme", []string{"https://a.example"}, "http://a.example", false, false},
		{"other port", []string{"https://a.example"}, "https://a.example:8443", false, false},
		{"explicit port", []string{"https://a.example:8443"}, "https://a.example:8443", true, true},
		{"https port on http", []string{"http://a.example:443"}, "http://a.example", false, false},
		{"host case", []string{"https://A.Example"}, "https://a.EXAMPLE", true, true},
		{"trailing slash in the list", []string{"https://a.example/"}, "https://a.example", true, true},
		{"other host", []string{"https://a.example"}, "https://b.example", false, false},
		{"suffix is not a match", []string{"https://a.example"}, "https://evil-a.example", false, false},
		{"subdomain is not a match", []string{"https://a.example"}, "https://x.a.example", false, false},
		{"IPv6", []string{"http://[::1]:8080"}, "http://[::1]:8080", true, true},
		{"null origin", []string{"https://a.example"}, "null", false, false},
		{"star", []string{"*"}, "https://any.example", true, false},
		{"star and listed", []string{"*", "https://a.example"}, "https://a.example", true, true},
		{"star and not listed", []string{"*", "https://a.example"}, "https://b.example", true, false},
		{"star allows garbage only without credentials", []string{"*"}, "null", true, false},
		{"empty list", nil, "https://a.example", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseList(tc.list)
			if err != nil {
				t.Fatal(err)
			}
			allowed, listed := l.Match(tc.origin)
			if allowed != tc.allowed || listed != tc.listed {
				t.Errorf("Match(%q) in %q = %v, %v; want %v, %v", tc.origin, tc.list, allowed, listed, tc.allowed, tc.listed)
			}
		})
	}
}

func TestSame(t *testing.T) {
	t.Parallel()
	type testCase struct {
		origin string
		host   string
		secure bool
		want   bool
	}
	for _, tc := range []testCase{
		{"http://chat.example", "chat.example", false, true},
		{"http://chat.example:80", "chat.example", false, true},
		{"https://chat.example", "chat.example", true, true},
		{"https://chat.example", "chat.example:443", true, true},
		{"https://chat.example", "chat.example", false, false}, // scheme differs
		{"http://chat.example", "chat.example", true, false},
		{"http://chat.example:8080", "chat.example:8080", false, true},
		{"http://chat.example:8080", "chat.example:8081", false, false},
		{"http://chat.example", "chat.example:8080", false, false},
		{"http://CHAT.example", "chat.EXAMPLE", false, true},
		{"http://127.0.0.1:4000", "127.0.0.1:4000", false, true},
		{"null", "chat.example", false, false},
		{"http://chat.example", "", false, false},
		{"http://", "", false, false},
	} {
		if got := Same(tc.origin, tc.host, tc.secure); got != tc.want {
			t.Errorf("Same(%q, %q, secure %v) = %v, want %v", tc.origin, tc.host, tc.secure, got, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a.example", "https://a.example/path", "https://a.example?x", "https://user@a.example",
		"https://a.example:0", "https://a.example:99999", "https://*.example", "ftp://a.example", "https://x; script-src *", ""} {
		if _, err := ParseList([]string{s}); err == nil && s != "" {
			t.Errorf("ParseList(%q): no error", s)
		}
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	l, err := ParseList([]string{"https://b.example:443", "*", "http://a.example:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Sources(), []string{"*", "http://a.example:8080", "https://b.example"}; !slices.Equal(got, want) {
		t.Errorf("Sources = %q, want %q", got, want)
	}
}
