//go:build !js

package wasmclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// WebSocketTransport is the Bayeux "websocket" transport (CometD's
// extension of Bayeux): one socket per Client, on which every frame in
// either direction is a JSON array of messages. Use it through
// Options.WebSocket; a Client then uses it for as long as it works and
// falls back to long-polling (Options.Transport) when it does not.
//
// The socket is dialed at the first Send (ws:// or wss:// from the http://
// or https:// URL) and dialed again after it broke. Each Send writes one
// frame and returns the frame that answers one of its messages, matched by
// message id (the server answers a held /meta/connect later than a publish
// sent after it), so every message must carry an id; the Client's do. A
// broken socket fails every Send waiting on it; a Send whose context
// expires closes the socket, as CometD does on a message timeout. Frames
// that answer no Send in flight go to the Client (a server may push events
// outside /meta/connect).
//
// The server binds a socket to the session that handshook on it, and a
// later socket of that session to its BAYEUX_BROWSER cookie, so the
// upgrade request carries the cookies of HTTPClient's jar and the jar
// stores those of the upgrade response. Natively this transport is built
// on github.com/coder/websocket.
//
// A WebSocketTransport serves one Client (message ids are per Client): do
// not share it. It is safe for concurrent use; do not change its fields
// after first use.
type WebSocketTransport struct {
	// HTTPClient sends the upgrade request; its Jar supplies and keeps
	// the cookies. nil means a client with its own cookie jar. The
	// Client's default shares the jar of its HTTPTransport.
	HTTPClient *http.Client
	// Header holds extra headers of the upgrade request (for example
	// Authorization, or Origin for a server that checks it).
	Header http.Header

	once sync.Once
	hc   *http.Client
	core wsCore
}

// defaultWebSocketTransport returns the WebSocket transport of a Client
// whose long-polling transport is lp: it shares lp's cookie jar and
// headers when lp is an *HTTPTransport, so that both transports act for
// the same browser.
func defaultWebSocketTransport(lp Transport) *WebSocketTransport {
	if ht, ok := lp.(*HTTPTransport); ok && ht.Client != nil && ht.Client.Jar != nil {
		return &WebSocketTransport{HTTPClient: ht.Client, Header: ht.Header}
	}
	return &WebSocketTransport{}
}

// Send implements Transport over the socket: it writes body as one frame
// and waits for the frame that answers it.
func (t *WebSocketTransport) Send(ctx context.Context, url string, body []byte) ([]byte, error) {
	return t.core.send(ctx, url, body, t.dial)
}

// Close closes the socket, if one is open; Sends waiting on it fail. A
// later Send dials a new one. The Client calls it when it stops.
func (t *WebSocketTransport) Close() error {
	t.core.close()
	return nil
}

func (t *WebSocketTransport) dial(ctx context.Context, url string) (socket, error) {
	t.once.Do(func() {
		t.hc = t.HTTPClient
		if t.hc == nil {
			jar, _ := cookiejar.New(nil) // never fails without options
			t.hc = &http.Client{Jar: jar}
		}
	})
	// coder/websocket takes http(s) URLs as ws(s), and the cookie jar
	// knows them by their http(s) form.
	if rest, ok := strings.CutPrefix(url, "ws"); ok && (strings.HasPrefix(rest, "://") || strings.HasPrefix(rest, "s://")) {
		url = "http" + rest
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: t.hc, HTTPHeader: t.Header})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			e := &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status}
			if resp.Body != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
				e.Body = string(b)
			}
			return nil, &WebSocketDialError{Err: e}
		}
		return nil, &WebSocketDialError{Err: err}
	}
	c.SetReadLimit(maxResponse)
	return &nativeSocket{c: c}, nil
}

// nativeSocket is a coder/websocket connection.
type nativeSocket struct {
	c *websocket.Conn
}

func (s *nativeSocket) read(ctx context.Context) ([]byte, error) {
	typ, b, err := s.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		s.c.Close(websocket.StatusUnsupportedData, "bayeux: text frames only")
		return nil, errors.New("binary frame")
	}
	return b, nil
}

func (s *nativeSocket) write(ctx context.Context, b []byte) error {
	return s.c.Write(ctx, websocket.MessageText, b)
}

// wsCloseWait bounds the closing handshake of a socket the client closes.
const wsCloseWait = 2 * time.Second

func (s *nativeSocket) close() {
	go func() {
		// Close waits for the server's close frame; do not let a dead
		// peer keep the goroutine long.
		t := time.AfterFunc(wsCloseWait, func() { s.c.CloseNow() })
		defer t.Stop()
		s.c.Close(websocket.StatusNormalClosure, "")
	}()
}
