package wasmclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Errors returned by the Client.
var (
	// ErrDisconnected fails what is pending when Disconnect is called, and
	// what is sent while it runs.
	ErrDisconnected = errors.New("wasmclient: client disconnected")
	// ErrAlreadyConnected is returned by Connect on a running client.
	ErrAlreadyConnected = errors.New("wasmclient: client already connected")
	// ErrNoReply means the server answered a request without a reply to a
	// message of it, or acknowledged a Call without sending its reply
	// within Options.MaxNetworkDelay.
	ErrNoReply = errors.New("wasmclient: no reply from the server")
	// ErrSessionEnded is the LastError of a client stopped because the
	// server ended its session (reconnect:"none" advice on a connect).
	ErrSessionEnded = errors.New("wasmclient: the server ended the session")
)

// Client is a Bayeux client. Create it with New, start it with Connect and
// stop it with Disconnect. All its methods are safe for concurrent use; see
// the package documentation for the delivery goroutine.
type Client struct {
	url  string
	opts Options
	log  Logger
	exts []Extension
	ids  atomic.Uint64

	disp   dispatcher
	states stateListeners
	kick   chan struct{} // wakes the sender
	token  *tokenSource  // Options.Token; nil without it

	mu       sync.Mutex
	run      *runState // nil when stopped
	closing  bool      // Disconnect is running
	state    StateInfo
	clientID string
	// ready is true while queued messages may be sent: there is a session
	// and its last connect or handshake succeeded.
	ready bool
	// useWS: the session handshook over the WebSocket, and its messages
	// go there (Options.WebSocket).
	useWS   bool
	adv     advice
	queue   [][]*request // groups; a group travels in one HTTP request
	pending map[protocol.ID]*request
	subs    map[string]*channelSubs
}

// runState is one Connect..stop lifetime of the background goroutines.
type runState struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ext    map[string]json.RawMessage
	// first receives Connect's result once: nil when first connected.
	first     chan error
	firstSent bool
}

// advice is the last advice received, as durations.
type advice struct {
	interval    time.Duration
	timeout     time.Duration
	maxInterval time.Duration
}

// New returns a Client for the Bayeux endpoint url (for example
// "http://localhost:8080/cometd"). It does no I/O: call Connect.
func New(url string, opts Options) *Client {
	opts.setDefaults()
	c := &Client{
		url:     url,
		opts:    opts,
		log:     opts.Logger,
		exts:    append([]Extension(nil), opts.Extensions...),
		kick:    make(chan struct{}, 1),
		pending: make(map[protocol.ID]*request),
		subs:    make(map[string]*channelSubs),
		adv:     advice{timeout: 60 * time.Second},
	}
	if opts.OutgoingExt != nil {
		c.exts = append(c.exts, outgoingFunc(opts.OutgoingExt))
	}
	if opts.Token != nil {
		c.token = &tokenSource{fetch: opts.Token}
	}
	c.disp.log = c.log
	if opts.WebSocket && !opts.WebSocketTransport.core.attach(c, c.pushed) {
		c.log.Warn("wasmclient: a WebSocketTransport is shared by two Clients; the first gets nothing more from it")
	}
	return c
}

// URL returns the Bayeux endpoint.
func (c *Client) URL() string { return c.url }

// ClientID returns the current session id, or "" when there is none. It
// changes when the client re-handshakes.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// State returns the current connection state.
func (c *Client) State() StateInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// OnState registers fn to be called on every state change and returns a
// function that removes it. fn runs on the delivery goroutine (see the
// package documentation), in order with message deliveries; it must not
// block.
func (c *Client) OnState(fn func(StateInfo)) (remove func()) {
	return c.states.add(fn)
}

