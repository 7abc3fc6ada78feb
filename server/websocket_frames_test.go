package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// rawWS is a WebSocket client whose frames are written by hand, for what
// coder/websocket's client cannot send: unmasked or reserved frames,
// fragments, pings, lying headers.
type rawWS struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	resp *http.Response // the upgrade's
}

// upgradeRequest is a valid upgrade request for h's endpoint, with hdr.
func (h *harness) upgradeRequest(hdr string) string {
	return "GET " + strings.TrimPrefix(h.url, h.hs.URL) + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(h.hs.URL, "http://") +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		hdr + "\r\n"
}

// dialRaw sends req, then early (bytes the server gets before it
// answers), and reads the response's head; the connection is t's.
func (h *harness) dialRaw(t *testing.T, req string, early []byte) *rawWS {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(hWait))
	if _, err := c.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	w := &rawWS{t: t, c: c, br: bufio.NewReader(c)}
	if w.resp, err = http.ReadResponse(w.br, nil); err != nil {
		t.Fatalf("upgrade response: %v", err)
	}
	return w
}

// dialRawWS opens a socket for t, with early bytes sent along the upgrade
// request.
func (h *harness) dialRawWS(t *testing.T, early []byte) *rawWS {
	t.Helper()
	w := h.dialRaw(t, h.upgradeRequest(""), early)
	if w.resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", w.resp.Status)
	}
	return w
}

// clientFrame encodes a frame as a client sends it: masked unless
// unmasked.
func clientFrame(h gws.Header, payload []byte, unmasked bool) []byte {
	var b bytes.Buffer
	h.Length = int64(len(payload))
	p := bytes.Clone(payload)
	if !unmasked {
		h.Masked, h.Mask = true, gws.NewMask()
		gws.Cipher(p, h.Mask, 0)
	}
	_ = gws.WriteHeader(&b, h)
	b.Write(p)
	return b.Bytes()
}

func (w *rawWS) send(b []byte) {
	w.t.Helper()
	if _, err := w.c.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// frame sends one masked frame.
func (w *rawWS) frame(op gws.OpCode, fin bool, payload []byte) {
	w.t.Helper()
	w.send(clientFrame(gws.Header{Fin: fin, OpCode: op}, payload, false))
}

// next reads the server's next frame; server frames are never masked.
func (w *rawWS) next() gws.Frame {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(hWait))
	f, err := gws.ReadFrame(w.br)
	if err != nil {
		w.t.Fatalf("read frame: %v", err)
	}
	if f.Header.Masked || !f.Header.Fin {
		w.t.Fatalf("server frame %+v: masked or fragmented", f.Header)
	}
	return f
}

// messages reads the server's next frame, which must be a text message of
// Bayeux messages.
func (w *rawWS) messages() []*protocol.Message {
	w.t.Helper()
	f := w.next()
	if f.Header.OpCode != gws.OpText {
		w.t.Fatalf("got opcode %v (%q), want a text frame", f.Header.OpCode, f.Payload)
	}
	var msgs []*protocol.Message
	if err := json.Unmarshal(f.Payload, &msgs); err != nil {
		w.t.Fatalf("frame %q: %v", f.Payload, err)
	}
	return msgs
}

// closed reads frames up to the server's close frame and returns its code,
// then checks that the server closes the connection.
func (w *rawWS) closed() gws.StatusCode {
	w.t.Helper()
	for {
		f := w.next()
		if f.Header.OpCode != gws.OpClose {
			continue
		}
		code, _ := gws.ParseCloseFrameData(f.Payload)
		// Answer it: the server then closes the connection at once.
		w.send(clientFrame(gws.Header{Fin: true, OpCode: gws.OpClose}, gws.NewCloseFrameBody(code, ""), false))
		w.eof()
		return code
	}
}

// eof checks that the server closes the connection (without more frames).
func (w *rawWS) eof() {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(hWait))
	if b, err := io.ReadAll(w.br); err != nil || len(b) > 0 {
		w.t.Fatalf("after the close: %q, %v; want the connection closed", b, err)
	}
}

