package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/protocol"
)

const utf8Channel = "/abuse/utf8"

// utf8Case is one way of sending bytes that are not UTF-8.
type utf8Case struct {
	name string
	send func(ctx context.Context) string // what the server answered: "accepted" or why it refused
}

// utf8Obs is what the invalid-UTF-8 attack saw.
type utf8Obs struct {
	sent map[string]string // case -> answer
	// bodies the subscribers (and the echo service's caller) received,
	// which must be valid UTF-8 and valid JSON.
	bodies []receivedBody
	// delivered counts the attack's messages that reached a subscriber;
	// replaced those that came with U+FFFD in place of the bad bytes.
	delivered, replaced int
	after               bool // a valid message published afterwards arrived
}

type receivedBody struct {
	by   string
	body []byte
}

// postOutcome reads what a publish over HTTP got.
func postOutcome(b bayeux, channel string) string {
	if b.err != nil {
		return "error: " + b.err.Error()
	}
	if b.status != http.StatusOK {
		return fmt.Sprintf("refused: HTTP %d", b.status)
	}
	if r := b.reply(channel); r != nil && !r.IsSuccessful() {
		return "refused: " + r.Error
	}
	if !utf8.Valid(b.body) || !json.Valid(b.body) {
		return "answered with invalid JSON"
	}
	return "accepted"
}

