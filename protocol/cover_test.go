package protocol

import "testing"

func TestCovers(t *testing.T) {
	type testCase struct {
		outer, pattern string
		want           bool
	}
	for _, tc := range []testCase{
		{"/chat/support", "/chat/support", true},
		{"/chat/support", "/chat/other", false},
		{"/chat/support", "/chat/*", false},
		{"/chat/support", "/chat/support/*", false},
		{"/chat/*", "/chat/support", true},
		{"/chat/*", "/chat/*", true},
		{"/chat/*", "/chat/**", false},
		{"/chat/*", "/chat/a/b", false},
		{"/chat/*", "/chat/a/*", false},
		{"/chat/*", "/**", false},
		{"/chat/*", "/*", false},
		{"/chat/**", "/chat/a", true},
		{"/chat/**", "/chat/a/b", true},
		{"/chat/**", "/chat/*", true},
		{"/chat/**", "/chat/**", true},
		{"/chat/**", "/chat/a/**", true},
		{"/chat/**", "/chat", false},
		{"/chat/**", "/chats/a", false},
		{"/chat/**", "/chatty/*", false},
		{"/chat/**", "/**", false},
		{"/chat/**", "/*", false},
		{"/**", "/**", true},
		{"/**", "/a/*", true},
		{"/*", "/**", false},
		{"/*", "/a", true},
		{"/*", "/a/b", false},
	} {
		if got := Covers(tc.outer, tc.pattern); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.outer, tc.pattern, got, tc.want)
		}
	}
}

// FuzzCovers checks Covers against Match: when outer covers a pattern,
// every channel the pattern matches is matched by outer.
func FuzzCovers(f *testing.F) {
	f.Add("/a/**", "/a/*", "/a/b")
	f.Add("/a/*", "/a/b", "/a/b")
	f.Fuzz(func(t *testing.T, outer, pattern, channel string) {
		if ValidatePattern(outer) != nil || ValidatePattern(pattern) != nil || ValidateChannel(channel) != nil {
			return
		}
		if Covers(outer, pattern) && Match(pattern, channel) && !Match(outer, channel) {
			t.Fatalf("Covers(%q, %q) but %q matches only the pattern", outer, pattern, channel)
		}
	})
}
