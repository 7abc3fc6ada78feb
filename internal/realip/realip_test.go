package realip

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClient(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		trusted []string
		family  string
		remote  string
		tls     bool
		hdr     map[string][]string
		want    Client
	}
	xff := func(v ...string) map[string][]string { return map[string][]string{"X-Forwarded-For": v} }
	for _, tc := range []testCase{
		{name: "no proxies", remote: "203.0.113.9:5000", want: Client{IP: "203.0.113.9"}},
		{name: "TLS connection", remote: "203.0.113.9:5000", tls: true, want: Client{IP: "203.0.113.9", Secure: true}},
		{name: "untrusted peer's header ignored", remote: "203.0.113.9:5000", hdr: map[string][]string{
			"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}}, want: Client{IP: "203.0.113.9", Ignored: true}},
		{name: "untrusted peer with trusted list", trusted: []string{"10.0.0.0/8"}, remote: "203.0.113.9:5000",
			hdr: xff("1.2.3.4"), want: Client{IP: "203.0.113.9", Ignored: true}},
		{name: "trusted proxy", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr:  map[string][]string{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"https"}},
			want: Client{IP: "198.51.100.7", Secure: true, Forwarded: true}},
		{name: "spoofed left entries skipped", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: xff("6.6.6.6, 198.51.100.7"), want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "chain of trusted proxies", trusted: []string{"10.0.0.0/8", "192.168.0.0/16"}, remote: "10.1.2.3:5000",
			hdr: xff("6.6.6.6, 198.51.100.7", "192.168.1.1"), want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "all trusted: left-most", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: xff("10.9.9.9, 10.8.8.8"), want: Client{IP: "10.9.9.9", Forwarded: true}},
		{name: "garbage left of client ignored", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: xff("nonsense, 198.51.100.7"), want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "garbage right-most: the peer", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: xff("198.51.100.7, unknown"), want: Client{IP: "10.1.2.3"}},
		{name: "address with port", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: xff("198.51.100.7:4444"), want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "IPv6 proxy and client", trusted: []string{"fd00::/8"}, remote: "[fd00::1]:5000",
			hdr: xff("2001:db8::5"), want: Client{IP: "2001:db8::5", Forwarded: true}},
		{name: "single address trusted", trusted: []string{"127.0.0.1"}, remote: "127.0.0.1:5000",
			hdr: xff("198.51.100.7"), want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "mapped IPv4 peer", trusted: []string{"127.0.0.1/32"}, remote: "[::ffff:127.0.0.1]:5000",
			hdr: xff("198.51.100.7"), want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "proto aligned with chain", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr:  map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7"}, "X-Forwarded-Proto": {"https, http"}},
			want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "proto only from trusted proxy", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: map[string][]string{"X-Forwarded-Proto": {"https"}}, want: Client{IP: "10.1.2.3", Secure: true, Forwarded: true}},
		{name: "x-forwarded family ignores Forwarded", trusted: []string{"10.0.0.0/8"}, remote: "10.1.2.3:5000",
			hdr: map[string][]string{"Forwarded": {"for=1.2.3.4;proto=https"}}, want: Client{IP: "10.1.2.3"}},
		{name: "Forwarded", trusted: []string{"10.0.0.0/8"}, family: Forwarded, remote: "10.1.2.3:5000",
			hdr:  map[string][]string{"Forwarded": {`for=6.6.6.6;proto=http, for="[2001:db8::7]:4711";proto=https;by=10.1.2.3`}},
			want: Client{IP: "2001:db8::7", Secure: true, Forwarded: true}},
		{name: "Forwarded family ignores X-Forwarded-For", trusted: []string{"10.0.0.0/8"}, family: Forwarded, remote: "10.1.2.3:5000",
			hdr:  map[string][]string{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=198.51.100.7"}},
			want: Client{IP: "198.51.100.7", Forwarded: true}},
		{name: "Forwarded obfuscated node", trusted: []string{"10.0.0.0/8"}, family: Forwarded, remote: "10.1.2.3:5000",
			hdr: map[string][]string{"Forwarded": {"for=_hidden"}}, want: Client{IP: "10.1.2.3"}},
		{name: "not an IP peer", remote: "pipe", want: Client{IP: "pipe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.trusted, tc.family)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tc.hdr {
				r.Header[k] = v
			}
			if got := p.Client(r); got != tc.want {
				t.Errorf("Client = %+v, want %+v", got, tc.want)
			}
			// Attach stores the same answer for FromRequest.
			r2, c := p.Attach(r)
			if c != tc.want || FromRequest(r2) != tc.want {
				t.Errorf("Attach: %+v, FromRequest %+v, want %+v", c, FromRequest(r2), tc.want)
			}
		})
	}
}

// A request that did not pass through Attach is its own connection's.
func TestFromRequestWithoutAttach(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.1.2.3:4000"
	r.Header.Set("X-Forwarded-For", "1.2.3.4")
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := FromRequest(r); got.IP != "10.1.2.3" || got.Secure {
		t.Errorf("FromRequest = %+v, want the peer, not secure", got)
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cidrs  []string
		family string
	}{
		{[]string{"10.0.0.0/33"}, ""},
		{[]string{"proxy.example"}, ""},
		{nil, "x-real-ip"},
	} {
		if _, err := New(tc.cidrs, tc.family); err == nil {
			t.Errorf("New(%q, %q): no error", tc.cidrs, tc.family)
		}
	}
}

func TestTrustedAddr(t *testing.T) {
	t.Parallel()
	p, _ := New([]string{"127.0.0.0/8"}, "")
	if !p.TrustedAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}) {
		t.Error("127.0.0.1 not trusted")
	}
	if p.TrustedAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}) {
		t.Error("192.0.2.1 trusted")
	}
	var none *Proxies
	if none.Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil Proxies trusts")
	}
}

func BenchmarkClientDirect(b *testing.B) {
	p, _ := New([]string{"10.0.0.0/8"}, "")
	r := httptest.NewRequest(http.MethodPost, "/cometd", nil)
	r.RemoteAddr = "203.0.113.9:5000"
	b.ReportAllocs()
	for b.Loop() {
		if p.Client(r).IP != "203.0.113.9" {
			b.Fatal("wrong IP")
		}
	}
}
