package protocol

import "strings"

// Channel name rules.
//
// A channel name starts with '/', has one or more non-empty segments
// separated by '/', and uses ASCII letters, digits and the characters
// ! # $ ( ) + - . @ _ { } ~ (CometD's set, without '*'). A pattern may
// also end in a wildcard segment: "*" matches exactly one more segment,
// "**" one or more. Wildcards anywhere else are invalid.

// ChannelError describes why a channel name or pattern is invalid.
type ChannelError struct {
	Name   string
	Reason string
}

func (e *ChannelError) Error() string { return "bayeux: invalid channel " + e.Name + ": " + e.Reason }

func validChannelByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '(', ')', '+', '-', '.', '@', '_', '{', '}', '~':
		return true
	}
	return false
}

// ValidateChannel checks a concrete channel name (no wildcards), as used
// for publishing.
func ValidateChannel(name string) error { return validate(name, false) }

// ValidatePattern checks a subscription pattern: a channel name that may
// end in a "*" or "**" segment.
func ValidatePattern(pattern string) error { return validate(pattern, true) }

func validate(name string, wild bool) error {
	if len(name) < 2 || name[0] != '/' {
		return &ChannelError{name, "must start with / and have a segment"}
	}
	segStart := 1
	for i := 1; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		seg := name[segStart:i]
		if seg == "" {
			return &ChannelError{name, "empty segment"}
		}
		if seg == "*" || seg == "**" {
			if !wild {
				return &ChannelError{name, "wildcards are not allowed here"}
			}
			if i != len(name) {
				return &ChannelError{name, "a wildcard must be the last segment"}
			}
		} else {
			for j := 0; j < len(seg); j++ {
				if !validChannelByte(seg[j]) {
					return &ChannelError{name, "invalid character " + quoteByte(seg[j])}
				}
			}
		}
		segStart = i + 1
	}
	return nil
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789abcdef"
	return "0x" + string([]byte{hex[c>>4], hex[c&0xf]})
}

// IsMeta reports whether name is a /meta/** channel (or "/meta" itself).
func IsMeta(name string) bool { return name == "/meta" || strings.HasPrefix(name, "/meta/") }

// IsService reports whether name is a /service/** channel.
func IsService(name string) bool { return name == "/service" || strings.HasPrefix(name, "/service/") }

// IsWild reports whether name ends in a "*" or "**" wildcard segment.
func IsWild(name string) bool {
	return strings.HasSuffix(name, "/*") || strings.HasSuffix(name, "/**")
}

// Match reports whether the channel name matches pattern. A pattern without
// wildcards matches only itself; "/a/*" matches "/a/b" but not "/a" or
// "/a/b/c"; "/a/**" matches "/a/b" and "/a/b/c" but not "/a".
func Match(pattern, name string) bool {
	switch {
	case strings.HasSuffix(pattern, "/**"):
		prefix := pattern[:len(pattern)-2] // keeps the trailing '/'
		return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
	case strings.HasSuffix(pattern, "/*"):
		prefix := pattern[:len(pattern)-1]
		if len(name) <= len(prefix) || !strings.HasPrefix(name, prefix) {
			return false
		}
		return strings.IndexByte(name[len(prefix):], '/') < 0
	default:
		return pattern == name
	}
}

// Wilds appends to dst the wildcard patterns that match the concrete channel
// name, deepest first: for "/a/b/c" they are "/a/b/*", "/a/b/**", "/a/**",
// "/**". Together with name itself these are every subscription that can
// receive a message published on name.
func Wilds(dst []string, name string) []string {
	last := strings.LastIndexByte(name, '/')
	if last < 0 {
		return dst
	}
	dst = append(dst, name[:last+1]+"*")
	for i := last; i >= 0; i-- {
		if name[i] == '/' {
			dst = append(dst, name[:i+1]+"**")
		}
	}
	return dst
}