// Connect handshakes (with Options.Ext) and starts the /meta/connect loop
// in the background. It returns nil once the first connect succeeded, and
// the handshake's error if the server refuses it for good (advice
// reconnect:"none", for example a *protocol.Error 403::... for a wrong
// password); the client is then Disconnected. Transport failures are
// retried with backoff (state Reconnecting) until ctx ends: then Connect
// stops the client and returns ctx.Err(). ctx bounds only this first
// connection; the loop then runs until Disconnect or a terminal failure.
// Connect on a running client returns ErrAlreadyConnected.
func (c *Client) Connect(ctx context.Context) error {
	ext := make(map[string]json.RawMessage, len(c.opts.Ext))
	for k, v := range c.opts.Ext {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("wasmclient: handshake ext %q: %w", k, err)
		}
		ext[k] = b
	}
	c.mu.Lock()
	if c.run != nil {
		c.mu.Unlock()
		return ErrAlreadyConnected
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &runState{ctx: rctx, cancel: cancel, ext: ext, first: make(chan error, 1)}
	c.run = r
	c.closing = false
	c.setStateLocked(r, StateInfo{State: Connecting})
	r.wg.Add(2)
	if c.token != nil {
		r.wg.Add(1)
		go c.refresher(r)
	}
	c.mu.Unlock()
	go c.loop(r)
	go c.sender(r)

	select {
	case err := <-r.first:
		return err
	case <-ctx.Done():
		c.mu.Lock()
		c.stopLocked(r, ctx.Err())
		c.mu.Unlock()
		r.wg.Wait()
		return ctx.Err()
	}
}

