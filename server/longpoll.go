package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

const (
	transportLocal = "local"
	// BrowserCookie is the cookie that identifies a browser, as in CometD.
	BrowserCookie = "BAYEUX_BROWSER"
)

var jsonpName = regexp.MustCompile(`^[a-zA-Z0-9._\-]{1,64}$`)

// ServeHTTP implements the long-polling (POST, JSON body or form-encoded
// message= parameters), callback-polling (GET with message= and jsonp=)
// and websocket (GET upgrade) transports. Mount it on /cometd and its sub-paths: the path suffix
// (/handshake, /connect ...) is ignored.
//
// Security: cross-origin browser requests are allowed only from
// Options.AllowedOrigins; sessions are bound to the BAYEUX_BROWSER cookie
// unless Options.TrustClientSession is set; bodies are limited to
// Options.MaxMessageSize and concurrent requests per IP to
// Options.ClientMaxConnections.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if !s.cors(w, r) {
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
	ip := clientIP(r)
	if !s.ips.acquire(ip) {
		s.refuse(RefusedIPRequests)
		h.Set("Retry-After", "1")
		http.Error(w, "bayeux: too many concurrent requests from your address", http.StatusTooManyRequests)
		return
	}
	parked := false
	defer func() {
		if !parked {
			s.ips.release(ip)
		}
	}()
	if !s.opts.NoWebSocket && isWebSocket(r) {
		parked = s.serveWebSocket(w, r, ip) // the socket owns the IP slot
		return
	}

	x := &exchange{s: s, ctx: r.Context(), transport: protocol.LongPolling, remoteAddr: ip, req: r, http2: r.ProtoMajor >= 2,
		ticket: s.arrivals.Add(1)} // before the body is read: see order.go
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
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("bayeux: request body larger than %d bytes", s.opts.MaxMessageSize), http.StatusRequestEntityTooLarge)
			return
		}
		if errors.Is(err, protocol.ErrTooManyMessages) {
			s.refuse(RefusedBatch)
			http.Error(w, fmt.Sprintf("bayeux: more than %d messages in one request", s.opts.MaxBatch), http.StatusBadRequest)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
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
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteLaxMode,
		})
	}
	if x.hold != nil && s.holdLongPoll(w, r, x, callback, ip) {
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
	// One write with a length: no chunked encoding for large batches.
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
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

// cors applies the cross-origin policy and reports whether the request may
// proceed. Requests without Origin, and same-origin requests, always may.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || sameOrigin(r, origin) {
		return true
	}
	if !s.anyOrig && !s.origins[origin] {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
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
	return true
}

func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// clientIP is the request's remote IP address without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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
