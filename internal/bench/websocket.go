package bench

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// WebSocket is the WebSocket transport (connectionType "websocket"), as
// CometD and bayeux speak it: every frame in either direction is a JSON
// array of messages; the server answers each frame with one frame, and a
// held /meta/connect later in a frame of its own (the queued deliveries,
// then the connect reply). Every simulated client has its own socket and
// cookie jar (the server sets its browser cookie on the upgrade).
//
// A socket has one reader goroutine: every frame it reads goes, in
// arrival order and stamped with its arrival time, to the Push given to
// Dial (deliveries are counted there, in the one pass over the frame, so
// a frame answering a publish and one answering a connect are never
// counted out of order); the replies it returns go to the RoundTrip
// waiting for one of their message ids (a publish reply and a connect
// reply can interleave on one socket). A frame nobody waits for any more
// (its RoundTrip timed out) has still been counted.
type WebSocket struct {
	URL string
	hc  *http.Client
	tr  *http.Transport
}

// NewWebSocket returns a WebSocket transport for the Bayeux endpoint url
// (http(s) or ws(s)).
func NewWebSocket(url string) *WebSocket {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		WriteBufferSize:    4 << 10,
		ReadBufferSize:     4 << 10,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return &WebSocket{URL: wsURL(url), tr: tr, hc: &http.Client{Transport: tr}}
}

// ConnectionType implements Transport.
func (t *WebSocket) ConnectionType() string { return "websocket" }

// Close implements Transport.
func (t *WebSocket) Close() { t.tr.CloseIdleConnections() }

// Dial implements Transport: it opens the client's socket.
func (t *WebSocket) Dial(push Push) (Conn, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &wsConn{t: t, jar: jar, push: push, waiters: make(map[string]*wsWaiter)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.socket(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

type wsConn struct {
	t    *WebSocket
	jar  http.CookieJar
	push Push

	dial sync.Mutex // serialises (re)dialling

	mu      sync.Mutex // guards the fields below
	ws      *websocket.Conn
	closed  bool
	waiters map[string]*wsWaiter // by message id (see idKey)
}

// wsWaiter is one RoundTrip waiting for the frame with its replies.
type wsWaiter struct {
	ws   *websocket.Conn
	ids  []string
	done chan wsFrame // buffered: the reader never blocks
}

type wsFrame struct {
	data []byte
	err  error
}

var errWSClosed = errors.New("websocket: connection closed")

// PushesAll says that every frame goes to the Push, which counts its
// deliveries: RoundTrip returns only replies.
func (c *wsConn) PushesAll() bool { return c.push != nil }

// socket returns the open socket, dialling a new one (same cookies: the
// server lets it act for the session by clientId) if the last one died.
func (c *wsConn) socket(ctx context.Context) (*websocket.Conn, error) {
	c.mu.Lock()
	ws, closed := c.ws, c.closed
	c.mu.Unlock()
	if ws != nil || closed {
		if closed {
			return nil, errWSClosed
		}
		return ws, nil
	}
	c.dial.Lock()
	defer c.dial.Unlock()
	c.mu.Lock()
	ws = c.ws
	c.mu.Unlock()
	if ws != nil {
		return ws, nil
	}
	hc := *c.t.hc
	hc.Jar = c.jar
	ws, resp, err := websocket.Dial(ctx, c.t.URL, &websocket.DialOptions{
		HTTPClient:      &hc,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &HTTPError{Code: resp.StatusCode}
		}
		return nil, err
	}
	ws.SetReadLimit(-1) // a connect reply may carry a large backlog
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ws.CloseNow()
		return nil, errWSClosed
	}
	c.ws = ws
	c.mu.Unlock()
	go c.read(ws)
	return ws, nil
}

// read reads the frames of ws until it fails.
func (c *wsConn) read(ws *websocket.Conn) {
	var buf []byte
	for {
		typ, rd, err := ws.Reader(context.Background())
		if err == nil {
			buf, err = readAll(buf[:0], rd)
		}
		at := time.Now()
		if err != nil {
			c.fail(ws, err)
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var replies []byte
		if c.push != nil {
			replies = c.push(buf, at) // a new slice: buf is reused
		} else {
			replies = append([]byte(nil), buf...)
		}
		if len(replies) > 0 {
			c.deliver(replies)
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a huge buffer
		}
	}
}

// deliver hands data to the RoundTrip waiting for one of its reply ids.
func (c *wsConn) deliver(data []byte) {
	var w *wsWaiter
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return
	}
	_ = eachMessage(data, func(d delivery, _ []byte) error {
		if d.id == nil || !(d.reply || d.meta) {
			return nil
		}
		if w = c.waiters[idKey(d.id)]; w != nil {
			return errStop
		}
		return nil
	})
	if w == nil {
		return
	}
	for _, id := range w.ids {
		delete(c.waiters, id)
	}
	w.done <- wsFrame{data: data}
}

var errStop = errors.New("stop")

// fail ends ws: its waiters get err, and the next RoundTrip dials again.
func (c *wsConn) fail(ws *websocket.Conn, err error) {
	ws.CloseNow()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == ws {
		c.ws = nil
	}
	for id, w := range c.waiters {
		if w.ws == ws {
			delete(c.waiters, id)
			select {
			case w.done <- wsFrame{err: err}:
			default:
			}
		}
	}
}

// RoundTrip implements Conn: it writes batch as one frame and returns the
// frame that answers it (appended to dst): all of it without a Push, only
// its replies with one.
func (c *wsConn) RoundTrip(ctx context.Context, _ Kind, batch, dst []byte) ([]byte, error) {
	ws, err := c.socket(ctx)
	if err != nil {
		return dst, err
	}
	w := &wsWaiter{ws: ws, done: make(chan wsFrame, 1)}
	_ = eachMessage(batch, func(d delivery, _ []byte) error {
		if d.id != nil {
			w.ids = append(w.ids, idKey(d.id))
		}
		return nil
	})
	if len(w.ids) == 0 {
		return dst, errors.New("websocket: batch without message ids")
	}
	c.mu.Lock()
	for _, id := range w.ids {
		c.waiters[id] = w
	}
	c.mu.Unlock()
	unregister := func() {
		c.mu.Lock()
		for _, id := range w.ids {
			if c.waiters[id] == w {
				delete(c.waiters, id)
			}
		}
		c.mu.Unlock()
	}
	if err := ws.Write(ctx, websocket.MessageText, batch); err != nil {
		unregister()
		if ctx.Err() == nil {
			c.fail(ws, err)
		}
		return dst, err
	}
	select {
	case f := <-w.done:
		if f.err != nil {
			return dst, f.err
		}
		if dst == nil {
			return f.data, nil
		}
		return append(dst, f.data...), nil
	case <-ctx.Done():
		unregister()
		return dst, ctx.Err()
	}
}

// Close implements Conn.
func (c *wsConn) Close() error {
	c.mu.Lock()
	ws := c.ws
	c.closed = true
	c.ws = nil
	c.mu.Unlock()
	if ws != nil {
		return ws.CloseNow()
	}
	return nil
}

// wsURL is the URL to dial for a Bayeux endpoint URL.
func wsURL(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"):
		return "ws://" + u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		return "wss://" + u[len("https://"):]
	}
	return u
}

// idKey is the key of a raw message id: a string id unquoted (when it has
// no escapes), any other value as it stands.
func idKey(raw []byte) string {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	return string(raw)
}
