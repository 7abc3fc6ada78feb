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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gws "github.com/gobwas/ws"

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

// wsConn is one WebSocket carrying Bayeux messages: every text message in
// either direction is a JSON array of messages. The socket is bound to
// the session it handshook; a socket that did not handshake acts for a
// session by clientId (and browser cookie), as CometD allows for reloads.
// Closing the socket does not remove the session: it expires as usual.
//
// An idle socket has no goroutine: the server's poller (epoll, on Linux)
// starts one when bytes arrive, and it reads until nothing is buffered.
// Held connects wait on the engine without a goroutine either; whoever
// ends the wait writes the reply.
//
// The frames are read and written with gobwas/ws's frame functions over
// the hijacked connection, so that an idle socket costs only this struct
// (with what it keeps of the upgrade request) and its connection: a
// parked socket gives its reader and 64-byte read buffer back to a pool.
// One goroutine at a time reads (the reader: the poller's, or the one
// that upgraded) and owns br; any goroutine writes, one whole frame at a
// time under writeMu.
type wsConn struct {
	s       *Server
	raw     net.Conn      // the hijacked connection
	br      *bufio.Reader // what the reader reads raw through; nil while parked
	req     keptRequest   // for Client.Request
	browser string
	last    atomic.Int64 // unix nanoseconds of the last message read

	mu      sync.Mutex
	bound   string
	known   []string    // sessions this socket acted for, besides bound
	unpoll  func() bool // cancels the poller's wait, while parked
	held    *hold       // the socket's held connect, while it waits
	writeMu sync.Mutex  // one frame at a time on raw
	closed  bool
	sentEnd bool // the close frame went out (under writeMu): nothing follows it
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
				ws.close(gws.StatusPolicyViolation, "bayeux: idle")
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

// wsReadBuffer sizes the read buffer a socket keeps for its lifetime
// (net/http's are 4 KiB): frame headers and small frames come in one read;
// bigger payloads are read straight into the message.
const wsReadBuffer = 64

// wsCloseWait bounds how long a socket that sent its close frame waits for
// the peer's before the connection is closed.
const wsCloseWait = 2 * time.Second

// wsMaxHeader is the size of the longest header of a frame the server
// sends (unmasked, 64-bit length).
const wsMaxHeader = 10

// serveWebSocket upgrades r from cl and serves Bayeux over the socket
// until it closes. The origin was checked by ServeHTTP
// (Options.AllowedOrigins); without credentials (an origin allowed only
// by "*") the socket's Client.Request has no cookies. It reports whether
// the socket took over the IP slot (it releases it when it closes).
//
// No extension is negotiated (permessage-deflate would cost every socket
// a compressor's state), and no subprotocol.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, cl realip.Client, credentials bool) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		// HTTP/1.0 has no upgrade, and Go's HTTP/2 server no WebSocket
		// (RFC 8441): the library would answer 505 or 500.
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "bayeux: WebSocket needs HTTP/1.1", http.StatusUpgradeRequired)
		return false
	}
	browser := ""
	if ck, err := r.Cookie(BrowserCookie); err == nil && validBrowserID(ck.Value) {
		browser = ck.Value
		if !credentials {
			// The socket keeps no Cookie header: not the whole of it for
			// the browser's id.
			browser = strings.Clone(browser)
		}
	} else {
		browser = newID()
		http.SetCookie(w, &http.Cookie{Name: BrowserCookie, Value: browser, Path: "/", HttpOnly: true,
			Secure: cl.Secure, SameSite: http.SameSiteLaxMode})
	}
	// The headers set on w (the cookie, CORS) go with the 101 response, or
	// with the 4xx that refuses a bad handshake (a missing or bad
	// Sec-WebSocket-Key or Sec-WebSocket-Version).
	up := gws.HTTPUpgrader{Header: w.Header(), Timeout: s.opts.WriteTimeout}
	conn, brw, _, err := up.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close() // hijacked: the refusal was written on it
		}
		return false
	}
	if g, ok := conn.(*gatherConn); ok {
		conn = g.Conn // gathering is for the long-poll handler: a socket writes whole frames
	}
	ws := &wsConn{s: s, raw: conn, br: wsReader(conn, brw.Reader), req: s.keepRequest(r, cl, credentials),
		browser: browser}
	ws.last.Store(time.Now().UnixNano())
	if !s.sockets.add(s, ws) {
		ws.close(gws.StatusGoingAway, "server shutting down")
	}
	if !ws.wait() {
		go ws.read()
	}
	return true
}

