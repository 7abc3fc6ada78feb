package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/netpoll"
	"github.com/bayeux-go/bayeux/internal/realip"
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
//
// An idle socket has no goroutine: the server's poller (epoll, on Linux)
// starts one when bytes arrive, and it reads until nothing is buffered.
// Held connects wait on the engine without a goroutine either; whoever
// ends the wait writes the reply.
type wsConn struct {
	s          *Server
	c          *websocket.Conn
	raw        net.Conn      // the hijacked connection under c
	br         *bufio.Reader // what c reads through
	out        *coalescer    // what c writes through
	r          *http.Request // the upgrade request, without its context
	browser    string
	remoteAddr string
	ip         string
	last       atomic.Int64 // unix nanoseconds of the last message read

	mu       sync.Mutex
	bound    string
	known    []string // sessions this socket acted for
	closed   bool
	unpoll   func() bool // cancels the poller's wait, while parked
	held     *hold       // the socket's held connect, while it waits
	writeMu  sync.Mutex  // one frame at a time through out
	pollable bool
	pollConn syscall.Conn // the TCP connection under raw, when pollable
}

// socketSet is the server's open WebSockets, for shutdown and for closing
// half-open ones.
type socketSet struct {
	mu     sync.Mutex
	m      map[*wsConn]struct{}
	closed bool
	stop   chan struct{} // ends the sweeper
}

// add registers ws, or reports false after closeAll. The first socket
// starts the sweeper: a live client sends a connect at least every
// PollTimeout, so a socket silent for longer than that plus ConnectTimeout
// is half-open (the peer vanished) and is closed rather than kept forever.
func (ss *socketSet) add(s *Server, ws *wsConn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	if ss.m == nil {
		ss.m = make(map[*wsConn]struct{})
		ss.stop = make(chan struct{})
		go ss.sweep(s.opts.PollTimeout+s.opts.ConnectTimeout, ss.stop)
	}
	ss.m[ws] = struct{}{}
	return true
}

func (ss *socketSet) sweep(idle time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(max(idle/8, 10*time.Millisecond))
	defer t.Stop()
	var silent []*wsConn
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			limit := now.Add(-idle).UnixNano()
			silent = silent[:0]
			ss.mu.Lock()
			for ws := range ss.m {
				if ws.last.Load() < limit {
					silent = append(silent, ws)
				}
			}
			ss.mu.Unlock()
			for _, ws := range silent {
				ws.close(websocket.StatusPolicyViolation, "bayeux: idle")
			}
		}
	}
}

func (ss *socketSet) remove(ws *wsConn) {
	ss.mu.Lock()
	delete(ss.m, ws)
	ss.mu.Unlock()
}

// closeAll refuses new sockets and returns the open ones.
func (ss *socketSet) closeAll() []*wsConn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.closed && ss.stop != nil {
		close(ss.stop)
	}
	ss.closed = true
	all := make([]*wsConn, 0, len(ss.m))
	for ws := range ss.m {
		all = append(all, ws)
	}
	return all
}

// poller returns the server's idle-socket poller, started on first use,
// or nil where there is none (not Linux): sockets then keep a goroutine.
func (s *Server) poller() *netpoll.Poller {
	s.pollOnce.Do(func() {
		p, err := netpoll.New()
		if err != nil {
			s.log.Debug("no poller for idle WebSockets: one goroutine each", "err", err)
			return
		}
		s.netpoll = p
	})
	return s.netpoll
}

// wsReadBuffer and wsWriteBuffer size the buffers coder/websocket keeps for
// the socket's lifetime (net/http's are 4 KiB each): bigger reads go
// straight to the caller, and writes are gathered by a coalescer.
const (
	wsReadBuffer  = 64
	wsWriteBuffer = 16
)

// serveWebSocket upgrades r from cl and serves Bayeux over the socket
// until it closes. The origin was checked by ServeHTTP
// (Options.AllowedOrigins); without credentials (an origin allowed only
// by "*") the socket's Client.Request has no cookies. It reports whether
// the socket took over the IP slot (it releases it when it closes).
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, cl realip.Client, credentials bool) bool {
	browser := ""
	if ck, err := r.Cookie(BrowserCookie); err == nil && validBrowserID(ck.Value) {
		browser = ck.Value
	} else {
		browser = newID()
		http.SetCookie(w, &http.Cookie{Name: BrowserCookie, Value: browser, Path: "/", HttpOnly: true,
			Secure: cl.Secure, SameSite: http.SameSiteLaxMode})
	}
	hj := &wsHijacker{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return false // Accept wrote the error response
	}
	c.SetReadLimit(s.opts.MaxMessageSize)
	ws := &wsConn{s: s, c: c, raw: hj.conn, br: hj.br, out: hj.out, r: detachRequest(r, cl, credentials),
		browser: browser, remoteAddr: cl.IP, ip: cl.IP}
	ws.last.Store(time.Now().UnixNano())
	// Not TLS: its buffered plaintext is invisible to epoll.
	ws.pollConn, ws.pollable = plainTCP(hj.conn)
	if !s.sockets.add(s, ws) {
		ws.close(websocket.StatusGoingAway, "server shutting down")
		return true
	}
	ws.next()
	return true
}