func handshakeJSON(t *testing.T) []byte {
	hs := handshakeMsg()
	hs.SupportedConnectionTypes = []string{protocol.WebSocket}
	b, err := json.Marshal([]*protocol.Message{hs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWebSocketRefusedFrames: what a client must not send closes the
// socket with the close code RFC 6455 gives for it, and the server keeps
// serving. A header claiming a huge frame is refused on the header alone
// (its payload is never sent).
func TestWebSocketRefusedFrames(t *testing.T) {
	t.Parallel()
	const limit = 1024
	h := newHarness(t, Options{MaxMessageSize: limit})
	text := gws.Header{Fin: true, OpCode: gws.OpText}
	type testCase struct {
		name string
		send []byte
		want gws.StatusCode
	}
	cases := []testCase{
		{"unmasked frame", clientFrame(text, []byte("[]"), true), gws.StatusProtocolError},
		{"binary frame", clientFrame(gws.Header{Fin: true, OpCode: gws.OpBinary}, []byte("[]"), false), gws.StatusUnsupportedData},
		{"continuation without a message", clientFrame(gws.Header{Fin: true, OpCode: gws.OpContinuation}, []byte("[]"), false), gws.StatusProtocolError},
		{"new message inside a fragmented one", append(clientFrame(gws.Header{OpCode: gws.OpText}, []byte("["), false),
			clientFrame(text, []byte("]"), false)...), gws.StatusProtocolError},
		{"reserved opcode", clientFrame(gws.Header{Fin: true, OpCode: 0x3}, nil, false), gws.StatusProtocolError},
		{"reserved bit (no extension negotiated)", clientFrame(gws.Header{Fin: true, Rsv: gws.Rsv(true, false, false), OpCode: gws.OpText}, []byte("[]"), false), gws.StatusProtocolError},
		{"fragmented ping", clientFrame(gws.Header{OpCode: gws.OpPing}, []byte("x"), false), gws.StatusProtocolError},
		{"ping over 125 bytes", clientFrame(gws.Header{Fin: true, OpCode: gws.OpPing}, make([]byte, 126), false), gws.StatusProtocolError},
		{"header claiming a TiB", func() []byte {
			var b bytes.Buffer
			_ = gws.WriteHeader(&b, gws.Header{Fin: true, OpCode: gws.OpText, Masked: true, Mask: gws.NewMask(), Length: 1 << 40})
			return b.Bytes()
		}(), gws.StatusMessageTooBig},
		{"one frame over the limit", clientFrame(text, make([]byte, limit+1), false), gws.StatusMessageTooBig},
		{"fragments over the limit together", append(clientFrame(gws.Header{OpCode: gws.OpText}, make([]byte, limit/2+1), false),
			clientFrame(gws.Header{Fin: true, OpCode: gws.OpContinuation}, make([]byte, limit/2), false)...), gws.StatusMessageTooBig},
		{"empty fragments without end", append(clientFrame(gws.Header{OpCode: gws.OpText}, []byte("["), false),
			bytes.Repeat(clientFrame(gws.Header{OpCode: gws.OpContinuation}, nil, false), limit)...), gws.StatusMessageTooBig},
		{"invalid UTF-8", clientFrame(text, []byte("[\"\xff\"]"), false), gws.StatusInvalidFramePayloadData},
		{"close frame of one byte", clientFrame(gws.Header{Fin: true, OpCode: gws.OpClose}, []byte{3}, false), gws.StatusProtocolError},
		{"close frame with a reserved code", clientFrame(gws.Header{Fin: true, OpCode: gws.OpClose}, gws.NewCloseFrameBody(gws.StatusNoStatusRcvd, ""), false), gws.StatusProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := h.dialRawWS(t, nil)
			w.send(tc.send)
			if got := w.closed(); got != tc.want {
				t.Errorf("closed with %d, want %d", got, tc.want)
			}
		})
	}
	h.client().start()
}

// TestWebSocketFramesAccepted: a fragmented message is reassembled, a ping
// between its fragments answered with a pong carrying its payload, bytes
// sent along the upgrade request are not lost, a ping alone lets the socket
// park again (no goroutine kept), and a close frame is echoed before the
// server closes the connection. A socket that parked reads on through
// another reader.
func TestWebSocketFramesAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	hs := handshakeJSON(t)

	// The handshake in three fragments, a ping among them.
	w := h.dialRawWS(t, nil)
	w.frame(gws.OpText, false, hs[:5])
	w.frame(gws.OpPing, true, []byte("are you there"))
	w.frame(gws.OpContinuation, false, hs[5:20])
	w.frame(gws.OpContinuation, true, hs[20:])
	if f := w.next(); f.Header.OpCode != gws.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("ping answered %v %q, want a pong with its payload", f.Header.OpCode, f.Payload)
	}
	r := only(t, w.messages(), protocol.MetaHandshake)
	if !r.IsSuccessful() {
		t.Fatalf("handshake in fragments: %+v", r)
	}

	// A frame sent right behind the upgrade request, before the 101.
	early := h.dialRawWS(t, clientFrame(gws.Header{Fin: true, OpCode: gws.OpText}, hs, false))
	er := only(t, early.messages(), protocol.MetaHandshake)
	if !er.IsSuccessful() {
		t.Fatalf("handshake sent before the upgrade's response: %+v", er)
	}

	if h.srv.poller() != nil {
		testutil.Eventually(t, hWait, func() bool { return h.srv.Stats().Parked.Load() == 2 }, "both sockets parked")
		w.frame(gws.OpPing, true, nil)
		if f := w.next(); f.Header.OpCode != gws.OpPong || len(f.Payload) != 0 {
			t.Fatalf("ping answered %v %q", f.Header.OpCode, f.Payload)
		}
		testutil.Eventually(t, hWait, func() bool { return h.srv.Stats().Parked.Load() == 2 }, "the pinged socket parked again")
	}
	// Parked (without a poller, not), both read on through another
	// reader: a message longer than the read buffer, answered at once.
	for _, tc := range []struct {
		ws *rawWS
		id string
	}{{w, r.ClientID}, {early, er.ClientID}} {
		b, _ := json.Marshal([]*protocol.Message{publishMsg(tc.id, "/service/nobody", strings.Repeat("x", 3*wsReadBuffer))})
		tc.ws.frame(gws.OpText, true, b)
		replyTo(t, tc.ws.messages(), "/service/nobody")
	}
	if h.srv.poller() != nil {
		testutil.Eventually(t, hWait, func() bool { return h.srv.Stats().Parked.Load() == 2 }, "both sockets parked again")
	}

	// The client closes: the server echoes the code and closes.
	w.frame(gws.OpClose, true, gws.NewCloseFrameBody(gws.StatusGoingAway, "tab closed"))
	f := w.next()
	if code, _ := gws.ParseCloseFrameData(f.Payload); f.Header.OpCode != gws.OpClose || code != gws.StatusGoingAway {
		t.Fatalf("close answered %v %q, want a close frame with 1001", f.Header.OpCode, f.Payload)
	}
	w.eof()
	testutil.Eventually(t, hWait, func() bool { return h.srv.Stats().Parked.Load() == 1 }, "the closed socket gone from the poller")
}

