package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/internal/origin"
	"github.com/bayeux-go/bayeux/internal/realip"
	"github.com/bayeux-go/bayeux/protocol"
)

const (
	transportLocal = "local"
	// BrowserCookie is the cookie that identifies a browser, as in CometD.
	BrowserCookie = "BAYEUX_BROWSER"
)

// jsonpName is what a callback-polling callback may be called: a plain
// JavaScript identifier, so that the response can only call a global
// function (no member access such as opener.x, no expression).
var jsonpName = regexp.MustCompile(`^[a-zA-Z_$][a-zA-Z0-9_$]{0,63}$`)

// ServeHTTP implements the long-polling (POST, JSON body or form-encoded
// message= parameters), callback-polling (GET with message= and jsonp=)
// and websocket (GET upgrade) transports. Mount it on /cometd and its sub-paths: the path suffix
// (/handshake, /connect ...) is ignored.
//
// Security: cross-origin browser requests are allowed only from
// Options.AllowedOrigins, and with cookies only from those listed by name;
// callback-polling (JSONP, which browsers load as a script with the
// user's cookies and no Origin) is refused when the browser says it came
// from another site, and its requests reach Authorize without cookies
// (Client.Request), so that a JSONP client authenticates with ext only;
// sessions are bound to the BAYEUX_BROWSER cookie unless
// Options.TrustClientSession is set; bodies are limited to
// Options.MaxMessageSize and concurrent requests per client IP to
// Options.ClientMaxConnections.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	cl := s.client(r)
	allowed, credentials := s.cors(w, r, cl)
	if !allowed {
		s.refuse(RefusedOrigin)
		http.Error(w, "bayeux: origin not allowed", http.StatusForbidden)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost, http.MethodGet:
	default:
		h.Set("Allow", "GET, POST, OPTIONS")
		http.Error(w, "bayeux: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ws := !s.opts.NoWebSocket && isWebSocket(r)
	if r.Method == http.MethodGet && !ws {
		// Callback-polling: a script any page can load, with the
		// user's cookies and without Origin.
		switch site := r.Header.Get("Sec-Fetch-Site"); site {
		case "", "same-origin", "none":
		default:
			s.refuse(RefusedJSONPSite)
			http.Error(w, "bayeux: callback-polling from another site ("+site+") is refused; use long-polling with CORS or WebSocket", http.StatusForbidden)
			return
		}
		credentials = false
	}
	ip := cl.IP
	if !s.ips.acquire(ip) {
		s.refuse(RefusedIPRequests)
		tooMany(w, r)
		return
	}
	parked := false
	defer func() {
		if !parked {
			s.ips.release(ip)
		}
	}()
	if ws {
		parked = s.serveWebSocket(w, r, cl, credentials) // the socket owns the IP slot
		return
	}

	x := &exchange{s: s, ctx: r.Context(), transport: protocol.LongPolling, remoteAddr: ip, req: r, http2: r.ProtoMajor >= 2,
		ticket: s.arrivals.Add(1)} // before the body is read: see order.go
	if !credentials {
		x.req = withoutCredentials(r)
	}
	var callback string
	var msgs []*protocol.Message
	var err error
	if r.Method == http.MethodGet {
		x.transport = protocol.CallbackPolling
		callback, msgs, err = s.decodeJSONP(r)
	} else {
		msgs, err = s.decodePost(w, r)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			http.Error(w, fmt.Sprintf("bayeux: request body larger than %d bytes", s.opts.MaxMessageSize), http.StatusRequestEntityTooLarge)
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.refuse(RefusedBodyTimeout)
			http.Error(w, "bayeux: request body too slow", http.StatusRequestTimeout)
		case errors.Is(err, protocol.ErrTooManyMessages):
			s.refuse(RefusedBatch)
			http.Error(w, fmt.Sprintf("bayeux: more than %d messages in one request", s.opts.MaxBatch), http.StatusBadRequest)
		default:
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		return
	}

	if ck, err := r.Cookie(BrowserCookie); err == nil && validBrowserID(ck.Value) {
		x.browser = ck.Value
	} else {
		x.browser = newID()
		x.newBrowser = true
	}

	x.process(msgs)
	if x.transport == protocol.CallbackPolling && x.hold == nil {
		// Scripts run in order in the browser: a held JSONP connect would
		// delay this reply, so answer it now (CometD does the same).
		// Only for a session this request may act for: a foreign clientId
		// must not be able to disturb another client.
		for id, c := range x.clients {
			if c != nil {
				s.wakeHeld(id)
			}
		}
	}
	if x.newBrowser && x.hsReply != nil && x.hsReply.IsSuccessful() {
		http.SetCookie(w, &http.Cookie{
			Name:     BrowserCookie,
			Value:    x.browser,
			Path:     "/",
			HttpOnly: true,
			Secure:   cl.Secure,
			SameSite: http.SameSiteLaxMode,
		})
	}
	if x.hold != nil && s.holdLongPoll(w, r, x, callback) {
		parked = true
		return // answered by the parked connection
	}
	defer x.done()

	body, ctype, err := s.responseBody(x, callback)
	if err != nil {
		s.log.Error("encode response failed", "err", err)
		http.Error(w, "bayeux: internal error", http.StatusInternalServerError)
		return
	}
	setNoCache(h)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.PollTimeout))
	if ctype == jsonType[0] {
		h["Content-Type"] = jsonType
	} else {
		h.Set("Content-Type", ctype)
	}
	// One write with a length: no chunked encoding for large batches, and
	// the headers and the body in one write call.
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	writeOnce(w, r, body)
}