// keptHeaders are the upgrade request's headers a WebSocket keeps for
// Client.Request: those that say who the client is. The rest (the
// WebSocket handshake, caching, encodings) would cost every idle socket
// memory for nothing.
var keptHeaders = []string{"Authorization", "Cookie", "Forwarded", "Origin", "User-Agent",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip"}

// detachRequest is r as a WebSocket keeps it for Client.Request as long as
// the socket lives: without body, with only keptHeaders (and without
// Cookie and Authorization when !credentials), and with a context that
// holds only cl (realip.FromRequest).
func detachRequest(r *http.Request, cl realip.Client, credentials bool) *http.Request {
	n := 0
	for _, k := range keptHeaders {
		if len(r.Header[k]) > 0 {
			n++
		}
	}
	h := make(http.Header, n)
	for _, k := range keptHeaders {
		if !credentials && (k == "Cookie" || k == "Authorization") {
			continue
		}
		if v := r.Header[k]; len(v) > 0 {
			h[k] = slices.Clone(v)
		}
	}
	d := &http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: h, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, TLS: r.TLS}
	return d.WithContext(realip.NewContext(context.Background(), cl))
}

// next arranges for the socket's next message to be read: now when bytes
// are buffered, else when the poller sees the socket readable (no
// goroutine meanwhile), else on a goroutine blocked in Read.
func (ws *wsConn) next() {
	s := ws.s
	if p := s.poller(); p != nil && ws.pollable && ws.br.Buffered() == 0 {
		ws.mu.Lock()
		if ws.closed {
			ws.mu.Unlock()
			return
		}
		s.stats.Parked.Add(1)
		stop, err := p.Wait(ws.pollConn, func() {
			s.stats.Parked.Add(-1)
			go ws.read()
		})
		if err == nil {
			ws.unpoll = stop
			ws.mu.Unlock()
			return
		}
		s.stats.Parked.Add(-1)
		ws.mu.Unlock()
	}
	go ws.read()
}

// read reads and handles messages while bytes are buffered (or, without
// a poller, until the socket ends), then parks the socket again.
func (ws *wsConn) read() {
	s := ws.s
	for {
		typ, data, err := ws.c.Read(context.Background())
		if err != nil {
			ws.close(websocket.StatusNormalClosure, "")
			return
		}
		ws.last.Store(time.Now().UnixNano())
		ticket := s.arrivals.Add(1)
		if typ != websocket.MessageText {
			ws.close(websocket.StatusUnsupportedData, "bayeux: text frames only")
			return
		}
		msgs, err := protocol.DecodeBatchLimit(data, s.opts.MaxBatch)
		if errors.Is(err, protocol.ErrTooManyMessages) {
			s.refuse(RefusedBatch)
			ws.close(websocket.StatusPolicyViolation, "bayeux: too many messages in one frame")
			return
		}
		if err != nil {
			ws.close(websocket.StatusInvalidFramePayloadData, truncate(err.Error(), 120))
			return
		}
		ws.handle(msgs, ticket)
		if ws.br.Buffered() == 0 && ws.pollable && s.poller() != nil {
			ws.next()
			return
		}
	}
}

// close ends the socket once. The sessions it served expire normally
// unless a new connect arrives (no leak on abnormal close).
func (ws *wsConn) close(code websocket.StatusCode, reason string) {
	s := ws.s
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return
	}
	ws.closed = true
	unpoll, held := ws.unpoll, ws.held
	ws.unpoll = nil
	known := ws.known
	ws.mu.Unlock()
	if unpoll != nil && unpoll() {
		s.stats.Parked.Add(-1)
	}
	if held != nil {
		held.cancel() // answered (and dropped: the socket is closed)
	}
	s.sockets.remove(ws)
	s.ips.release(ws.ip)
	for _, id := range known {
		// A connect held elsewhere (a newer socket) keeps the session.
		if !s.isHeld(id) {
			_ = s.engine.Touch(context.Background(), id, time.Now().Add(s.opts.ConnectTimeout))
		}
	}
	if code == websocket.StatusNormalClosure {
		ws.c.CloseNow()
		return
	}
	// The close handshake waits for the peer: not on the caller's goroutine.
	go ws.c.Close(code, reason)
}

func (ws *wsConn) know(id string) {
	ws.mu.Lock()
	if !slices.Contains(ws.known, id) {
		ws.known = append(ws.known, id)
	}
	ws.mu.Unlock()
}

