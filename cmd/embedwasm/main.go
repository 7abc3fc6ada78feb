//go:build js && wasm

// Command embedwasm is the JavaScript API of the Go Bayeux client
// (wasmclient), compiled to WebAssembly for pages on any site:
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o assets/embed/bayeux.wasm ./cmd/embedwasm
//
// The server serves it under /embed/ with the loader /embed/bayeux.js,
// which runs it and resolves Bayeux.ready. It sets window.Bayeux:
//
//	Bayeux.connect({url, user, password, ext, webSocket}) → Promise
//	Bayeux.subscribe(channel, (data, message) => ...) → Promise<id>
//	Bayeux.unsubscribe(id) → Promise
//	Bayeux.publish(channel, data) → Promise
//	Bayeux.call(service, data) → Promise<data>
//	Bayeux.disconnect() → Promise
//	Bayeux.onState(({state, error}) => ...) → function that removes it
//	Bayeux.clientId() → string
//
// One connection per page: connect again only after disconnect. It holds
// no go-app and no net/http, so it stays small.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"syscall/js"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// requestTimeout bounds subscribe, publish and call.
const requestTimeout = 30 * time.Second

var (
	mu      sync.Mutex
	client  *wasmclient.Client
	subs    = map[int]*wasmclient.Subscription{}
	nextSub int
	states  = map[int]js.Value{}
	nextObs int
)

func main() {
	api := js.Global().Get("Object").New()
	set := func(name string, fn func(args []js.Value) any) {
		api.Set(name, js.FuncOf(func(_ js.Value, args []js.Value) any { return fn(args) }))
	}
	set("connect", connect)
	set("subscribe", subscribe)
	set("unsubscribe", unsubscribe)
	set("publish", publish)
	set("call", call)
	set("disconnect", disconnect)
	set("onState", onState)
	set("clientId", func([]js.Value) any {
		if c := current(); c != nil {
			return c.ClientID()
		}
		return ""
	})
	js.Global().Set("__bayeuxGo", api)
	if ready := js.Global().Get("__bayeuxGoReady"); ready.Type() == js.TypeFunction {
		ready.Invoke(api)
	}
	select {}
}

