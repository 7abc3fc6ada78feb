//go:build js && wasm

package wasmclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall/js"
)

// WebSocketTransport is the Bayeux "websocket" transport (CometD's
// extension of Bayeux): one socket per Client, on which every frame in
// either direction is a JSON array of messages. Use it through
// Options.WebSocket; a Client then uses it for as long as it works and
// falls back to long-polling (Options.Transport) when it does not.
//
// The socket is dialed at the first Send (ws:// or wss:// from the http://
// or https:// URL, which may be relative to the page) and dialed again
// after it broke. Each Send writes one frame and returns the frame that
// answers one of its messages, matched by message id (the server answers a
// held /meta/connect later than a publish sent after it), so every message
// must carry an id; the Client's do. A broken socket fails every Send
// waiting on it; a Send whose context expires closes the socket, as CometD
// does on a message timeout. Frames that answer no Send in flight go to
// the Client (a server may push events outside /meta/connect).
//
// In the browser this transport uses the browser's WebSocket through
// syscall/js (not github.com/coder/websocket, whose wasm build links
// net/http and adds about 2 MB); the browser sends and keeps the cookies,
// such as the server's BAYEUX_BROWSER, by itself. Under Node.js it needs a
// global WebSocket (Node 22, or Node 20 with --experimental-websocket).
//
// A WebSocketTransport serves one Client (message ids are per Client): do
// not share it. It is safe for concurrent use.
type WebSocketTransport struct {
	core wsCore
}

// defaultWebSocketTransport returns the WebSocket transport of a Client.
func defaultWebSocketTransport(Transport) *WebSocketTransport { return &WebSocketTransport{} }

// Send implements Transport over the socket: it writes body as one frame
// and waits for the frame that answers it.
func (t *WebSocketTransport) Send(ctx context.Context, url string, body []byte) ([]byte, error) {
	return t.core.send(ctx, url, body, dialJS)
}

// Close closes the socket, if one is open; Sends waiting on it fail. A
// later Send dials a new one. The Client calls it when it stops.
func (t *WebSocketTransport) Close() error {
	t.core.close()
	return nil
}

// jsSocket is a browser WebSocket. Its event handlers never block (the
// browser's event loop waits for them): they queue frames for read.
type jsSocket struct {
	ws js.Value

	mu      sync.Mutex
	frames  [][]byte
	err     error // set once, by close or error
	notify  chan struct{}
	done    chan struct{}
	opened  chan struct{}
	isOpen  bool
	funcs   []js.Func
	release sync.Once
}

// dialJS opens a WebSocket to url and waits until it is open.
func dialJS(ctx context.Context, url string) (_ socket, err error) {
	ctor := js.Global().Get("WebSocket")
	if ctor.Type() != js.TypeFunction {
		return nil, &WebSocketDialError{Err: errors.New("WebSocket is not available")}
	}
	defer func() {
		// The constructor throws on a bad URL; syscall/js panics then.
		if v := recover(); v != nil {
			err = &WebSocketDialError{Err: fmt.Errorf("%v", v)}
		}
	}()
	s := &jsSocket{notify: make(chan struct{}, 1), done: make(chan struct{}), opened: make(chan struct{})}
	s.ws = ctor.New(wsURL(url))
	s.funcs = []js.Func{
		js.FuncOf(func(js.Value, []js.Value) any {
			s.mu.Lock()
			if !s.isOpen && s.err == nil {
				s.isOpen = true
				close(s.opened)
			}
			s.mu.Unlock()
			return nil
		}),
		js.FuncOf(func(_ js.Value, args []js.Value) any {
			data := args[0].Get("data")
			if data.Type() != js.TypeString {
				s.fail(errors.New("binary frame"))
				s.close()
				return nil
			}
			b := []byte(data.String())
			s.mu.Lock()
			if s.err == nil {
				s.frames = append(s.frames, b)
			}
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
			return nil
		}),
		js.FuncOf(func(_ js.Value, args []js.Value) any {
			ev := args[0]
			msg := fmt.Sprintf("code %d", ev.Get("code").Int())
			if r := ev.Get("reason"); r.Type() == js.TypeString && r.String() != "" {
				msg += " (" + r.String() + ")"
			}
			s.fail(errors.New(msg))
			s.releaseFuncs()
			return nil
		}),
		js.FuncOf(func(js.Value, []js.Value) any {
			// Browsers follow an error with a close event, which says a
			// little more; Node 20's WebSocket does not when the
			// connection fails, so end things here. Do not call close
			// from here: Node 20 answers it with another error event.
			s.fail(errors.New("websocket error"))
			s.releaseFuncs()
			return nil
		}),
	}
	s.ws.Set("onopen", s.funcs[0])
	s.ws.Set("onmessage", s.funcs[1])
	s.ws.Set("onclose", s.funcs[2])
	s.ws.Set("onerror", s.funcs[3])
	select {
	case <-s.opened:
		return s, nil
	case <-s.done:
		return nil, &WebSocketDialError{Err: s.err}
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	}
}

// wsURL resolves url against the page's address (when there is a page)
// and gives it the ws: or wss: scheme, for browsers whose WebSocket
// accepts neither relative nor http(s) URLs.
func wsURL(url string) string {
	if u := js.Global().Get("URL"); u.Type() == js.TypeFunction {
		var v js.Value
		if loc := js.Global().Get("location"); loc.Type() == js.TypeObject {
			v = u.New(url, loc.Get("href"))
		} else {
			v = u.New(url)
		}
		switch v.Get("protocol").String() {
		case "http:":
			v.Set("protocol", "ws:")
		case "https:":
			v.Set("protocol", "wss:")
		}
		return v.Call("toString").String()
	}
	if rest, ok := strings.CutPrefix(url, "http"); ok {
		return "ws" + rest
	}
	return url
}

// fail records the first error and ends read.
func (s *jsSocket) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.done)
	}
}

// releaseFuncs detaches and releases the event handlers.
func (s *jsSocket) releaseFuncs() {
	s.release.Do(func() {
		for _, ev := range []string{"onopen", "onmessage", "onclose", "onerror"} {
			s.ws.Set(ev, js.Null())
		}
		for _, f := range s.funcs {
			f.Release()
		}
	})
}

func (s *jsSocket) read(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.frames) > 0 {
			b := s.frames[0]
			s.frames[0] = nil
			s.frames = s.frames[1:]
			s.mu.Unlock()
			return b, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.notify:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *jsSocket) write(_ context.Context, b []byte) (err error) {
	s.mu.Lock()
	ferr := s.err
	s.mu.Unlock()
	if ferr != nil {
		return ferr
	}
	if s.ws.Get("readyState").Int() != 1 { // OPEN
		return errors.New("socket not open")
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	s.ws.Call("send", string(b))
	return nil
}

func (s *jsSocket) close() {
	defer func() { _ = recover() }()
	s.ws.Call("close", 1000)
	// The close event ends read and releases the handlers; if the
	// browser never sends it, read still ends through fail.
	s.fail(errWSClosed)
}
