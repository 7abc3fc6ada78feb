// Package realip decides, once for the whole process, who sent a request
// and over which scheme: the peer's address and TLS state, or — only when
// the peer is a trusted reverse proxy — what that proxy says in its
// forwarding headers. Every per-IP limit, log line, Secure cookie and
// same-origin check reads its answer (FromRequest), so that a client can
// never pick its own address by sending a header.
//
// Security: headers are believed only from peers inside the trusted
// networks, and only one family of them (X-Forwarded-For and
// X-Forwarded-Proto, or RFC 7239 Forwarded), so that a header a proxy
// passes through untouched cannot be used to spoof. The client is the
// right-most address of the chain that is not itself a trusted proxy.
package realip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Header families a proxy may use to say who its client was.
const (
	// XForwarded is X-Forwarded-For (the address chain, appended to by
	// each proxy) with X-Forwarded-Proto (http or https): what nginx,
	// Caddy, HAProxy and most load balancers send.
	XForwarded = "x-forwarded"
	// Forwarded is RFC 7239's Forwarded header (for= and proto=).
	Forwarded = "forwarded"
)

// Client is what the server knows of the client behind a request.
type Client struct {
	// IP is the client's address without port (IPv4-mapped addresses
	// in their IPv4 form), or the peer's RemoteAddr as is when it is not
	// an IP address (a Unix socket, a test).
	IP string
	// Secure is true when the client reached the server over HTTPS:
	// TLS on this connection, or the scheme a trusted proxy reports.
	Secure bool
	// Forwarded is true when IP (or Secure) came from a trusted proxy's
	// headers rather than from the connection.
	Forwarded bool
	// Ignored is true when an untrusted peer sent forwarding headers
	// (which were not believed): useful to tell an operator that a
	// proxy is not in the trusted list.
	Ignored bool
}

// Proxies are the trusted reverse proxies. A nil *Proxies trusts nobody:
// every request is taken from its connection. It is safe for concurrent
// use and must not be changed after New.
type Proxies struct {
	nets    []netip.Prefix
	rfc7239 bool
}