// promise runs fn on its own goroutine and settles a Promise with its
// result.
func promise(fn func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		executor.Release()
		go func() {
			v, err := fn()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

func current() *wasmclient.Client {
	mu.Lock()
	defer mu.Unlock()
	return client
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

func str(v js.Value, key string) string {
	if v.Type() != js.TypeObject {
		return ""
	}
	if f := v.Get(key); f.Type() == js.TypeString {
		return f.String()
	}
	return ""
}

// toJSON encodes a JavaScript value with JSON.stringify.
func toJSON(v js.Value) (json.RawMessage, error) {
	if v.IsUndefined() {
		return json.RawMessage("null"), nil
	}
	s := js.Global().Get("JSON").Call("stringify", v)
	if s.Type() != js.TypeString {
		return nil, errors.New("bayeux: data cannot be encoded as JSON")
	}
	return json.RawMessage(s.String()), nil
}

// fromJSON decodes JSON into a JavaScript value.
func fromJSON(b []byte) js.Value {
	if len(b) == 0 {
		return js.Null()
	}
	return js.Global().Get("JSON").Call("parse", string(b))
}

var errNotConnected = errors.New("bayeux: not connected (call Bayeux.connect first)")

// connect: {url, user, password, ext, webSocket}. It resolves when the
// client is connected and rejects when the server refused the handshake
// or could not be reached (the client is then stopped).
func connect(args []js.Value) any {
	o := arg(args, 0)
	return promise(func() (any, error) {
		url := str(o, "url")
		if url == "" {
			return nil, errors.New("bayeux: connect needs {url}, the server's /cometd URL")
		}
		opts := wasmclient.Options{WebSocket: true}
		if o.Type() == js.TypeObject {
			if ws := o.Get("webSocket"); ws.Type() == js.TypeBoolean {
				opts.WebSocket = ws.Bool()
			}
			if ext := o.Get("ext"); ext.Type() == js.TypeObject {
				raw, err := toJSON(ext)
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(raw, &opts.Ext); err != nil {
					return nil, err
				}
			}
		}
		if user := str(o, "user"); user != "" {
			if opts.Ext == nil {
				opts.Ext = map[string]any{}
			}
			opts.Ext["auth"] = map[string]string{"user": user, "password": str(o, "password")}
		}
		c := wasmclient.New(url, opts)
		mu.Lock()
		if client != nil {
			mu.Unlock()
			return nil, errors.New("bayeux: already connected (call Bayeux.disconnect first)")
		}
		client = c
		mu.Unlock()
		c.OnState(notifyState)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		failed := make(chan error, 1)
		remove := c.OnState(func(info wasmclient.StateInfo) {
			if info.State == wasmclient.Reconnecting {
				err := info.LastError
				if err == nil {
					err = errors.New("bayeux: cannot reach the server")
				}
				select {
				case failed <- err:
				default:
				}
				cancel()
			}
		})
		err := c.Connect(ctx)
		remove()
		if err != nil {
			select {
			case e := <-failed:
				err = e
			default:
			}
			drop(c)
			return nil, err
		}
		return nil, nil
	})
}

// drop stops c and forgets it.
func drop(c *wasmclient.Client) {
	mu.Lock()
	if client == c {
		client = nil
		subs = map[int]*wasmclient.Subscription{}
	}
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c.Disconnect(ctx)
}

func stateValue(info wasmclient.StateInfo) js.Value {
	v := js.Global().Get("Object").New()
	v.Set("state", info.State.String())
	if info.LastError != nil {
		v.Set("error", info.LastError.Error())
	}
	return v
}

func subscribe(args []js.Value) any {
	channel, cb := arg(args, 0).String(), arg(args, 1)
	return promise(func() (any, error) {
		c := current()
		if c == nil {
			return nil, errNotConnected
		}
		if cb.Type() != js.TypeFunction {
			return nil, errors.New("bayeux: subscribe needs a callback")
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		sub, err := c.Subscribe(ctx, channel, func(m *protocol.Message) {
			msg := js.Global().Get("Object").New()
			msg.Set("channel", m.Channel)
			msg.Set("data", fromJSON(m.Data))
			cb.Invoke(msg.Get("data"), msg)
		})
		if err != nil {
			return nil, err
		}
		mu.Lock()
		nextSub++
		id := nextSub
		subs[id] = sub
		mu.Unlock()
		return id, nil
	})
}

func unsubscribe(args []js.Value) any {
	id := arg(args, 0)
	return promise(func() (any, error) {
		c := current()
		if c == nil {
			return nil, errNotConnected
		}
		if id.Type() != js.TypeNumber {
			return nil, errors.New("bayeux: unsubscribe needs the id that subscribe gave")
		}
		mu.Lock()
		sub := subs[id.Int()]
		delete(subs, id.Int())
		mu.Unlock()
		if sub == nil {
			return nil, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		return nil, c.Unsubscribe(ctx, sub)
	})
}

func publish(args []js.Value) any {
	channel := arg(args, 0).String()
	data, jerr := toJSON(arg(args, 1))
	return promise(func() (any, error) {
		if jerr != nil {
			return nil, jerr
		}
		c := current()
		if c == nil {
			return nil, errNotConnected
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		return nil, c.Publish(ctx, channel, data)
	})
}

func call(args []js.Value) any {
	service := arg(args, 0).String()
	data, jerr := toJSON(arg(args, 1))
	return promise(func() (any, error) {
		if jerr != nil {
			return nil, jerr
		}
		c := current()
		if c == nil {
			return nil, errNotConnected
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		m, err := c.Call(ctx, service, data)
		if err != nil {
			return nil, err
		}
		return fromJSON(m.Data), nil
	})
}

func disconnect([]js.Value) any {
	return promise(func() (any, error) {
		if c := current(); c != nil {
			drop(c)
		}
		return nil, nil
	})
}

// notifyState tells the onState listeners.
func notifyState(info wasmclient.StateInfo) {
	mu.Lock()
	cbs := make([]js.Value, 0, len(states))
	for _, cb := range states {
		cbs = append(cbs, cb)
	}
	mu.Unlock()
	v := stateValue(info)
	for _, cb := range cbs {
		cb.Invoke(v)
	}
}

// onState registers a listener of the connection state, for this and
// later connections; it returns a function that removes it.
func onState(args []js.Value) any {
	cb := arg(args, 0)
	if cb.Type() != js.TypeFunction {
		return js.Undefined()
	}
	mu.Lock()
	nextObs++
	id := nextObs
	states[id] = cb
	mu.Unlock()
	var fn js.Func
	fn = js.FuncOf(func(js.Value, []js.Value) any {
		mu.Lock()
		delete(states, id)
		mu.Unlock()
		fn.Release()
		return nil
	})
	return fn
}