// wsReaders are the readers of the sockets that are not parked.
var wsReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, wsReadBuffer) }}

// wsReader returns the small buffer a socket reads conn through, holding
// the bytes the client sent before the upgrade's response, which net/http
// read already into hr (its 4 KiB buffer, let go).
func wsReader(conn net.Conn, hr *bufio.Reader) *bufio.Reader {
	n := hr.Buffered()
	if n == 0 {
		br := wsReaders.Get().(*bufio.Reader)
		br.Reset(conn)
		return br
	}
	b, _ := hr.Peek(n)
	br := bufio.NewReaderSize(&prefixConn{Conn: conn, pre: bytes.Clone(b)}, max(wsReadBuffer, n))
	// All in br: Buffered tells the truth to wait, and once br is empty
	// the socket may read conn through another reader.
	_, _ = br.Peek(n)
	return br
}

// reader returns the socket's reader, taking one from the pool when the
// socket has none (it was parked). Only the socket's reader calls it.
func (ws *wsConn) reader() *bufio.Reader {
	if ws.br == nil {
		ws.br = wsReaders.Get().(*bufio.Reader)
		ws.br.Reset(ws.raw)
	}
	return ws.br
}

// wait parks the socket until bytes arrive and reports true: the poller
// then starts a reader, and no goroutine waits meanwhile. It reports false
// when the caller must go on reading instead: bytes are buffered, the
// socket cannot be polled (TLS, whose buffered plaintext epoll cannot
// see, or no poller), or it is closing (the reader then waits for the
// peer's close frame). A parked socket's reader goes back to the pool.
func (ws *wsConn) wait() bool {
	s := ws.s
	p := s.poller()
	pc, pollable := plainTCP(ws.raw)
	if p == nil || !pollable || ws.br != nil && ws.br.Buffered() > 0 {
		return false
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return false
	}
	if br := ws.br; br != nil {
		ws.br = nil
		if br.Size() == wsReadBuffer { // not the first one, if it was bigger
			br.Reset(nil)
			wsReaders.Put(br)
		}
	}
	s.stats.Parked.Add(1)
	stop, err := p.Wait(pc, ws.readable)
	if err != nil {
		s.stats.Parked.Add(-1)
		return false
	}
	ws.unpoll = stop
	return true
}

// readable is the poller's call when bytes arrive on a parked socket: a
// reader starts.
func (ws *wsConn) readable() {
	ws.s.stats.Parked.Add(-1)
	go ws.read()
}

// read is the socket's reader: it reads and handles messages while bytes
// are buffered (or, without a poller, until the socket ends), then parks
// the socket again. Once the socket is closing, it reads on only until
// the peer's close frame (drain).
func (ws *wsConn) read() {
	s := ws.s
	for {
		if ws.isClosed() {
			ws.drain(0)
			return
		}
		msg, ok, err := ws.readMessage()
		if err != nil {
			ws.fail(err)
			return
		}
		if ok && !ws.isClosed() {
			ws.last.Store(time.Now().UnixNano())
			ticket := s.arrivals.Add(1)
			msgs, err := protocol.DecodeBatchLimit(msg, s.opts.MaxBatch)
			if errors.Is(err, protocol.ErrTooManyMessages) {
				s.refuse(RefusedBatch)
				ws.fail(&wsError{code: gws.StatusPolicyViolation, reason: "bayeux: too many messages in one frame"})
				return
			}
			if err != nil {
				ws.fail(&wsError{code: gws.StatusInvalidFramePayloadData, reason: truncate(err.Error(), 120)})
				return
			}
			ws.handle(msgs, ticket)
		}
		if ws.wait() {
			return
		}
	}
}

