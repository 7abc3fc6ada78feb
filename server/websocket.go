package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/protocol"
)

// isWebSocket reports whether r asks to upgrade to a WebSocket.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range splitComma(v) {
			if equalFold(t, token) {
				return true
			}
		}
	}
	return false
}

// wsConn is one WebSocket carrying Bayeux messages: every text frame in
// either direction is a JSON array of messages. The socket is bound to
// the session it handshook; a socket that did not handshake acts for a
// session by clientId (and browser cookie), as CometD allows for reloads.
// Closing the socket does not remove the session: it expires as usual.
type wsConn struct {
	s          *Server
	c          *websocket.Conn
	r          *http.Request
	ctx        context.Context
	browser    string
	remoteAddr string

	mu    sync.Mutex
	bound string
	known map[string]bool // sessions this socket acted for
}

// serveWebSocket upgrades r and serves Bayeux over the socket until it
// closes. The origin was checked by ServeHTTP (Options.AllowedOrigins).
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, ip string) {
	browser := ""
	if ck, err := r.Cookie(BrowserCookie); err == nil && validBrowserID(ck.Value) {
		browser = ck.Value
	} else {
		browser = newID()
		http.SetCookie(w, &http.Cookie{Name: BrowserCookie, Value: browser, Path: "/", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept wrote the error response
	}
	c.SetReadLimit(s.opts.MaxMessageSize)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.shutdown, func() {
		// Let held connects answer first, then close the socket.
		time.AfterFunc(500*time.Millisecond, func() { c.Close(websocket.StatusGoingAway, "server shutting down") })
	})
	defer stop()
	ws := &wsConn{s: s, c: c, r: r, ctx: ctx, browser: browser, remoteAddr: ip, known: map[string]bool{}}
	ws.run()
}

func (ws *wsConn) run() {
	s := ws.s
	defer func() {
		// Whatever ended the socket, the sessions it served now expire
		// normally unless a new connect arrives (no leak on abnormal close).
		ws.mu.Lock()
		ids := make([]string, 0, len(ws.known))
		for id := range ws.known {
			ids = append(ids, id)
		}
		ws.mu.Unlock()
		for _, id := range ids {
			// This socket's own held connect ends with its context; a
			// connect held elsewhere (a newer socket) keeps the session.
			if !s.isHeld(id) {
				_ = s.engine.Touch(context.Background(), id, time.Now().Add(s.opts.ConnectTimeout))
			}
		}
		ws.c.CloseNow()
	}()
	// A live client sends a connect at least every PollTimeout; a socket
	// silent for longer than that plus ConnectTimeout is half-open (the
	// peer vanished): close it rather than keep it forever.
	idle := s.opts.PollTimeout + s.opts.ConnectTimeout
	for {
		rctx, cancel := context.WithTimeout(ws.ctx, idle)
		typ, data, err := ws.c.Read(rctx)
		cancel()
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			ws.c.Close(websocket.StatusUnsupportedData, "bayeux: text frames only")
			return
		}
		msgs, err := protocol.DecodeBatch(data)
		if err != nil {
			ws.c.Close(websocket.StatusInvalidFramePayloadData, truncate(err.Error(), 120))
			return
		}
		if len(msgs) > s.opts.MaxBatch {
			ws.c.Close(websocket.StatusPolicyViolation, "bayeux: too many messages in one frame")
			return
		}
		ws.handle(msgs)
	}
}

func (ws *wsConn) exchange() *exchange {
	ws.mu.Lock()
	bound := ws.bound
	ws.mu.Unlock()
	return &exchange{s: ws.s, ctx: ws.ctx, transport: protocol.WebSocket, remoteAddr: ws.remoteAddr,
		req: ws.r, browser: ws.browser, http2: true, bound: bound}
}

func (ws *wsConn) handle(msgs []*protocol.Message) {
	x := ws.exchange()
	x.process(msgs)
	if x.hsReply != nil && x.hsReply.IsSuccessful() {
		ws.mu.Lock()
		ws.bound = x.hsReply.ClientID
		ws.known[ws.bound] = true
		ws.mu.Unlock()
		// The handshake reply travels alone in its frame.
		ws.writeExchange(&exchange{hsReply: x.hsReply})
		x.hsReply = nil
	}
	ws.mu.Lock()
	for id, c := range x.clients {
		if c != nil {
			ws.known[id] = true
		}
	}
	ws.mu.Unlock()
	hold := x.hold
	x.hold = nil
	ws.writeExchange(x)
	x.done()
	if hold != nil {
		// The connect is held off the read loop, so the client can go on
		// sending on this socket; a newer connect supersedes it.
		// It waits without a goroutine; the reply is written by the
		// goroutine that ends the wait.
		cx := ws.exchange()
		cx.hold = hold
		reply := func() {
			// CometD drops a superseded WebSocket connect silently.
			if !cx.superseded || len(cx.events) > 0 {
				ws.writeExchange(cx)
			}
			cx.done()
		}
		if !cx.startHold(reply) {
			reply()
		}
	}
}

// writeExchange writes x's response as one frame, if it has anything.
func (ws *wsConn) writeExchange(x *exchange) {
	if x.hsReply == nil && len(x.events) == 0 && len(x.replies) == 0 {
		return
	}
	x.s = ws.s
	body, err := x.encode(make([]byte, 0, x.sizeHint()))
	if err != nil {
		ws.s.log.Error("encode websocket frame failed", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ws.ctx), ws.s.opts.WriteTimeout)
	defer cancel()
	if err := ws.c.Write(ctx, websocket.MessageText, body); err != nil && !errors.Is(err, context.Canceled) {
		// A client that does not read is cut off; its session expires.
		ws.c.CloseNow()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
