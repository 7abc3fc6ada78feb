package server

import (
	"context"
	"crypto/tls"
	"hash/maphash"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/bayeux-go/bayeux/internal/realip"
)

// keptHeaders are the upgrade request's headers a WebSocket keeps for
// Client.Request: those that say who the client is. The rest (the
// WebSocket handshake, caching, encodings) would cost every idle socket
// memory for nothing.
var keptHeaders = []string{"Authorization", "Cookie", "Forwarded", "Origin", "User-Agent",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip"}

// sharedHeaders are the kept headers whose values many clients send alike
// (one browser's User-Agent, the site's Origin): their strings are shared
// between sockets (requestIntern.value). The others are per client
// (addresses) or secret (Cookie, Authorization: never in a shared table).
var sharedHeaders = map[string]bool{"Origin": true, "User-Agent": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true}

// keptRequest is what a WebSocket keeps of its upgrade request for
// Client.Request as long as the socket lives, in a compact form: the
// request line and Host (shared by the sockets that sent the same ones),
// RemoteAddr, the kept headers' values, and the client as realip decided
// it (realip.FromRequest). request builds the *http.Request from it when
// one is asked for: an idle socket keeps no http.Request, header map,
// URL or context. It does not change once the socket is open.
type keptRequest struct {
	target     *requestTarget
	remoteAddr string
	// header holds keptHeaders' names and values, in pairs, in the order
	// of the request (several values of one name kept).
	header []string
	client realip.Client
}

// requestTarget is the part of an upgrade request that every socket of a
// server usually shares: the request line and Host.
type requestTarget struct {
	host       string
	requestURI string
	proto      string
	protoMinor int
	url        *url.URL // never handed out: request copies it
}

// keepRequest returns what a WebSocket keeps of r: without body, with
// only keptHeaders (and without Cookie and Authorization when
// !credentials), for the client cl.
func (s *Server) keepRequest(r *http.Request, cl realip.Client, credentials bool) keptRequest {
	n := 0
	for _, k := range keptHeaders {
		if credentials || k != "Cookie" && k != "Authorization" {
			n += len(r.Header[k])
		}
	}
	k := keptRequest{target: s.reqIntern.target(r), remoteAddr: r.RemoteAddr, client: cl}
	if n > 0 {
		k.header = make([]string, 0, 2*n)
	}
	for _, name := range keptHeaders {
		if !credentials && (name == "Cookie" || name == "Authorization") {
			continue
		}
		for _, v := range r.Header[name] {
			if sharedHeaders[name] {
				v = s.reqIntern.value(v)
			}
			k.header = append(k.header, name, v)
		}
	}
	return k
}

// request builds the *http.Request of k, whose connection is conn (the
// hijacked one: it gives the TLS state): a new one at each call, with
// its own header map and URL, and a context that holds only k's client.
func (k *keptRequest) request(conn net.Conn) *http.Request {
	t := k.target
	h := make(http.Header, len(k.header)/2)
	for i := 0; i < len(k.header); i += 2 {
		h[k.header[i]] = append(h[k.header[i]], k.header[i+1])
	}
	u := *t.url
	r := &http.Request{Method: http.MethodGet, URL: &u, Proto: t.proto, ProtoMajor: 1, ProtoMinor: t.protoMinor,
		Header: h, Host: t.host, RemoteAddr: k.remoteAddr, RequestURI: t.requestURI}
	if tc, ok := conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		r.TLS = &cs
	}
	return r.WithContext(realip.NewContext(context.Background(), k.client))
}

// The sizes of requestIntern's tables.
const (
	internTargets = 16
	internValues  = 256
	// internMaxValue: longer header values are not shared.
	internMaxValue = 512
)

// requestIntern shares what the kept requests of WebSockets have in
// common. Each table is direct-mapped: a key hashes to one slot, and a
// miss replaces what the slot held (the sockets that use the old entry
// keep it). Its seed is set by New. The tables never grow and pin at most their slots' entries,
// so that hostile values can only evict others, never pile up; they only
// hold strings the sockets keep anyway. Safe for concurrent use.
type requestIntern struct {
	seed    maphash.Seed
	targets [internTargets]atomic.Pointer[requestTarget]

	mu     sync.Mutex
	values [internValues]string
}

// target returns the shared requestTarget of r's request line and Host.
func (in *requestIntern) target(r *http.Request) *requestTarget {
	var h maphash.Hash
	h.SetSeed(in.seed)
	h.WriteString(r.Host)
	h.WriteByte(0)
	h.WriteString(r.RequestURI)
	slot := &in.targets[h.Sum64()%internTargets]
	if t := slot.Load(); t != nil && t.host == r.Host && t.requestURI == r.RequestURI && t.proto == r.Proto &&
		t.protoMinor == r.ProtoMinor && *t.url == *r.URL {
		return t
	}
	u := *r.URL
	t := &requestTarget{host: r.Host, requestURI: r.RequestURI, proto: r.Proto, protoMinor: r.ProtoMinor, url: &u}
	slot.Store(t)
	return t
}

// value returns v, or an equal string kept already.
func (in *requestIntern) value(v string) string {
	if v == "" || len(v) > internMaxValue {
		return v
	}
	i := maphash.String(in.seed, v) % internValues
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.values[i] == v {
		return in.values[i]
	}
	in.values[i] = v
	return v
}
