package server

import (
	"context"
	"errors"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// exchange is the context of one inbound batch of messages, whatever the
// transport: who sent it and how, the sessions it acts for. The batch is
// dispatched (dispatch.go) into its response (response.go); its
// /meta/connect, answered last, is a hold (hold.go). It is used by one
// goroutine at a time.
type exchange struct {
	s          *Server
	ctx        context.Context
	transport  string
	remoteAddr string
	req        *http.Request
	// ws is the WebSocket the batch came on: the session it is bound to
	// by its handshake, the kept request the clients' Request builds.
	ws *wsConn
	// browser is the request's BAYEUX_BROWSER cookie value, or a new one
	// (newBrowser) when the request carried none.
	browser    string
	newBrowser bool
	// http2 is true when connects are not limited per browser (HTTP/2
	// and WebSocket multiplex, so a held connect blocks nothing).
	http2 bool
	// trial is set for TryHandshake: its session is removed at once, so
	// the per-address session and handshake limits do not apply.
	trial bool
	// ticket is the request's arrival number (Server.arrivals), its place
	// in its sessions' order (see lanes).
	ticket uint64

	clients map[string]*Client
	// ended are the sessions the request found past their deadline and
	// ended (see client).
	ended []string
	// hsClient is the client the request's handshake is for.
	hsClient *Client

	response
	// hold is the batch's /meta/connect, answered last.
	hold *hold
	// batch collects the publishes of a request for an engine that
	// publishes several at once (BatchPublisher); nil otherwise.
	batch []pendingPublish
	// stored are the request's publishes whose messages are being
	// stored in a history: their replies wait for it (waitStored).
	stored []pendingStore
}

// done runs once the exchange's response was written (or failed): the
// response's after funcs, then its connect's hold gives back what it took.
func (x *exchange) done() {
	x.response.done()
	if x.hold != nil {
		x.hold.release()
	}
}

// engineError logs an engine failure, unless the request itself went away
// (the client hung up or gave up): that is not the server's error.
func (x *exchange) engineError(what string, err error, attrs ...any) {
	if x.ctx.Err() != nil {
		x.s.log.Debug(what+" (request ended)", append(attrs, "err", err)...)
		return
	}
	x.s.log.Error(what, append(attrs, "err", err)...)
}

func (x *exchange) fail(m *protocol.Message, err error, advice *protocol.Advice) {
	x.s.stats.Errors.Add(1)
	x.reply(m.Fail(err, advice))
}

func handshakeAdvice() *protocol.Advice {
	return &protocol.Advice{Reconnect: protocol.ReconnectHandshake, Interval: protocol.Ms(0)}
}

// closingAdvice is the connect advice while the server shuts down: retry,
// but not at once and not all together (the listener may still accept a
// few requests), so clients do not spin against a closing server.
func (s *Server) closingAdvice() *protocol.Advice {
	a := s.retryAdvice()
	a.Interval = protocol.Ms(1000 + mathrand.Int64N(1000))
	return a
}

func noneAdvice() *protocol.Advice { return &protocol.Advice{Reconnect: protocol.ReconnectNone} }

func (s *Server) retryAdvice() *protocol.Advice {
	return &protocol.Advice{
		Reconnect:   protocol.ReconnectRetry,
		Interval:    protocol.Ms(s.opts.PollInterval.Milliseconds()),
		Timeout:     protocol.Ms(s.opts.PollTimeout.Milliseconds()),
		MaxInterval: s.opts.ConnectTimeout.Milliseconds(),
	}
}

// client returns the session named by id, or nil when there is none (or
// it belongs to another browser, or to a local client).
func (x *exchange) client(id string) (*Client, error) {
	if id == "" {
		return nil, nil
	}
	if c, ok := x.clients[id]; ok {
		return c, nil
	}
	if slices.Contains(x.ended, id) {
		return nil, errPastDeadline
	}
	info, ok, err := x.s.engine.Session(x.ctx, id)
	if err != nil {
		return nil, err
	}
	var c *Client
	if ok && x.owns(info) {
		if info.pastDeadline(time.Now()) {
			x.endAtDeadline(info)
			x.ended = append(x.ended, id)
			return nil, errPastDeadline
		}
		c = x.newClient(info)
	}
	if x.clients == nil {
		x.clients = make(map[string]*Client, 1)
	}
	x.clients[id] = c
	return c, nil
}

// newClient returns the client of info for this request.
func (x *exchange) newClient(info *SessionInfo) *Client {
	c := &Client{info: info, transport: x.transport, ws: x.ws}
	if x.req != nil {
		c.req.Store(x.req)
	}
	return c
}

// owns reports whether this request may act for the session.
func (x *exchange) owns(info *SessionInfo) bool {
	if x.transport == transportLocal {
		return info.Local
	}
	if info.Local {
		return false
	}
	if x.ws != nil {
		if bound := x.ws.boundTo(); bound != "" && info.ID != bound {
			return false // a socket acts only for the session it handshook
		}
	}
	if x.s.opts.TrustClientSession || info.Browser == "" {
		return true
	}
	return !x.newBrowser && x.browser == info.Browser
}

// session resolves m's client, replying with an error when it is unknown.
func (x *exchange) session(m *protocol.Message) *Client {
	c, err := x.client(m.ClientID)
	if errors.Is(err, errPastDeadline) {
		x.fail(m, err, handshakeAdvice())
		return nil
	}
	if err != nil {
		x.engineError("engine lookup failed", err)
		x.fail(m, protocol.ErrServerError, &protocol.Advice{Reconnect: protocol.ReconnectRetry, Interval: protocol.Ms(1000)})
		return nil
	}
	if c == nil {
		x.fail(m, protocol.ErrSessionUnknown, handshakeAdvice())
		return nil
	}
	return c
}

func (x *exchange) authorize(c *Client, m *protocol.Message, advice *protocol.Advice) bool {
	if x.s.opts.Authorize == nil || x.transport == transportLocal {
		return true
	}
	if err := x.s.opts.Authorize(x.ctx, c, m); err != nil {
		x.fail(m, err, advice)
		return false
	}
	return true
}

// handshakeClient is the client the request's handshake is for, made
// once (the incoming extensions see it before the handshake runs).
func (x *exchange) handshakeClient() *Client {
	if x.hsClient == nil {
		browser := x.browser
		if !x.newBrowser && x.ws == nil {
			// Not the whole Cookie header, for the session's life. (A
			// socket's is a string of its own, or a part of the Cookie
			// header it keeps anyway.)
			browser = strings.Clone(browser)
		}
		info := &SessionInfo{Created: time.Now(), RemoteAddr: x.remoteAddr, Browser: browser}
		x.hsClient = x.newClient(info)
	}
	return x.hsClient
}

// sender is the client that sent m for the extensions: nil when its
// session is unknown (or past its deadline, or the engine failed: the
// handler answers that).
func (x *exchange) sender(m *protocol.Message) *Client {
	if m.Channel == protocol.MetaHandshake {
		return x.handshakeClient()
	}
	c, err := x.client(m.ClientID)
	if err != nil {
		return nil
	}
	return c
}

// extendReplies runs the outgoing extensions on the replies handling m
// added: the handshake reply if it is new (hs was the one before), and
// x.replies from before on. Deleted ones are removed.
func (x *exchange) extendReplies(m *protocol.Message, before int, hs *protocol.Message) {
	var to *Client
	if m.Channel == protocol.MetaHandshake {
		if x.hsReply != nil && x.hsReply != hs {
			to = x.hsClient
			if !x.s.ext.outgoing(x.ctx, nil, to, x.hsReply) {
				x.hsReply = nil
			}
		}
	} else if m.ClientID != "" {
		to = x.clients[m.ClientID]
	}
	x.extendFrom(before, to)
}

// extendFrom runs the outgoing extensions on x.replies from before on,
// replies to to, and removes those deleted.
func (x *exchange) extendFrom(before int, to *Client) {
	if before >= len(x.replies) {
		return
	}
	kept := x.replies[:before]
	for _, r := range x.replies[before:] {
		if x.s.ext.outgoing(x.ctx, nil, to, r) {
			kept = append(kept, r)
		}
	}
	clear(x.replies[len(kept):])
	x.replies = kept
}