// New returns the proxies in cidrs (CIDR prefixes such as 10.0.0.0/8, or
// single addresses), whose forwarding headers of the given family
// (XForwarded, the default when "", or Forwarded) are believed.
func New(cidrs []string, header string) (*Proxies, error) {
	p := &Proxies{}
	switch strings.ToLower(strings.TrimSpace(header)) {
	case "", XForwarded:
	case Forwarded:
		p.rfc7239 = true
	default:
		return nil, fmt.Errorf("realip: unknown header family %q (want %s or %s)", header, XForwarded, Forwarded)
	}
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if pf, err := netip.ParsePrefix(c); err == nil {
			p.nets = append(p.nets, pf.Masked())
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			return nil, fmt.Errorf("realip: %q is neither a CIDR prefix nor an IP address", c)
		}
		a = a.Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// Trusted reports whether ip is a trusted proxy.
func (p *Proxies) Trusted(ip netip.Addr) bool {
	if p == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// TrustedAddr reports whether the network address addr (host:port, as a
// net.Conn's RemoteAddr gives it) is a trusted proxy.
func (p *Proxies) TrustedAddr(addr net.Addr) bool {
	if p == nil || addr == nil {
		return false
	}
	if ta, ok := addr.(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return p.Trusted(a)
	}
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && p.Trusted(ap.Addr())
}

type ctxKey struct{}

// NewContext returns ctx carrying c, which FromRequest then returns for
// requests with that context.
func NewContext(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the Client stored by NewContext or Attach.
func FromContext(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(ctxKey{}).(Client)
	return c, ok
}

// FromRequest returns the client of r: the one Attach decided, or, for a
// request that did not pass through Attach, r's own connection (no proxy
// trusted).
func FromRequest(r *http.Request) Client {
	var p *Proxies
	return p.Client(r)
}

// Attach returns r with its Client decided and stored in its context
// (r itself when that was done already), so that every handler after it
// reads the same answer with FromRequest.
func (p *Proxies) Attach(r *http.Request) (*http.Request, Client) {
	if c, ok := FromContext(r.Context()); ok {
		return r, c
	}
	c := p.resolve(r)
	return r.WithContext(NewContext(r.Context(), c)), c
}

// Client returns r's client: the one stored by Attach, else decided now.
func (p *Proxies) Client(r *http.Request) Client {
	if c, ok := FromContext(r.Context()); ok {
		return c
	}
	return p.resolve(r)
}

// resolve decides r's client from its connection and, when the peer is
// trusted, from the forwarding headers.
func (p *Proxies) resolve(r *http.Request) Client {
	c := Client{IP: r.RemoteAddr, Secure: r.TLS != nil}
	// The host part as is (no allocation), unless it needs normalising.
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		c.IP = host
	}
	peer, err := netip.ParseAddr(c.IP)
	if err != nil {
		return c // not an IP address: nothing to trust
	}
	if peer.Is4In6() || peer.Zone() != "" {
		peer = peer.Unmap().WithZone("")
		c.IP = peer.String()
	}
	if !p.Trusted(peer) {
		c.Ignored = hasForwarding(r.Header)
		return c
	}
	var hops []hop
	if p.rfc7239 {
		hops = forwardedHops(r.Header.Values("Forwarded"))
	} else {
		hops = xForwardedHops(r.Header.Values("X-Forwarded-For"), r.Header.Values("X-Forwarded-Proto"))
	}
	// Right to left: the first hop that is not a trusted proxy is the
	// client; if every hop is trusted, the left-most one is.
	chosen := -1
	for i := len(hops) - 1; i >= 0; i-- {
		if !hops[i].addr.IsValid() {
			break // garbage: stop at the last good hop
		}
		chosen = i
		if !p.Trusted(hops[i].addr) {
			break
		}
	}
	if chosen < 0 {
		// A trusted proxy that forwarded no usable address: the
		// request is its own (a health check), but it may still say
		// the scheme.
		if len(hops) > 0 && hops[len(hops)-1].proto != "" {
			c.Secure = isHTTPS(hops[len(hops)-1].proto)
			c.Forwarded = true
		}
		return c
	}
	h := hops[chosen]
	c.IP = h.addr.String()
	c.Forwarded = true
	if h.proto != "" {
		c.Secure = isHTTPS(h.proto)
	}
	return c
}

// hop is one step of a forwarding chain: the address a proxy saw and the
// scheme it was reached over ("" when not said).
type hop struct {
	addr  netip.Addr
	proto string
}

// xForwardedHops reads X-Forwarded-For (every header line, comma-separated,
// left to right) and X-Forwarded-Proto. A proto list as long as the
// address list is matched hop by hop; otherwise its right-most value (the
// one the nearest proxy set) is the scheme of every hop.
func xForwardedHops(forFields, protoFields []string) []hop {
	addrs := splitList(forFields)
	protos := splitList(protoFields)
	if len(addrs) == 0 {
		if len(protos) > 0 {
			return []hop{{proto: protos[len(protos)-1]}}
		}
		return nil
	}
	hops := make([]hop, len(addrs))
	for i, a := range addrs {
		hops[i].addr = parseNode(a)
		switch {
		case len(protos) == len(addrs):
			hops[i].proto = protos[i]
		case len(protos) > 0:
			hops[i].proto = protos[len(protos)-1]
		}
	}
	return hops
}

// forwardedHops reads RFC 7239 Forwarded elements left to right.
func forwardedHops(fields []string) []hop {
	var hops []hop
	for _, f := range fields {
		for _, elem := range splitQuoted(f, ',') {
			var h hop
			for _, pair := range splitQuoted(elem, ';') {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				v = strings.Trim(strings.TrimSpace(v), `"`)
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "for":
					h.addr = parseNode(v)
				case "proto":
					h.proto = v
				}
			}
			hops = append(hops, h)
		}
	}
	return hops
}

// parseNode parses an address as proxies write it: 192.0.2.1,
// 192.0.2.1:4711, 2001:db8::1, [2001:db8::1] or [2001:db8::1]:4711. An
// obfuscated or unknown node gives the zero Addr.
func parseNode(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// splitList splits comma-separated header lines into trimmed values.
func splitList(fields []string) []string {
	var out []string
	for _, f := range fields {
		for v := range strings.SplitSeq(f, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func isHTTPS(proto string) bool {
	return strings.EqualFold(proto, "https") || strings.EqualFold(proto, "wss")
}

func hasForwarding(h http.Header) bool {
	return len(h["X-Forwarded-For"]) > 0 || len(h["X-Forwarded-Proto"]) > 0 || len(h["Forwarded"]) > 0
}