// Header values shared by every response (net/http never changes them).
var (
	noCacheValue = []string{"no-cache, no-store"}
	nosniffValue = []string{"nosniff"}
	jsonType     = []string{"application/json;charset=UTF-8"}
)

// setNoCache sets the headers every Bayeux response carries.
func setNoCache(h http.Header) {
	h["Cache-Control"] = noCacheValue
	h["X-Content-Type-Options"] = nosniffValue
}

// responseBody encodes x's response, as a script calling callback when
// callback is not "" (callback-polling), and returns its content type.
func (s *Server) responseBody(x *exchange, callback string) ([]byte, string, error) {
	body, err := x.encode(x.buf(x.sizeHint()))
	if err != nil {
		return nil, "", err
	}
	if callback == "" {
		return body, "application/json;charset=UTF-8", nil
	}
	// U+2028 and U+2029 are valid in JSON but end a line in older
	// JavaScript engines: escape them inside the script.
	body = bytes.ReplaceAll(body, []byte("\u2028"), []byte(`\u2028`))
	body = bytes.ReplaceAll(body, []byte("\u2029"), []byte(`\u2029`))
	out := x.buf(len(body) + len(callback) + 8)
	out = append(out, "/**/"...)
	out = append(out, callback...)
	out = append(out, '(')
	out = append(out, body...)
	out = append(out, ");"...)
	return out, "text/javascript;charset=UTF-8", nil
}

func validBrowserID(v string) bool {
	if len(v) < 16 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (s *Server) decodePost(w http.ResponseWriter, r *http.Request) ([]*protocol.Message, error) {
	var body []byte
	if n := r.ContentLength; n >= 0 && n <= s.opts.MaxMessageSize {
		// The usual case: a known length, read into a pooled buffer (the
		// decoded messages do not keep it).
		pb := getBuf(int(n))
		defer putBuf(pb)
		body = (*pb)[:n]
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
	} else {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxMessageSize))
		if err != nil {
			return nil, err
		}
	}
	ct := r.Header.Get("Content-Type")
	trimmed := bytes.TrimSpace(body)
	isJSON := len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{')
	// A JSON body labelled as a form (curl -d does that) is still JSON.
	if !isJSON && strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/x-www-form-urlencoded") {
		msgs, _, err := messageParams(string(body), s.opts.MaxBatch, "")
		return msgs, err
	}
	return protocol.DecodeBatchLimit(body, s.opts.MaxBatch)
}

// messageParams decodes the message= parameters of a query or form body,
// each a message or an array of them, as it comes to them: once max
// messages are decoded, the next one is refused with
// protocol.ErrTooManyMessages before the rest of the parameters is
// unescaped or decoded. It also returns the values of the parameter named
// other, if any; other parameters are skipped. The syntax is
// url.ParseQuery's.
func messageParams(q string, max int, other string) (msgs []*protocol.Message, others []string, err error) {
	seen := false
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if strings.Contains(kv, ";") {
			return nil, nil, errors.New("bayeux: invalid query: semicolon separator")
		}
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if k, err = url.QueryUnescape(k); err != nil {
			return nil, nil, fmt.Errorf("bayeux: invalid query: %v", err)
		}
		if k != "message" && (other == "" || k != other) {
			continue
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return nil, nil, fmt.Errorf("bayeux: invalid query: %v", err)
		}
		if k != "message" {
			others = append(others, v)
			continue
		}
		seen = true
		if len(msgs) >= max {
			return nil, nil, fmt.Errorf("%w: more than %d", protocol.ErrTooManyMessages, max)
		}
		batch, err := protocol.DecodeBatchLimit([]byte(v), max-len(msgs))
		if err != nil {
			return nil, nil, err
		}
		msgs = append(msgs, batch...)
	}
	if !seen {
		return nil, nil, errors.New("bayeux: missing message parameter")
	}
	return msgs, others, nil
}

