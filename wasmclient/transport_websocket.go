package wasmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/bayeux-go/bayeux/protocol"
)

// The WebSocketTransport type is declared per platform: natively
// (transport_websocket_native.go) it dials with github.com/coder/websocket
// and a cookie jar, in the browser (transport_websocket_js.go) it uses the
// browser's WebSocket through syscall/js, so that the wasm build does not
// link net/http. What follows is shared.

// socket is one open WebSocket of the platform.
type socket interface {
	// read returns the next text frame. It is called by one goroutine.
	read(ctx context.Context) ([]byte, error)
	// write sends b as one text frame. It may be called by two
	// goroutines at once.
	write(ctx context.Context, b []byte) error
	// close starts a normal closure and returns without waiting for it.
	close()
}

// errWSNoID is returned by WebSocketTransport.Send for a batch in which no
// message has an id: its reply could not be told from the others.
var errWSNoID = errors.New("wasmclient: websocket: a message without id cannot be matched to its reply")

// wsCore is the platform-independent state of a WebSocketTransport: the
// current socket, the dial in progress and the hook for frames that answer
// no Send.
type wsCore struct {
	mu      sync.Mutex
	cur     *wsConn // the open socket, nil when there is none
	dialing *wsDial // the dial in progress, nil when there is none
	// push receives the frames that match no Send in flight (a late
	// reply, or events pushed by a server that delivers outside
	// /meta/connect, as CometD does without the ack extension). The
	// Client sets it.
	push  func([]byte)
	owner any // the Client that set push
}

// wsDial is one dial, shared by the Sends that need a socket meanwhile.
type wsDial struct {
	done chan struct{}
	conn *wsConn
	err  error
}

// wsConn is one socket and the Sends waiting for a reply on it.
type wsConn struct {
	core *wsCore
	sock socket
	url  string
	dead chan struct{} // closed when the socket failed or was closed
	// err and waiters are guarded by core.mu; err is set before dead is
	// closed and never changes after.
	err     error
	waiters map[protocol.ID]*wsWaiter
}

// wsWaiter is one Send waiting for the frame that answers one of its ids.
type wsWaiter struct {
	ids   []protocol.ID
	frame chan []byte // buffered: receives one frame
}

// attach installs the Client's handler of unmatched frames. It reports
// false if another Client had attached before.
func (t *wsCore) attach(owner any, push func([]byte)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	shared := t.owner != nil && t.owner != owner
	t.owner, t.push = owner, push
	return !shared
}

// send implements WebSocketTransport.Send on sockets made by dial.
func (t *wsCore) send(ctx context.Context, url string, body []byte, dial func(context.Context, string) (socket, error)) ([]byte, error) {
	ids, err := frameIDs(body)
	if err != nil {
		return nil, fmt.Errorf("wasmclient: websocket: %w", err)
	}
	if len(ids) == 0 {
		return nil, errWSNoID
	}
	c, err := t.conn(ctx, url, dial)
	if err != nil {
		return nil, err
	}
	w := &wsWaiter{ids: ids, frame: make(chan []byte, 1)}
	t.mu.Lock()
	if c.err != nil {
		t.mu.Unlock()
		return nil, c.err
	}
	for _, id := range ids {
		if c.waiters[id] != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("wasmclient: websocket: message id %q is already waiting for a reply", id)
		}
	}
	for _, id := range ids {
		c.waiters[id] = w
	}
	t.mu.Unlock()

	if err := c.sock.write(ctx, body); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("wasmclient: websocket write: %w", err)
		}
		c.fail(err)
		return nil, err
	}
	select {
	case b := <-w.frame:
		return b, nil
	case <-c.dead:
		select {
		case b := <-w.frame: // it came before the socket broke
			return b, nil
		default:
		}
		t.mu.Lock()
		err := c.err
		t.mu.Unlock()
		return nil, err
	case <-ctx.Done():
		c.forget(w)
		select {
		case b := <-w.frame:
			return b, nil
		default:
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// As CometD does on a message timeout: the socket is presumed
			// dead (a half-open TCP connection answers nothing), and a
			// reply arriving later would find nobody waiting.
			c.fail(errors.New("wasmclient: websocket: no reply in time, socket closed"))
		}
		return nil, ctx.Err()
	}
}

