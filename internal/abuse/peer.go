package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// maxBody bounds what the suite reads of one response: a server that
// answers without end must not exhaust the attacker.
const maxBody = 64 << 20

// peer is one attacker's browser: HTTP requests from one source address
// (a loopback address of its own when the target is on loopback, so that
// the server's per-address limits see distinct clients) with its own
// cookies. Redirects are not followed. Safe for concurrent use.
type peer struct {
	base *url.URL
	ip   string // source address; "" = the system's choice
	jar  http.CookieJar
	hc   *http.Client
}

// newPeer returns a peer for base coming from ip ("" = any).
func newPeer(base *url.URL, ip string) *peer {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 128,
		DisableCompression:  true,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &peer{base: base, ip: ip, jar: jar, hc: &http.Client{
		Jar:           jar,
		Transport:     tr,
		Timeout:       time.Minute, // a backstop: every request also has a context deadline
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// from names the peer's address for the report.
func (p *peer) from() string {
	if p.ip == "" {
		return "this host"
	}
	return p.ip
}

// close drops the peer's idle connections.
func (p *peer) close() { p.hc.CloseIdleConnections() }

// origin is the target's origin (scheme://host:port), what a browser on
// the target's own pages sends as Origin.
func (p *peer) origin() string { return p.base.Scheme + "://" + p.base.Host }

// url returns the absolute URL of path (which may carry a query).
func (p *peer) url(path string) string { return p.origin() + path }

// cookie returns the value of the peer's cookie name ("" when it has none).
func (p *peer) cookie(name string) string {
	for _, c := range p.jar.Cookies(p.base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie gives the peer a cookie, as a thief replaying one would.
func (p *peer) setCookie(name, value string) {
	p.jar.SetCookies(p.base, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// answer is an HTTP response as the suite keeps it.
type answer struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
	err    error // transport error (no answer)
}

func (a answer) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("HTTP %d", a.status)
}

// do sends one request. hdr adds headers.
func (p *peer) do(ctx context.Context, method, path string, body []byte, hdr http.Header) answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url(path), rd)
	if err != nil {
		return answer{err: err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := p.hc.Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return answer{status: resp.StatusCode, header: resp.Header, body: b, took: time.Since(start), err: err}
}

// get sends a GET as a browser on the target's own pages would.
func (p *peer) get(ctx context.Context, path string) answer {
	return p.do(ctx, http.MethodGet, path, nil, http.Header{"Sec-Fetch-Site": {"same-origin"}})
}

// postForm posts a form as a browser on the target's own pages would
// (Origin and Sec-Fetch-Site same-origin, which cross-origin protection
// lets through).
func (p *peer) postForm(ctx context.Context, path string, form url.Values) answer {
	return p.do(ctx, http.MethodPost, path, []byte(form.Encode()), http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Origin":         {p.origin()},
		"Sec-Fetch-Site": {"same-origin"},
	})
}

// Login outcomes of a /login POST, as the page says.
const (
	loginOK      = "ok"      // redirected on: logged in
	loginWrong   = "wrong"   // the password was checked and is wrong
	loginLimited = "limited" // refused by a limit before the check
)

// login posts the login form and says what the page answered: loginOK,
// loginWrong, loginLimited, or something else (the status, or the
// transport error).
func (p *peer) login(ctx context.Context, user, password string) string {
	return loginOutcome(p.postForm(ctx, "/login", url.Values{"user": {user}, "password": {password}}))
}

// loginOutcome reads a /login answer.
func loginOutcome(a answer) string {
	switch {
	case a.err != nil:
		return "error: " + a.err.Error()
	case a.status == http.StatusSeeOther && !strings.HasPrefix(a.header.Get("Location"), "/login"):
		return loginOK
	case bytes.Contains(a.body, []byte("Wrong user name or password.")):
		return loginWrong
	case bytes.Contains(a.body, []byte("Too many failed logins")):
		return loginLimited
	}
	return fmt.Sprintf("HTTP %d", a.status)
}

// bayeux is the answer to a Bayeux request: the HTTP answer and, when it
// is a JSON array, its messages.
type bayeux struct {
	answer
	msgs []*protocol.Message
}

// reply returns the reply on channel (the first one), or nil.
func (b bayeux) reply(channel string) *protocol.Message {
	for _, m := range b.msgs {
		if m.Channel == channel && m.Successful != nil {
			return m
		}
	}
	return nil
}

// deliveries returns the messages published on channel.
func (b bayeux) deliveries(channel string) []*protocol.Message {
	var out []*protocol.Message
	for _, m := range b.msgs {
		if m.Channel == channel && m.Successful == nil {
			out = append(out, m)
		}
	}
	return out
}

// describe says what a Bayeux request got for the report: the reply's
// error, or the HTTP status.
func (b bayeux) describe(channel string) string {
	if b.err != nil {
		return b.err.Error()
	}
	if r := b.reply(channel); r != nil {
		if r.IsSuccessful() {
			return "successful"
		}
		return r.Error
	}
	return fmt.Sprintf("HTTP %d", b.status)
}

// postBayeux posts a raw body to /cometd.
func (p *peer) postBayeux(ctx context.Context, ctype string, body []byte) bayeux {
	a := p.do(ctx, http.MethodPost, "/cometd", body, http.Header{"Content-Type": {ctype}})
	b := bayeux{answer: a}
	if a.err == nil && a.status == http.StatusOK {
		_ = json.Unmarshal(a.body, &b.msgs)
	}
	return b
}

// send posts msgs as one long-polling batch.
func (p *peer) send(ctx context.Context, msgs ...*protocol.Message) bayeux {
	body, err := json.Marshal(msgs)
	if err != nil {
		return bayeux{answer: answer{err: err}}
	}
	return p.postBayeux(ctx, "application/json;charset=UTF-8", body)
}

// session is a Bayeux session of a peer over long-polling.
type session struct {
	p  *peer
	id string
}

// errRefused is a handshake the server answered with successful:false.
type errRefused struct{ reply *protocol.Message }

func (e *errRefused) Error() string { return "handshake refused: " + e.reply.Error }

// handshake makes a session (ext: the handshake's ext, nil for none) and
// returns the reply; it does not retry.
func (p *peer) handshake(ctx context.Context, ext map[string]any) (*session, bayeux) {
	m := &protocol.Message{Channel: protocol.MetaHandshake, Version: protocol.Version,
		SupportedConnectionTypes: []string{protocol.LongPolling}}
	if ext != nil {
		m.Ext = map[string]json.RawMessage{}
		for k, v := range ext {
			m.Ext[k], _ = json.Marshal(v)
		}
	}
	b := p.send(ctx, m)
	if r := b.reply(protocol.MetaHandshake); r != nil && r.IsSuccessful() && r.ClientID != "" {
		return &session{p: p, id: r.ClientID}, b
	}
	return nil, b
}

// session makes a session for an attack's setup: a handshake refused by
// a rate or session limit (429, with interval advice) is tried again
// after the advised interval, until ctx ends.
func (p *peer) session(ctx context.Context, ext map[string]any) (*session, error) {
	for {
		s, b := p.handshake(ctx, ext)
		if s != nil {
			return s, nil
		}
		r := b.reply(protocol.MetaHandshake)
		if r == nil {
			return nil, fmt.Errorf("handshake: %v", b.answer)
		}
		wait := time.Duration(0)
		if strings.HasPrefix(r.Error, "429:") && r.Advice != nil && r.Advice.Interval != nil {
			wait = time.Duration(*r.Advice.Interval) * time.Millisecond
		}
		if wait <= 0 {
			return nil, &errRefused{r}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (waiting after %s)", ctx.Err(), r.Error)
		case <-t.C:
		}
	}
}

// connect sends a /meta/connect that is answered at once (timeout 0
// advice), with ext (nil: none).
func (s *session) connect(ctx context.Context, ext map[string]json.RawMessage) bayeux {
	return s.p.send(ctx, &protocol.Message{Channel: protocol.MetaConnect, ClientID: s.id,
		ConnectionType: protocol.LongPolling, Advice: &protocol.Advice{Timeout: protocol.Ms(0)}, Ext: ext})
}

// hold sends a /meta/connect the server holds (up to its poll timeout).
func (s *session) hold(ctx context.Context) bayeux {
	return s.p.send(ctx, &protocol.Message{Channel: protocol.MetaConnect, ClientID: s.id, ConnectionType: protocol.LongPolling})
}

// subscribe subscribes to channel and returns the reply (nil: none).
func (s *session) subscribe(ctx context.Context, channel string) (*protocol.Message, bayeux) {
	b := s.p.send(ctx, &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: s.id,
		Subscription: protocol.Subscription{Channels: []string{channel}}})
	return b.reply(protocol.MetaSubscribe), b
}

// publish publishes data (raw JSON) with ext on channel and returns the
// publish's reply (nil: none).
func (s *session) publish(ctx context.Context, channel string, data json.RawMessage, ext map[string]json.RawMessage) (*protocol.Message, bayeux) {
	b := s.p.send(ctx, &protocol.Message{Channel: channel, ClientID: s.id, Data: data, Ext: ext, ID: "p1"})
	return b.reply(channel), b
}

// user asks /service/chat/whoami who the session is ("" for anonymous).
func (s *session) user(ctx context.Context) (string, error) {
	b := s.p.send(ctx, &protocol.Message{Channel: "/service/chat/whoami", ClientID: s.id, Data: json.RawMessage(`{}`)})
	for _, m := range b.msgs {
		if m.Data != nil {
			var d struct{ User string }
			if err := json.Unmarshal(m.Data, &d); err != nil {
				return "", err
			}
			return d.User, nil
		}
	}
	return "", fmt.Errorf("whoami: no answer (%s)", b.describe("/service/chat/whoami"))
}

// disconnect ends the session (best effort, with a short deadline of its
// own: it also runs while an attack winds down).
func (s *session) disconnect() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.p.send(ctx, &protocol.Message{Channel: protocol.MetaDisconnect, ClientID: s.id})
}

// isTimeout reports whether err is a deadline (of a context or a socket).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