func (s *Server) decodeJSONP(r *http.Request) (string, []*protocol.Message, error) {
	if int64(len(r.URL.RawQuery)) > s.opts.MaxMessageSize {
		return "", nil, &http.MaxBytesError{Limit: s.opts.MaxMessageSize}
	}
	msgs, cbs, err := messageParams(r.URL.RawQuery, s.opts.MaxBatch, "jsonp")
	if err != nil {
		return "", nil, err
	}
	callback := "jsonpcallback"
	switch len(cbs) {
	case 0:
	case 1:
		callback = cbs[0]
	default:
		return "", nil, errors.New("bayeux: more than one jsonp parameter")
	}
	if !jsonpName.MatchString(callback) {
		return "", nil, errors.New("bayeux: invalid jsonp callback name")
	}
	return callback, msgs, nil
}

// cors applies the cross-origin policy to r from cl. It reports whether
// the request may proceed, and whether it may use the browser's
// credentials (its cookies): requests without Origin, same-origin ones
// (scheme, host and port; see internal/realip for the scheme behind a
// proxy) and origins listed by name may; an origin allowed only by "*"
// may not, and its response says so (no Access-Control-Allow-Credentials).
func (s *Server) cors(w http.ResponseWriter, r *http.Request, cl realip.Client) (allowed, credentials bool) {
	o := r.Header.Get("Origin")
	if o == "" || origin.Same(o, r.Host, cl.Secure) {
		return true, true
	}
	allowed, listed := s.origins.Match(o)
	if !allowed {
		return false, false
	}
	h := w.Header()
	if listed {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		} else {
			h.Set("Access-Control-Allow-Headers", "Content-Type")
		}
		h.Set("Access-Control-Max-Age", "600")
	}
	return true, listed
}

// client returns r's client address and scheme: decided once per request
// by internal/realip with Options.TrustedProxies (by Site's handler, or
// here for a Server mounted elsewhere). The first time an untrusted peer
// sends forwarding headers, it says so in the log: a proxy missing from
// TrustedProxies makes every client look like the proxy.
func (s *Server) client(r *http.Request) realip.Client {
	c := s.proxies.Client(r)
	s.noteIgnored(c)
	return c
}

func (s *Server) noteIgnored(c realip.Client) {
	if c.Ignored && !s.warnedProxy.Load() && s.warnedProxy.CompareAndSwap(false, true) {
		s.log.Warn("forwarding headers from a peer that is not a trusted proxy are ignored (Options.TrustedProxies, BAYEUX_TRUSTED_PROXIES); logged once",
			"peer", c.IP)
	}
}

// withoutCredentials is r as a request without the browser's ambient
// credentials (cookies, HTTP authentication) shows it to Authorize and
// services: for callback-polling and for origins allowed only by "*".
func withoutCredentials(r *http.Request) *http.Request {
	r2 := r.WithContext(r.Context())
	r2.Header = r.Header.Clone()
	r2.Header.Del("Cookie")
	r2.Header.Del("Authorization")
	return r2
}

// tooMany answers a request refused by ClientMaxConnections. A request
// whose body is still coming closes its connection, so that the body is
// not waited for.
func tooMany(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Retry-After", "1")
	if r.ContentLength != 0 {
		h.Set("Connection", "close")
	}
	http.Error(w, "bayeux: too many concurrent requests from your address", http.StatusTooManyRequests)
}

// Handler returns s wrapped so that it answers only under prefix (for
// example "/cometd"): prefix itself and every sub-path.
func (s *Server) Handler(prefix string) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p != prefix && !strings.HasPrefix(p, prefix+"/") {
			http.NotFound(w, r)
			return
		}
		s.ServeHTTP(w, r)
	})
}

func splitComma(v string) []string { return strings.Split(v, ",") }

func equalFold(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), b) }