// wsError is a reason to close a socket with a close frame: the code and
// reason sent, and how many bytes of the frame being read were left
// unread (skipped before looking for the peer's close frame; negative:
// the framing is lost).
type wsError struct {
	code   gws.StatusCode
	reason string
	skip   int64
}

func (e *wsError) Error() string { return e.reason }

// peerClosed is the close frame the peer sent: its payload's status code
// (or nothing), which the server's close frame echoes.
type peerClosed struct{ echo []byte }

func (*peerClosed) Error() string { return "websocket: closed by the peer" }

// readMessage reads frames until a whole text message has come and
// returns it, unmasked and reassembled from its fragments, with ok. Control
// frames are answered as they come (a ping by its pong); one that comes
// alone, outside a fragmented message, returns without a message (ok
// false), so that the socket may park. Errors: a *wsError for what the
// server refuses, a *peerClosed, or the connection's.
//
// A message's size is checked against Options.MaxMessageSize as each
// frame header announces its length (fragments after the first count
// with their headers), before the payload is read; the
// payload is then read into a buffer that grows as its bytes arrive, so
// that a header claiming a big frame costs nothing until the bytes come.
func (ws *wsConn) readMessage() (msg []byte, ok bool, err error) {
	limit := ws.s.opts.MaxMessageSize
	size := int64(0) // of the message so far
	state := gws.StateServerSide
	for {
		h, err := gws.ReadHeader(ws.reader())
		switch {
		case errors.Is(err, gws.ErrHeaderLengthMSB), errors.Is(err, gws.ErrHeaderLengthUnexpected):
			return nil, false, &wsError{code: gws.StatusProtocolError, reason: "bayeux: " + err.Error(), skip: -1}
		case err != nil:
			return nil, false, err
		}
		// Masked (from a client), no reserved bits or opcodes, control
		// frames short and whole, continuations only within a message.
		if err := gws.CheckHeader(h, state); err != nil {
			return nil, false, &wsError{code: gws.StatusProtocolError, reason: "bayeux: " + err.Error(), skip: h.Length}
		}
		if h.OpCode.IsControl() {
			if err := ws.control(h); err != nil {
				return nil, false, err
			}
			if !state.Fragmented() {
				return nil, false, nil
			}
			continue
		}
		if h.OpCode == gws.OpBinary {
			return nil, false, &wsError{code: gws.StatusUnsupportedData, reason: "bayeux: text frames only", skip: h.Length}
		}
		// A continuation's header counts too: endless empty fragments
		// end like a message too big.
		if h.OpCode == gws.OpContinuation {
			size += int64(gws.HeaderSize(h))
		}
		if size > limit || h.Length > limit-size {
			return nil, false, &wsError{code: gws.StatusMessageTooBig,
				reason: "bayeux: message larger than " + strconv.FormatInt(limit, 10) + " bytes", skip: h.Length}
		}
		size += h.Length
		if msg, err = ws.readPayload(msg, h); err != nil {
			return nil, false, err
		}
		if h.Fin {
			if msg == nil {
				msg = []byte{}
			}
			return msg, true, nil
		}
		state = state.Set(gws.StateFragmented)
	}
}

