package protocol

import "strings"

// Covers reports whether every channel that pattern matches is matched by
// outer as well: a subscription to pattern cannot receive a message that
// a subscription to outer would not. Both are valid channel names or
// patterns (see ValidatePattern). "/a/**" covers "/a/b", "/a/*", "/a/**"
// and "/a/b/**"; "/a/*" covers "/a/b" and "/a/*" but not "/a/**" or
// "/a/b/c"; a plain name covers only itself.
func Covers(outer, pattern string) bool {
	if !IsWild(pattern) {
		return Match(outer, pattern)
	}
	// pattern's channels all start with prefix (which ends in '/').
	deep := strings.HasSuffix(pattern, "/**")
	prefix := strings.TrimRight(pattern, "*")
	switch {
	case strings.HasSuffix(outer, "/**"):
		return strings.HasPrefix(prefix, strings.TrimRight(outer, "*"))
	case strings.HasSuffix(outer, "/*"):
		return !deep && prefix == strings.TrimRight(outer, "*")
	}
	return false
}