// conn returns the open socket to url, dialing one if needed. Concurrent
// callers share one dial.
func (t *wsCore) conn(ctx context.Context, url string, dial func(context.Context, string) (socket, error)) (*wsConn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t.mu.Lock()
		if c := t.cur; c != nil {
			if c.url == url {
				t.mu.Unlock()
				return c, nil
			}
			// Another endpoint: this socket is of no more use.
			t.mu.Unlock()
			c.fail(errors.New("wasmclient: websocket closed: the endpoint changed"))
			continue
		}
		d := t.dialing
		if d == nil {
			d = &wsDial{done: make(chan struct{})}
			t.dialing = d
			t.mu.Unlock()
			sock, err := dial(ctx, url)
			t.mu.Lock()
			t.dialing = nil
			if err != nil {
				d.err = err
			} else {
				d.conn = &wsConn{core: t, sock: sock, url: url,
					dead: make(chan struct{}), waiters: make(map[protocol.ID]*wsWaiter)}
				t.cur = d.conn
				go d.conn.readLoop()
			}
			close(d.done)
			t.mu.Unlock()
			return d.conn, d.err
		}
		t.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.err == nil {
			return d.conn, nil
		}
		if ctx.Err() == nil && (errors.Is(d.err, context.Canceled) || errors.Is(d.err, context.DeadlineExceeded)) {
			continue // the dialer's context ended, not ours: dial again
		}
		return nil, d.err
	}
}

// close closes the current socket, failing the Sends waiting on it.
func (t *wsCore) close() {
	t.mu.Lock()
	c := t.cur
	t.mu.Unlock()
	if c != nil {
		c.fail(errWSClosed)
	}
}

var errWSClosed = errors.New("wasmclient: websocket closed by the client")

// WebSocketDialError reports that a WebSocket could not be opened: the
// server could not be reached, or it refused the upgrade (natively Err is
// then an *HTTPError; browsers do not tell why).
type WebSocketDialError struct {
	Err error
}

// Error returns "wasmclient: websocket dial: " and Err's text.
func (e *WebSocketDialError) Error() string { return "wasmclient: websocket dial: " + e.Err.Error() }

// Unwrap returns Err.
func (e *WebSocketDialError) Unwrap() error { return e.Err }

// fail marks c dead with err (the first error wins), wakes its Sends and
// closes the socket, which ends the reader.
func (c *wsConn) fail(err error) {
	t := c.core
	t.mu.Lock()
	if c.err != nil {
		t.mu.Unlock()
		return
	}
	c.err = err
	c.waiters = nil
	close(c.dead)
	if t.cur == c {
		t.cur = nil
	}
	t.mu.Unlock()
	c.sock.close()
}

// forget removes w, whose Send gave up.
func (c *wsConn) forget(w *wsWaiter) {
	c.core.mu.Lock()
	defer c.core.mu.Unlock()
	for _, id := range w.ids {
		if c.waiters[id] == w {
			delete(c.waiters, id)
		}
	}
}

// readLoop hands every frame to the Send that waits for one of the ids it
// answers, or to the push hook, until the socket fails or is closed.
func (c *wsConn) readLoop() {
	for {
		b, err := c.sock.read(context.Background())
		if err != nil {
			c.fail(fmt.Errorf("wasmclient: websocket closed: %w", err))
			return
		}
		ids, err := frameIDs(b)
		if err != nil {
			c.fail(fmt.Errorf("wasmclient: websocket: bad frame from the server: %w", err))
			return
		}
		t := c.core
		t.mu.Lock()
		var w *wsWaiter
		for _, id := range ids {
			if w = c.waiters[id]; w != nil {
				break
			}
		}
		if w != nil {
			for _, id := range w.ids {
				if c.waiters[id] == w {
					delete(c.waiters, id)
				}
			}
			// Under the lock, so that a Send that gives up (forget, then
			// a last look at its channel) cannot miss it; buffered, and
			// w is no longer reachable, so this never blocks.
			w.frame <- b
		}
		push := t.push
		t.mu.Unlock()
		if w == nil && push != nil {
			push(b)
		}
	}
}

// frameIDs returns the ids of the messages of a batch (a JSON array of
// messages, or one message).
func frameIDs(b []byte) ([]protocol.ID, error) {
	type idOnly struct {
		ID protocol.ID `json:"id"`
	}
	b = bytes.TrimSpace(b)
	var msgs []idOnly
	if len(b) > 0 && b[0] == '{' {
		var m idOnly
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		msgs = []idOnly{m}
	} else if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, err
	}
	ids := make([]protocol.ID, 0, len(msgs))
	for _, m := range msgs {
		if m.ID != "" {
			ids = append(ids, m.ID)
		}
	}
	return ids, nil
}