// invalidUTF8 is the last item of finding 8 of issue 13: publishes whose
// data or ext holds bytes that are not UTF-8 (a Latin-1 é, a truncated
// sequence, a surrogate half, a lone 0xFF), over a JSON body, a form, a
// JSONP GET and a WebSocket frame, to the echo service, and in a chat
// message. Each may be refused or have the bytes replaced; no subscriber
// (nor the caller of the echo service) may ever receive invalid JSON.
func invalidUTF8(ctx context.Context, e *env) Result {
	tried := "publish bytes that are not UTF-8 in data and ext over JSON, form, JSONP and WebSocket, to /service/echo and in a chat message; read what subscribers get"
	fail := func(err error) Result { return errorResult("invalid-utf8", tried, err) }
	sub, err := e.peer().session(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer sub.disconnect()
	if r, b := sub.subscribe(ctx, utf8Channel); r == nil || !r.IsSuccessful() {
		return fail(fmt.Errorf("subscribe: %s", b.describe(protocol.MetaSubscribe)))
	}
	sub.connect(ctx, nil)
	p := e.peer()
	pub, err := p.session(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer pub.disconnect()
	u := e.t.user
	chat, err := e.peer().session(ctx, map[string]any{"auth": map[string]string{"user": u.name, "password": u.password}})
	if err != nil {
		return fail(fmt.Errorf("ext.auth handshake as %s: %w", u.name, err))
	}
	defer chat.disconnect()
	room := "/chat/abuse-utf8"
	if r, b := chat.subscribe(ctx, room); r == nil || !r.IsSuccessful() {
		return fail(fmt.Errorf("subscribe %s as %s: %s", room, u.name, b.describe(protocol.MetaSubscribe)))
	}
	chat.connect(ctx, nil)

	publish := func(data, ext string) []byte {
		m := fmt.Sprintf(`[{"channel":%q,"clientId":%q,"id":"u1","data":%s`, utf8Channel, pub.id, data)
		if ext != "" {
			m += `,"ext":` + ext
		}
		return []byte(m + "}]")
	}
	viaJSON := func(body []byte) func(context.Context) string {
		return func(ctx context.Context) string {
			return postOutcome(p.postBayeux(ctx, "application/json", body), utf8Channel)
		}
	}
	var echo []byte
	cases := []utf8Case{
		{"Latin-1 é in data", viaJSON(publish("{\"text\":\"caf\xe9\"}", ""))},
		{"truncated sequence", viaJSON(publish("\"\xf0\x9f\x98\"", ""))},
		{"surrogate half", viaJSON(publish("\"\xed\xa0\x80\"", ""))},
		{"0xFF in ext", viaJSON(publish("1", "{\"x\":\"\xff\"}"))},
		{"form body", func(ctx context.Context) string {
			body := "message=" + url.QueryEscape(string(publish("\"\xc3\x28\"", "")))
			return postOutcome(p.postBayeux(ctx, "application/x-www-form-urlencoded", []byte(body)), utf8Channel)
		}},
		{"JSONP", func(ctx context.Context) string {
			q := "jsonp=cb&message=" + url.QueryEscape(string(publish("\"\xff\"", "")))
			a := p.do(ctx, http.MethodGet, "/cometd?"+q, nil, nil)
			if a.err == nil && a.status == http.StatusOK {
				if !utf8.Valid(a.body) {
					return "answered with invalid UTF-8"
				}
				if bytes.Contains(a.body, []byte(`"successful":false`)) {
					return "refused: " + string(a.body)
				}
				return "accepted"
			}
			return postOutcome(bayeux{answer: a}, utf8Channel)
		}},
		{"WebSocket", func(ctx context.Context) string { return wsPublish(ctx, p, "\"\xff\xfe\"") }},
		{"/service/echo", func(ctx context.Context) string {
			body := fmt.Sprintf("[{\"channel\":\"/service/echo\",\"clientId\":%q,\"id\":\"e1\",\"data\":\"caf\xe9\"}]", pub.id)
			b := p.postBayeux(ctx, "application/json", []byte(body))
			if b.err == nil && b.status == http.StatusOK {
				echo = b.body
			}
			return postOutcome(b, "/service/echo")
		}},
		{"chat message", func(ctx context.Context) string {
			body := fmt.Sprintf("[{\"channel\":%q,\"clientId\":%q,\"id\":\"c1\",\"data\":{\"chat\":\"caf\xe9 \xff\"}}]", room, chat.id)
			return postOutcome(chat.p.postBayeux(ctx, "application/json", []byte(body)), room)
		}},
	}
	o := utf8Obs{sent: map[string]string{}}
	var order []string
	for _, c := range cases {
		o.sent[c.name] = c.send(ctx)
		order = append(order, c.name)
	}
	if echo != nil {
		o.bodies = append(o.bodies, receivedBody{"the echo service's caller", echo})
	}
	// A valid message after them all must still arrive.
	if r, b := pub.publish(ctx, utf8Channel, json.RawMessage(`"after"`), nil); r == nil || !r.IsSuccessful() {
		return fail(fmt.Errorf("a valid publish afterwards: %s", b.describe(utf8Channel)))
	}
	for _, s := range []struct {
		who     string
		s       *session
		channel string
	}{{"the subscriber", sub, utf8Channel}, {"the room's member", chat, room}} {
		for range 20 {
			c := s.s.connect(ctx, nil)
			if c.err != nil || c.status != http.StatusOK {
				break
			}
			o.bodies = append(o.bodies, receivedBody{s.who, c.body})
			got := 0
			for _, m := range decodeLenient(c.body) {
				if m.Channel != s.channel || m.Successful != nil {
					continue
				}
				got++
				if string(m.Data) == `"after"` {
					o.after = true
					continue
				}
				o.delivered++
				if strings.Contains(string(m.Data), "\ufffd") || strings.Contains(string(m.Data), `\ufffd`) {
					o.replaced++
				}
			}
			if got == 0 {
				break
			}
		}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	return judgeUTF8(tried, o, order)
}

// decodeLenient decodes a batch whatever its bytes (encoding/json takes
// invalid UTF-8 inside strings).
func decodeLenient(body []byte) []*protocol.Message {
	var msgs []*protocol.Message
	_ = json.Unmarshal(body, &msgs)
	return msgs
}

// wsPublish handshakes over a WebSocket and publishes data (raw bytes) to
// utf8Channel in a text frame; it returns what the server did.
func wsPublish(ctx context.Context, p *peer, data string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(p.origin(), "http") + "/cometd"
	hc := *p.hc
	hc.Timeout = 0 // the context bounds the socket
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: &hc})
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"w0"}]`)); err != nil {
		return "error: " + err.Error()
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		return "error: handshake: " + err.Error()
	}
	var hs []*protocol.Message
	if json.Unmarshal(b, &hs) != nil || len(hs) == 0 || !hs[0].IsSuccessful() {
		return "error: handshake: " + string(b)
	}
	frame := fmt.Sprintf(`[{"channel":%q,"clientId":%q,"id":"w1","data":%s}]`, utf8Channel, hs[0].ClientID, data)
	if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		return "refused: " + err.Error()
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				return fmt.Sprintf("refused: socket closed %d", st)
			}
			return "error: " + err.Error()
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			return "answered with invalid JSON"
		}
		for _, m := range decodeLenient(b) {
			if m.Channel == utf8Channel && m.Successful != nil {
				if m.IsSuccessful() {
					return "accepted"
				}
				return "refused: " + m.Error
			}
		}
	}
}

// judgeUTF8: every body received holds valid UTF-8 and valid JSON; no
// answer was a 5xx; a valid message afterwards still arrived.
func judgeUTF8(tried string, o utf8Obs, order []string) Result {
	var f findings
	refused := 0
	var parts []string
	for _, name := range order {
		a := o.sent[name]
		if strings.HasPrefix(a, "refused") {
			refused++
		}
		parts = append(parts, name+" "+a)
		f.check(strings.Contains(a, "HTTP 5") || strings.Contains(a, "invalid"), "%s: %s", name, a)
	}
	f.note("%d of %d refused (%s)", refused, len(order), strings.Join(parts, ", "))
	bad := 0
	for _, b := range o.bodies {
		if !utf8.Valid(b.body) || !json.Valid(b.body) {
			bad++
			f.fail("%s received invalid JSON: %.120q", b.by, b.body)
		}
	}
	f.note("%d forwarded (%d with U+FFFD in place of the bytes), %d bodies received, %d invalid", o.delivered, o.replaced, len(o.bodies), bad)
	f.check(!o.after, "a valid message published afterwards did not arrive")
	return f.result("invalid-utf8", tried)
}