// readPayload appends h's payload to msg, unmasked. msg grows as the bytes
// arrive (at most doubling), never to the announced length at once.
func (ws *wsConn) readPayload(msg []byte, h gws.Header) ([]byte, error) {
	start := len(msg)
	for left := h.Length; left > 0; {
		if len(msg) == cap(msg) {
			msg = slices.Grow(msg, int(min(left, max(int64(cap(msg)), 512))))
		}
		room := msg[len(msg):cap(msg)]
		if int64(len(room)) > left {
			room = room[:left]
		}
		n, err := ws.reader().Read(room)
		msg = msg[:len(msg)+n]
		left -= int64(n)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	gws.Cipher(msg[start:], h.Mask, 0)
	return msg, nil
}

// control reads the control frame h announced and answers it: a ping
// with a pong (same payload), a close with a *peerClosed error. A pong is
// ignored (the server sends no pings).
func (ws *wsConn) control(h gws.Header) error {
	var buf [gws.MaxControlFramePayloadSize]byte
	p := buf[:h.Length]
	if _, err := io.ReadFull(ws.reader(), p); err != nil {
		return err
	}
	gws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case gws.OpPing:
		ws.put(controlFrame(gws.OpPong, p), false)
	case gws.OpClose:
		if len(p) == 0 {
			return &peerClosed{}
		}
		code, reason := gws.ParseCloseFrameDataUnsafe(p)
		if len(p) < 2 || gws.CheckCloseFrameData(code, reason) != nil {
			return &wsError{code: gws.StatusProtocolError, reason: "bayeux: invalid close frame"}
		}
		return &peerClosed{echo: gws.NewCloseFrameBody(code, "")}
	}
	return nil
}

// controlFrame returns a whole control frame, ready to be written.
func controlFrame(op gws.OpCode, payload []byte) []byte {
	b, _ := gws.CompileFrame(gws.NewFrame(op, true, payload)) // payload <= 125 bytes: no error
	return b
}

// fail ends the socket for err, from the reader: a *wsError with a close
// frame of its code (then the reader waits for the peer's), a close frame
// from the peer with its echo, anything else (the connection failed) at
// once.
func (ws *wsConn) fail(err error) {
	var we *wsError
	var pc *peerClosed
	switch {
	case errors.As(err, &we):
		ws.close(we.code, we.reason)
		ws.drain(we.skip)
	case errors.As(err, &pc):
		if first, _ := ws.release(); first {
			ws.put(controlFrame(gws.OpClose, pc.echo), true)
		}
		ws.raw.Close() // the server closes the connection first (RFC 6455 7.1.1)
	default:
		ws.abort()
	}
}

// drain is the end of a socket that sent its close frame, on its reader:
// it discards skip bytes (the rest of a refused frame; negative: all, the
// framing being lost), then frames until the peer's close frame, an
// error or the read deadline (wsCloseWait), and closes the connection.
// The peer thus reads the close frame: closing with its bytes unread
// would reset the connection, and the close frame could be lost.
func (ws *wsConn) drain(skip int64) {
	defer ws.raw.Close()
	br := ws.reader()
	if skip < 0 {
		_, _ = io.Copy(io.Discard, br)
		return
	}
	if _, err := io.CopyN(io.Discard, br, skip); err != nil {
		return
	}
	for {
		h, err := gws.ReadHeader(br)
		if err != nil || h.OpCode == gws.OpClose {
			return
		}
		if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
			return
		}
	}
}

func (ws *wsConn) isClosed() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.closed
}

// release marks the socket closed and lets go of what it holds: its
// poller wait, its held connect (answered, and the answer dropped), its IP
// slot, its place among the open sockets; the sessions it served expire
// as usual unless a new connect arrives (no leak on abnormal close). It
// reports whether this call closed the socket (false: it was closed
// already), and whether the socket was parked (then no reader runs, and
// none will).
func (ws *wsConn) release() (first, parked bool) {
	s := ws.s
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return false, false
	}
	ws.closed = true
	unpoll, held := ws.unpoll, ws.held
	ws.unpoll = nil
	known := ws.known
	if ws.bound != "" {
		known = append(known[:len(known):len(known)], ws.bound)
	}
	ws.mu.Unlock()
	if unpoll != nil && unpoll() {
		s.stats.Parked.Add(-1)
		parked = true
	}
	if held != nil {
		held.cancel()
	}
	s.sockets.remove(ws)
	s.ips.release(ws.req.client.IP)
	for _, id := range known {
		// A connect held elsewhere (a newer socket) keeps the session.
		if !s.isHeld(id) {
			_ = s.engine.Touch(context.Background(), id, time.Now().Add(s.opts.ConnectTimeout))
		}
	}
	return true, parked
}