// Disconnect sends /meta/disconnect after the messages already queued
// (when there is a session), stops the connect loop and waits for the
// background goroutines to end; the state becomes Disconnected. Messages
// still pending fail with ErrDisconnected. The client always stops; the
// error reports whether the server acknowledged the disconnect (ctx, or
// Options.MaxNetworkDelay, bounds that wait). Subscriptions are kept and
// sent again by a later Connect. Disconnect on a stopped client does
// nothing.
func (c *Client) Disconnect(ctx context.Context) error {
	c.mu.Lock()
	r := c.run
	if r == nil || c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	var req *request
	if c.ready && c.clientID != "" {
		req = newRequest(&protocol.Message{Channel: protocol.MetaDisconnect}, false)
		req.noRetry = true
		c.enqueueLocked(req)
	}
	c.mu.Unlock()

	var err error
	if req != nil {
		wctx, cancel := context.WithTimeout(ctx, c.opts.MaxNetworkDelay)
		_, err = c.wait(wctx, req)
		cancel()
	}
	c.mu.Lock()
	c.stopLocked(r, nil)
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// stopLocked ends run r: the goroutines are told to stop, everything queued
// or pending fails with err (ErrDisconnected when nil) and the state
// becomes Disconnected with LastError err.
func (c *Client) stopLocked(r *runState, err error) {
	if c.run != r {
		return
	}
	c.clientID = ""
	c.setStateLocked(r, StateInfo{State: Disconnected, LastError: err})
	c.run = nil
	c.closing = false
	c.ready = false
	c.useWS = false
	r.cancel()
	if c.opts.WebSocket {
		c.opts.WebSocketTransport.core.close()
	}
	fail := err
	if fail == nil {
		fail = ErrDisconnected
	}
	for _, g := range c.queue {
		for _, q := range g {
			q.complete(nil, fail)
		}
	}
	c.queue = nil
	for id, q := range c.pending {
		delete(c.pending, id)
		q.complete(nil, fail)
	}
	c.sendFirst(r, fail)
}

func (c *Client) sendFirst(r *runState, err error) {
	if !r.firstSent {
		r.firstSent = true
		r.first <- err
	}
}

// setStateLocked records a state change of run r and posts it to the
// OnState callbacks; it ignores stale runs and repeated states.
func (c *Client) setStateLocked(r *runState, info StateInfo) {
	if c.run != r {
		return
	}
	info.ClientID = c.clientID
	if sameState(info, c.state) {
		return
	}
	c.state = info
	c.disp.post(func() { c.states.call(info) })
}

// sameState compares errors by text: == on errors can panic.
func sameState(a, b StateInfo) bool {
	return a.State == b.State && a.ClientID == b.ClientID && a.NextRetry.Equal(b.NextRetry) &&
		a.Failures == b.Failures && errText(a.LastError) == errText(b.LastError) &&
		(a.LastError == nil) == (b.LastError == nil)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *Client) setState(r *runState, info StateInfo) {
	c.mu.Lock()
	c.setStateLocked(r, info)
	c.mu.Unlock()
}

func (c *Client) nextID() protocol.ID {
	return protocol.ID(strconv.FormatUint(c.ids.Add(1), 10))
}

// loop is the handshake and /meta/connect loop of run r.
func (c *Client) loop(r *runState) {
	defer r.wg.Done()
	ctx := r.ctx
	var (
		failures int
		lastErr  error
		session  bool      // a handshake succeeded and the server did not forget it
		fresh    bool      // the next connect asks for an immediate reply
		lastOK   time.Time // last successful handshake or connect
		// spins counts consecutive connects that should have been held
		// but came back at once and empty (a server that is shutting
		// down does that); from the third on the client backs off.
		spins int
		// noWS: the WebSocket failed where long-polling worked; this run
		// uses long-polling only (Options.WebSocket).
		noWS = !c.opts.WebSocket
		// freshToken: the last handshake was refused; the next one asks
		// Options.Token for a new token, and tokenRetried says it did.
		freshToken, tokenRetried bool
	)
	// retry waits before the next attempt, in state Reconnecting.
	retry := func(delay time.Duration) bool {
		c.setState(r, StateInfo{State: Reconnecting, NextRetry: time.Now().Add(delay), LastError: lastErr, Failures: failures})
		c.log.Debug("wasmclient: retrying", "in", delay, "failures", failures, "err", lastErr)
		return sleep(ctx, delay)
	}
	for ctx.Err() == nil {
		if !session {
			if c.isClosing() {
				return // Disconnect is running: no new session
			}
			c.setState(r, StateInfo{State: Connecting, LastError: lastErr, Failures: failures})
			if c.token != nil {
				err := c.useToken(r, freshToken)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					failures++
					lastErr = err
					if !retry(c.opts.backoff(failures)) {
						return
					}
					continue
				}
				tokenRetried, freshToken = freshToken, false
			}
			reply, onWS, err := c.handshake(r, !noWS)
			if ctx.Err() != nil {
				return
			}
			if err == nil && !noWS && !onWS {
				noWS = true
			}
			reconnect, interval := protocol.ReconnectRetry, time.Duration(0)
			if err == nil && !reply.IsSuccessful() {
				err = replyError(reply)
				reconnect, interval = replyAdvice(reply, protocol.ReconnectHandshake, 0)
			}
			if err == nil && !offers(reply, connectionType(onWS)) {
				err, reconnect = protocol.ErrNoTransport.WithArgs(reply.SupportedConnectionTypes...), protocol.ReconnectNone
			}
			if err != nil {
				if reconnect == protocol.ReconnectNone && c.token != nil && reply != nil && !tokenRetried {
					// Refused: once more with a token fetched now.
					freshToken, lastErr = true, err
					continue
				}
				if reconnect == protocol.ReconnectNone {
					c.end(r, err)
					return
				}
				failures++
				lastErr = err
				if !retry(interval + c.opts.backoff(failures)) {
					return
				}
				continue
			}
			c.established(r, reply, onWS)
			session, fresh, lastOK = true, true, time.Now()
			tokenRetried = false
		}

		c.mu.Lock()
		adv, clientID, onWS := c.adv, c.clientID, c.useWS
		c.mu.Unlock()
		m := &protocol.Message{Channel: protocol.MetaConnect, ID: c.nextID(), ClientID: clientID, ConnectionType: connectionType(onWS)}
		hold := adv.timeout
		if fresh {
			m.Advice = &protocol.Advice{Timeout: protocol.Ms(0)}
			hold = 0
		}
		sent := time.Now()
		resp, err := c.roundTrip(ctx, c.transport(onWS), []*protocol.Message{m}, hold+c.opts.MaxNetworkDelay)
		if ctx.Err() != nil {
			return
		}
		var reply *protocol.Message
		if err == nil {
			if reply = c.route(resp, m.ID); reply == nil {
				err = ErrNoReply
			}
		}
		if err != nil {
			// The request failed: the session may still exist.
			failures++
			lastErr, fresh = err, true
			c.suspend(r, "")
			delay := adv.interval + c.opts.backoff(failures)
			if adv.maxInterval > 0 && time.Since(lastOK)+delay > adv.timeout+adv.interval+adv.maxInterval {
				// The server has expired the session by now: save a 402.
				session = false
				c.suspend(r, clientID)
			}
			if !retry(delay) {
				return
			}
			continue
		}
		c.updateAdvice(reply.Advice)
		if reply.IsSuccessful() {
			failures, lastErr, fresh, lastOK = 0, nil, false, time.Now()
			c.connected(r)
			reconnect, interval := replyAdvice(reply, protocol.ReconnectRetry, c.interval())
			switch reconnect {
			case protocol.ReconnectNone:
				c.end(r, ErrSessionEnded)
				return
			case protocol.ReconnectHandshake:
				session = false
				c.suspend(r, clientID)
			}
			if hold > 0 && interval == 0 && len(resp) == 1 && time.Since(sent) < spinThreshold {
				spins++
			} else {
				spins = 0
			}
			if spins >= 3 {
				interval = c.opts.backoff(spins - 2)
				c.log.Debug("wasmclient: connects return at once; backing off", "delay", interval)
			}
			if !sleep(ctx, interval) {
				return
			}
			continue
		}
		err = replyError(reply)
		failures++
		lastErr, fresh = err, true
		reconnect, interval := replyAdvice(reply, protocol.ReconnectRetry, c.interval())
		n := failures
		switch reconnect {
		case protocol.ReconnectNone:
			c.end(r, err)
			return
		case protocol.ReconnectHandshake:
			// The expected recovery: re-handshake at once the first time,
			// back off only if it keeps happening.
			session = false
			n--
			c.suspend(r, clientID)
		default:
			c.suspend(r, "")
		}
		if !retry(interval + c.opts.backoff(n)) {
			return
		}
	}
}