// TestWebSocketUpgrade: the browser cookie is set on the 101 when the
// client has none (and not when it has one); a handshake the library
// refuses, or one over HTTP/1.0, gets a 4xx.
func TestWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	w := h.dialRawWS(t, nil)
	var browser string
	for _, ck := range w.resp.Cookies() {
		if ck.Name == BrowserCookie && validBrowserID(ck.Value) && ck.HttpOnly {
			browser = ck.Value
		}
	}
	if browser == "" {
		t.Fatalf("101 without a %s cookie: %v", BrowserCookie, w.resp.Header)
	}
	again := h.dialRaw(t, h.upgradeRequest("Cookie: "+BrowserCookie+"="+browser+"\r\n"), nil)
	if again.resp.StatusCode != http.StatusSwitchingProtocols || len(again.resp.Cookies()) != 0 {
		t.Fatalf("upgrade with the cookie: %s, cookies %v", again.resp.Status, again.resp.Cookies())
	}

	type testCase struct {
		name string
		req  string
		want int
	}
	good := h.upgradeRequest("")
	cases := []testCase{
		{"no key", strings.Replace(good, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1), http.StatusBadRequest},
		{"unknown version", strings.Replace(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7", 1), http.StatusUpgradeRequired},
		{"HTTP/1.0", strings.Replace(good, "HTTP/1.1", "HTTP/1.0", 1), http.StatusUpgradeRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.dialRaw(t, tc.req, nil).resp.StatusCode; got != tc.want {
				t.Errorf("answered %d, want %d", got, tc.want)
			}
		})
	}
	h.client().start()
}

// TestWebSocketShutdown: BeginShutdown answers the held connect, then
// closes the socket with 1001.
func TestWebSocketShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	w := h.dialRawWS(t, nil)
	w.frame(gws.OpText, true, handshakeJSON(t))
	id := only(t, w.messages(), protocol.MetaHandshake).ClientID
	b, _ := json.Marshal([]*protocol.Message{connectMsg(id, nil)})
	w.frame(gws.OpText, true, b)
	h.waitHeld(1)
	h.srv.BeginShutdown()
	if r := replyTo(t, w.messages(), protocol.MetaConnect); !r.IsSuccessful() {
		t.Fatalf("held connect at shutdown: %+v", r)
	}
	if code := w.closed(); code != gws.StatusGoingAway {
		t.Fatalf("closed with %d, want 1001", code)
	}
}

// TestWebSocketCloseUnanswered: a peer that never answers the server's
// close frame has its connection closed after wsCloseWait.
func TestWebSocketCloseUnanswered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{PollTimeout: 100 * time.Millisecond, ConnectTimeout: 100 * time.Millisecond})
	w := h.dialRawWS(t, nil)
	f := w.next()
	if code, _ := gws.ParseCloseFrameData(f.Payload); f.Header.OpCode != gws.OpClose || code != gws.StatusPolicyViolation {
		t.Fatalf("idle socket got %v %q, want a close frame with 1008", f.Header.OpCode, f.Payload)
	}
	sent := time.Now()
	_ = w.c.SetReadDeadline(time.Now().Add(wsCloseWait + hWait))
	if _, err := w.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after an unanswered close frame: %v, want the connection closed", err)
	}
	if d := time.Since(sent); d > wsCloseWait+time.Second {
		t.Errorf("connection closed %v after the close frame, wsCloseWait is %v", d, wsCloseWait)
	}
}
