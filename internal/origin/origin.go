// Package origin parses and compares web origins (scheme://host[:port]) as
// browsers do: scheme, host and port must all be equal, a default port
// (80 for http, 443 for https) is the same as none, and host names are
// compared without regard to case. It is used for CORS
// (BAYEUX_ALLOWED_ORIGINS), for framing (BAYEUX_EMBED_ORIGINS) and for
// the same-origin test of a request.
package origin

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Origin is a parsed, normalised origin. The zero value matches nothing.
type Origin struct {
	Scheme string // lower case
	Host   string // lower case; an IPv6 address without brackets
	Port   int    // always set: the default port when none was written
}

// defaultPorts are the ports a scheme implies.
var defaultPorts = map[string]int{"http": 80, "https": 443, "ws": 80, "wss": 443}

// Parse parses s as an origin: scheme://host with an optional :port (a
// trailing "/" is tolerated). Paths, queries, user info, the opaque
// "null" origin and schemes without a known default port and without an
// explicit port are refused.
func Parse(s string) (Origin, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Origin{}, fmt.Errorf("origin %q: %w", s, err)
	}
	if u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return Origin{}, fmt.Errorf("origin %q: want scheme://host[:port]", s)
	}
	o := Origin{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Hostname())}
	if o.Host == "" || strings.ContainsAny(o.Host, " *,;'\"\t\r\n") {
		return Origin{}, fmt.Errorf("origin %q: invalid host", s)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Origin{}, fmt.Errorf("origin %q: invalid port", s)
		}
		o.Port = n
	} else if n, ok := defaultPorts[o.Scheme]; ok {
		o.Port = n
	} else {
		return Origin{}, fmt.Errorf("origin %q: no port and no default port for %s", s, o.Scheme)
	}
	return o, nil
}

// String returns the origin as a browser sends it: the port only when it
// is not the scheme's default.
func (o Origin) String() string {
	host := o.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if defaultPorts[o.Scheme] == o.Port {
		return o.Scheme + "://" + host
	}
	return o.Scheme + "://" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}

// OfRequest returns the origin a request was made to: https when secure
// (TLS, or a trusted proxy said so; see internal/realip), else http, and
// host the request's Host header.
func OfRequest(host string, secure bool) (Origin, error) {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	return Parse(scheme + "://" + host)
}

// Same reports whether the Origin header value origin is the origin of a
// request to host over secure (or not).
func Same(origin, host string, secure bool) bool {
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	if host != "" && len(origin) == len(scheme)+len(host) && strings.HasPrefix(origin, scheme) && origin[len(scheme):] == host {
		return true // what browsers send for a same-origin request
	}
	o, err := Parse(origin)
	if err != nil {
		return false
	}
	self, err := OfRequest(host, secure)
	return err == nil && o == self
}

// List is a set of allowed origins, and "*" for any. It is safe for
// concurrent use once built.
type List struct {
	any    bool
	listed map[Origin]bool
}

// ParseList parses origins ("*" allows any origin). Empty entries are
// skipped; an invalid one is an error naming it.
func ParseList(origins []string) (*List, error) {
	l := &List{listed: make(map[Origin]bool)}
	for _, s := range origins {
		s = strings.TrimSpace(s)
		switch s {
		case "":
			continue
		case "*":
			l.any = true
			continue
		}
		o, err := Parse(s)
		if err != nil {
			return nil, err
		}
		l.listed[o] = true
	}
	return l, nil
}

// Match says whether origin is allowed, and whether it is listed by name
// (listed) or allowed only by "*" (then it must not be given
// credentials).
func (l *List) Match(origin string) (allowed, listed bool) {
	if l == nil {
		return false, false
	}
	if o, err := Parse(origin); err == nil && l.listed[o] {
		return true, true
	}
	return l.any, false
}

// Any reports whether "*" is in the list.
func (l *List) Any() bool { return l != nil && l.any }

// Empty reports whether the list allows nothing.
func (l *List) Empty() bool { return l == nil || (!l.any && len(l.listed) == 0) }

// Sources returns the list as normalised origins ("*" first when
// present), for a Content-Security-Policy source list.
func (l *List) Sources() []string {
	if l == nil {
		return nil
	}
	var out []string
	if l.any {
		out = append(out, "*")
	}
	for o := range l.listed {
		out = append(out, o.String())
	}
	// Stable output: sort all but a leading "*".
	if l.any {
		slices.Sort(out[1:])
	} else {
		slices.Sort(out)
	}
	return out
}