// spinThreshold: a held connect that returns empty sooner than this was
// not held.
const spinThreshold = 50 * time.Millisecond

// useToken puts Options.Token's token into the handshake's ext (a new
// one when fresh); its error is Options.Token's.
func (c *Client) useToken(r *runState, fresh bool) error {
	tok, err := c.token.get(r.ctx, fresh, true)
	if err == nil {
		r.ext["auth"] = tokenJSON(tok)
	}
	return err
}

// end stops run r for good because of err, unless Disconnect is running.
func (c *Client) end(r *runState, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.log.Debug("wasmclient: stopped", "err", err)
	c.stopLocked(r, err)
}

// handshake sends /meta/handshake and returns its reply, and whether the
// session is to use the WebSocket. With tryWS it is sent over the
// WebSocket first, then over long-polling if that fails (see
// Options.WebSocket).
func (c *Client) handshake(r *runState, tryWS bool) (reply *protocol.Message, onWS bool, err error) {
	if !tryWS {
		reply, err = c.handshakeOn(r, false)
		return reply, false, err
	}
	reply, err = c.handshakeOn(r, true)
	if err == nil {
		if reply.IsSuccessful() && !offers(reply, protocol.WebSocket) {
			// Odd, as the upgrade worked; go on with long-polling. The
			// session is bound to the same browser cookie.
			c.log.Info("wasmclient: the server does not offer websocket; using long-polling",
				"offered", reply.SupportedConnectionTypes)
			c.opts.WebSocketTransport.core.close()
			return reply, false, nil
		}
		return reply, true, nil
	}
	if r.ctx.Err() != nil {
		return nil, false, err
	}
	wsErr := err
	reply, err = c.handshakeOn(r, false)
	if err != nil {
		return nil, false, fmt.Errorf("%w (websocket: %v)", err, wsErr)
	}
	c.log.Info("wasmclient: websocket failed where long-polling works; using long-polling", "err", wsErr)
	c.opts.WebSocketTransport.core.close()
	return reply, false, nil
}

// handshakeOn sends one /meta/handshake over the WebSocket (ws) or
// long-polling and returns its reply.
func (c *Client) handshakeOn(r *runState, ws bool) (*protocol.Message, error) {
	m := &protocol.Message{
		Channel:                  protocol.MetaHandshake,
		ID:                       c.nextID(),
		Version:                  protocol.Version,
		MinimumVersion:           protocol.Version,
		SupportedConnectionTypes: []string{protocol.LongPolling},
	}
	if ws {
		m.SupportedConnectionTypes = []string{protocol.WebSocket, protocol.LongPolling}
	}
	if len(r.ext) > 0 {
		m.Ext = make(map[string]json.RawMessage, len(r.ext))
		for k, v := range r.ext {
			m.Ext[k] = v
		}
	}
	resp, err := c.roundTrip(r.ctx, c.transport(ws), []*protocol.Message{m}, c.opts.MaxNetworkDelay)
	if err != nil {
		return nil, err
	}
	reply := c.route(resp, m.ID)
	if reply == nil {
		return nil, ErrNoReply
	}
	if reply.IsSuccessful() && reply.ClientID == "" {
		return nil, errors.New("wasmclient: handshake reply without clientId")
	}
	return reply, nil
}

// offers reports whether a handshake reply allows connection type ct (a
// reply that lists none allows any).
func offers(reply *protocol.Message, ct string) bool {
	if len(reply.SupportedConnectionTypes) == 0 {
		return true
	}
	for _, t := range reply.SupportedConnectionTypes {
		if t == ct {
			return true
		}
	}
	return false
}