func (ws *wsConn) exchange() *exchange {
	ws.mu.Lock()
	bound := ws.bound
	ws.mu.Unlock()
	return &exchange{s: ws.s, ctx: context.Background(), transport: protocol.WebSocket, remoteAddr: ws.remoteAddr,
		req: ws.r, browser: ws.browser, http2: true, bound: bound}
}

func (ws *wsConn) handle(msgs []*protocol.Message, ticket uint64) {
	x := ws.exchange()
	x.ticket = ticket
	x.process(msgs)
	if x.hsReply != nil && x.hsReply.IsSuccessful() {
		ws.mu.Lock()
		ws.bound = x.hsReply.ClientID
		ws.mu.Unlock()
		ws.know(x.hsReply.ClientID)
		// The handshake reply travels alone in its frame.
		hr := &response{hsReply: x.hsReply}
		ws.write(hr)
		hr.done()
		x.hsReply = nil
	}
	for id, c := range x.clients {
		if c != nil {
			ws.know(id)
		}
	}
	h := x.hold
	x.hold = nil
	ws.write(&x.response)
	x.done()
	if h == nil {
		return
	}
	// The connect is held off the read loop, so the client can go on
	// sending on this socket; a newer connect supersedes it. It waits
	// without a goroutine; the reply, in a response of its own, is written
	// by the goroutine that ends the wait.
	cx := ws.exchange()
	cx.hold, h.x = h, cx
	reply := func() {
		ws.mu.Lock()
		if ws.held == h {
			ws.held = nil
		}
		ws.mu.Unlock()
		// CometD drops a superseded WebSocket connect silently.
		if !h.superseded.Load() || len(cx.events) > 0 {
			ws.write(&cx.response)
		}
		cx.done()
	}
	// Registered under ws.mu so that close sees it (or it sees close).
	ws.mu.Lock()
	if !h.start(reply) {
		ws.mu.Unlock()
		reply()
		return
	}
	ws.held = h
	closed := ws.closed
	ws.mu.Unlock()
	if closed {
		h.cancel()
	}
}

// write writes a response as one frame, if it has anything. A client
// that does not read it within WriteTimeout is cut off (its session
// expires as usual).
func (ws *wsConn) write(r *response) {
	if r.empty() {
		return
	}
	body, err := r.encode(r.buf(r.sizeHint()))
	if err != nil {
		ws.s.log.Error("encode websocket frame failed", "err", err)
		return
	}
	ws.writeMu.Lock()
	ws.out.begin(len(body) + 16)
	// c only frames body into out; the one write to the network is end's.
	err = ws.c.Write(context.Background(), websocket.MessageText, body)
	if err == nil {
		_ = ws.raw.SetWriteDeadline(time.Now().Add(ws.s.opts.WriteTimeout))
		err = ws.out.end()
	} else {
		ws.out.end()
	}
	ws.writeMu.Unlock()
	if err != nil {
		ws.close(websocket.StatusNormalClosure, "")
	}
}

// wsHijacker hands websocket.Accept the hijacked connection with small
// buffers: coder/websocket keeps its bufio pair for the socket's lifetime.
type wsHijacker struct {
	http.ResponseWriter
	conn net.Conn
	br   *bufio.Reader
	out  *coalescer
}

// Hijack implements http.Hijacker.
func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = conn
	size := wsReadBuffer
	if n := brw.Reader.Buffered(); n > 0 {
		// The client wrote before the upgrade's response: keep those bytes
		// in the new buffer.
		b, _ := brw.Reader.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn)
		size = max(size, n)
		h.br = bufio.NewReaderSize(r, size)
		_, _ = h.br.Peek(n)
	} else {
		h.br = bufio.NewReaderSize(r, size)
	}
	h.conn = conn
	h.out = &coalescer{w: conn}
	return conn, bufio.NewReadWriter(h.br, bufio.NewWriterSize(h.out, wsWriteBuffer)), nil
}

// Unwrap lets http.NewResponseController reach the ResponseWriter.
func (h *wsHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// coalescer turns a frame that coder/websocket writes in pieces into one
// write to the connection: between begin and end, writes are gathered;
// otherwise (control frames: pongs, close) they go straight out.
type coalescer struct {
	w      io.Writer
	mu     sync.Mutex
	on     bool
	buf    []byte
	pooled *[]byte // buf's, from the pool
}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.on {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *coalescer) begin(size int) {
	c.mu.Lock()
	c.on = true
	c.pooled = getBuf(size)
	c.buf = *c.pooled
	c.mu.Unlock()
}

// end writes what was gathered since begin.
func (c *coalescer) end() error {
	c.mu.Lock()
	b, pooled := c.buf, c.pooled
	c.on, c.buf, c.pooled = false, nil, nil
	c.mu.Unlock()
	var err error
	if len(b) > 0 {
		_, err = c.w.Write(b)
	}
	*pooled = b
	putBuf(pooled)
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