// close ends the socket once with a close frame of code and reason. The
// close handshake does not block the caller: the frame is written on a
// goroutine of its own, and the peer has wsCloseWait to answer it (its
// answer is read by the socket's reader, or by that goroutine when the
// socket was parked) before the connection is closed.
func (ws *wsConn) close(code gws.StatusCode, reason string) {
	first, parked := ws.release()
	if !first {
		return
	}
	_ = ws.raw.SetReadDeadline(time.Now().Add(wsCloseWait))
	go func() {
		ws.put(controlFrame(gws.OpClose, gws.NewCloseFrameBody(code, reason)), true)
		if parked {
			ws.drain(0)
		}
	}()
}

// abort ends the socket at once, without a close frame: the connection
// failed (a read or a write), or the peer left.
func (ws *wsConn) abort() {
	ws.release()
	ws.raw.Close()
}

func (ws *wsConn) know(id string) {
	ws.mu.Lock()
	if id != ws.bound && !slices.Contains(ws.known, id) {
		ws.known = append(ws.known, id)
	}
	ws.mu.Unlock()
}

func (ws *wsConn) exchange() *exchange {
	return &exchange{s: ws.s, ctx: context.Background(), transport: protocol.WebSocket, remoteAddr: ws.req.client.IP,
		ws: ws, browser: ws.browser, http2: true}
}

// boundTo returns the session the socket handshook, or "".
func (ws *wsConn) boundTo() string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.bound
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
	// without a goroutine and without an exchange; the reply, in an
	// exchange of its own, is written by the goroutine that ends the
	// wait (replied).
	h.x = nil
	// Registered under ws.mu so that close sees it (or it sees close).
	ws.mu.Lock()
	if !h.start(nil) {
		ws.mu.Unlock()
		ws.replied(h)
		return
	}
	ws.held = h
	closed := ws.closed
	ws.mu.Unlock()
	if closed {
		h.cancel()
	}
}

// replied writes the reply of h, a connect the socket held, in a frame of
// its own, and lets h go.
func (ws *wsConn) replied(h *hold) {
	ws.mu.Lock()
	if ws.held == h {
		ws.held = nil
	}
	ws.mu.Unlock()
	x := h.x
	// CometD drops a superseded WebSocket connect silently.
	if !h.superseded.Load() || len(x.events) > 0 {
		ws.write(&x.response)
	}
	x.done()
}

// write writes a response as one text frame, if it has anything and the
// socket is open. A client that does not read it within WriteTimeout is
// cut off (its session expires as usual).
func (ws *wsConn) write(r *response) {
	if r.empty() || ws.isClosed() {
		return
	}
	// The header goes in front of the payload, in the same buffer.
	buf := r.buf(wsMaxHeader + r.sizeHint())
	frame, err := r.encode(buf[:wsMaxHeader])
	if err != nil {
		ws.s.log.Error("encode websocket frame failed", "err", err)
		return
	}
	h := gws.Header{Fin: true, OpCode: gws.OpText, Length: int64(len(frame) - wsMaxHeader)}
	start := wsMaxHeader - gws.HeaderSize(h)
	_ = gws.WriteHeader(headerSlot(frame[start:wsMaxHeader]), h)
	ws.put(frame[start:], false)
}

// headerSlot is the room reserved for a frame's header in front of its
// payload, as gws.WriteHeader's io.Writer.
type headerSlot []byte

func (h headerSlot) Write(p []byte) (int, error) { return copy(h, p), nil }

// put writes one whole frame with one write, within WriteTimeout, unless
// the close frame went out already; last says frame is the close frame. A
// failed write aborts the socket. It reports whether frame was written.
func (ws *wsConn) put(frame []byte, last bool) bool {
	ws.writeMu.Lock()
	if ws.sentEnd {
		ws.writeMu.Unlock()
		return false
	}
	ws.sentEnd = last
	_ = ws.raw.SetWriteDeadline(time.Now().Add(ws.s.opts.WriteTimeout))
	_, err := ws.raw.Write(frame)
	ws.writeMu.Unlock()
	if err != nil {
		ws.abort()
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