// connectionType is the /meta/connect connectionType of a session on the
// WebSocket (ws) or on long-polling.
func connectionType(ws bool) string {
	if ws {
		return protocol.WebSocket
	}
	return protocol.LongPolling
}

// transport returns the WebSocket transport (ws) or the long-polling one.
func (c *Client) transport(ws bool) Transport {
	if ws {
		return c.opts.WebSocketTransport
	}
	return c.opts.Transport
}

// established records a successful handshake: the new session id, the
// transport it uses, the advice, and the subscriptions to restore, queued
// before anything else.
func (c *Client) established(r *runState, reply *protocol.Message, onWS bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != r {
		return
	}
	c.clientID = reply.ClientID
	c.useWS = onWS
	c.updateAdviceLocked(reply.Advice)
	var resub []*request
	for ch, cs := range c.subs {
		if cs.op != nil {
			continue // its own subscribe is still queued or on its way
		}
		resub = append(resub, newRequest(resubscribeMessage(ch, cs), false))
	}
	if len(resub) > 0 {
		for _, q := range resub {
			q.msg.ID = c.nextID()
		}
		c.queue = append([][]*request{resub}, c.queue...)
		go c.watchResubscribe(r.ctx, resub)
	}
	c.ready = true
	c.kickSender()
}

// watchResubscribe logs the subscriptions a new session refused.
func (c *Client) watchResubscribe(ctx context.Context, reqs []*request) {
	for _, q := range reqs {
		select {
		case <-q.done:
		case <-ctx.Done():
			return
		}
		if q.err != nil && !errors.Is(q.err, ErrDisconnected) && ctx.Err() == nil {
			c.log.Warn("wasmclient: re-subscribing failed; listeners get nothing until the next handshake",
				"channel", q.msg.Subscription.Channels[0], "err", q.err)
		}
	}
}

// connected records a successful connect.
func (c *Client) connected(r *runState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != r {
		return
	}
	c.setStateLocked(r, StateInfo{State: Connected})
	if !c.ready {
		c.ready = true
		c.kickSender()
	}
	c.sendFirst(r, nil)
}

// suspend holds queued messages until the next successful connect or
// handshake. A non-empty forget also drops that session id: the client
// will re-handshake.
func (c *Client) suspend(r *runState, forget string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != r {
		return
	}
	c.ready = false
	if forget != "" && c.clientID == forget {
		c.clientID = ""
	}
}

func (c *Client) updateAdvice(a *protocol.Advice) {
	c.mu.Lock()
	c.updateAdviceLocked(a)
	c.mu.Unlock()
}

// updateAdviceLocked keeps the newest interval, timeout and maxInterval.
// The reconnect field is acted on per reply and not remembered.
func (c *Client) updateAdviceLocked(a *protocol.Advice) {
	if a == nil {
		return
	}
	if a.Interval != nil {
		c.adv.interval = max(time.Duration(*a.Interval)*time.Millisecond, 0)
	}
	if a.Timeout != nil {
		c.adv.timeout = max(time.Duration(*a.Timeout)*time.Millisecond, 0)
	}
	if a.MaxInterval > 0 {
		c.adv.maxInterval = time.Duration(a.MaxInterval) * time.Millisecond
	}
}

// interval returns the advised interval.
func (c *Client) interval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adv.interval
}

// replyAdvice returns the reconnect advice of a reply (def when it has
// none) and its interval (defInterval when it has none: servers such as
// CometD send advice only when it changes).
func replyAdvice(m *protocol.Message, def string, defInterval time.Duration) (string, time.Duration) {
	if m.Advice == nil {
		return def, defInterval
	}
	rc := m.Advice.Reconnect
	if rc == "" {
		rc = def
	}
	iv := defInterval
	if m.Advice.Interval != nil {
		iv = max(time.Duration(*m.Advice.Interval)*time.Millisecond, 0)
	}
	return rc, iv
}

// replyError returns the error of an unsuccessful reply, as a
// *protocol.Error when it is a well-formed Bayeux error string.
func replyError(m *protocol.Message) error {
	if e, err := protocol.ParseError(m.Error); err == nil {
		return e
	}
	msg := m.Error
	if msg == "" {
		msg = "unsuccessful"
	}
	return &protocol.Error{Message: msg}
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
