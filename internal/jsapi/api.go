// Package jsapi is the JavaScript API of the Go Bayeux client
// (wasmclient): the object that bayeux.js turns into window.Bayeux,
// compiled to WebAssembly by cmd/embedwasm.
//
//	Bayeux.connect({url, user, password, token, getToken, ext, webSocket}) → Promise
//	Bayeux.subscribe(channel, (data, message) => ...) → Promise<id>
//	Bayeux.unsubscribe(id) → Promise
//	Bayeux.publish(channel, data) → Promise
//	Bayeux.call(service, data) → Promise<data>
//	Bayeux.disconnect() → Promise
//	Bayeux.onState(({state, error}) => ...) → function that removes it
//	Bayeux.clientId() → string
//
// The logic (argument checks, connect options, the page's one client,
// subscription ids, state listeners) is plain Go: API and its Methods,
// tested natively. Install (js && wasm only) is the glue: it converts
// JavaScript values to the Go values documented on Method and back, and
// settles promises.
//
// One connection per API: connect again only after disconnect. Data from
// the page is only ever encoded as JSON and sent; nothing received is
// evaluated.
package jsapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// RequestTimeout bounds subscribe, unsubscribe, publish and call, including
// the time they wait for a session while the client reconnects.
const RequestTimeout = 30 * time.Second

// Method is one function of the JavaScript object.
//
// Its arguments arrive as Go values: undefined and null as nil, strings
// as string, numbers as float64, booleans as bool, functions as Func,
// objects and arrays as json.RawMessage (their JSON.stringify).
//
// Its result goes back as: nil → undefined; string, int, float64, bool →
// themselves; json.RawMessage → its JSON.parse; State → {state, error};
// Remover → a function that runs it (once).
//
// An Async method runs on its own goroutine and returns a Promise that
// settles with its result, or rejects with an Error carrying its error's
// text. The other methods return their result at once, or a rejected
// Promise.
type Method struct {
	Name  string
	Async bool
	Fn    func(args []any) (any, error)
}

// Func is a JavaScript function given as an argument. Calling it calls the
// function with the arguments converted as Method results are, except
// that a Delivery becomes the two arguments (data, message). It may be
// called from any goroutine; what the function throws is logged to the
// console, not returned.
type Func func(args ...any)

// Remover is returned by onState; JavaScript gets it as a function.
type Remover func()

// State is what onState listeners get: {state, error}. State is
// "connecting", "connected", "reconnecting" or "disconnected"; Error,
// when not "", why the last attempt failed or the client stopped.
type State struct {
	State string
	Error string
}

// Delivery is a message received on a subscription, given to the
// subscription's callback as (data, {channel, data}).
type Delivery struct {
	Channel string
	Data    json.RawMessage
}

// Errors of the API, as the page sees them (the Error's message).
var (
	ErrNotConnected     = errors.New("bayeux: not connected (call Bayeux.connect first)")
	ErrAlreadyConnected = errors.New("bayeux: already connected (call Bayeux.disconnect first)")
)

// API is the state behind one JavaScript object: at most one client, the
// subscriptions made through it (by the ids JavaScript holds) and the
// state listeners. It is safe for concurrent use: every method may run on
// its own goroutine.
type API struct {
	mu        sync.Mutex
	client    *wasmclient.Client
	subs      map[int]*wasmclient.Subscription
	nextSub   int
	listeners map[int]Func
	nextLis   int
	asks      tokenAsks
}

// New returns an API without a client.
func New() *API {
	return &API{subs: map[int]*wasmclient.Subscription{}, listeners: map[int]Func{}}
}

// Methods returns the functions of the JavaScript object.
func (a *API) Methods() []Method {
	return []Method{
		{Name: "connect", Async: true, Fn: a.connect},
		{Name: "subscribe", Async: true, Fn: a.subscribe},
		{Name: "unsubscribe", Async: true, Fn: a.unsubscribe},
		{Name: "publish", Async: true, Fn: a.publish},
		{Name: "call", Async: true, Fn: a.call},
		{Name: "disconnect", Async: true, Fn: a.disconnect},
		{Name: "onState", Fn: a.onState},
		{Name: "clientId", Fn: a.clientID},
		{Name: "token", Fn: a.token}, // bayeux.js's answers for getToken
	}
}

// connect: ({url, user, password, token, ext, webSocket}, ask). ask is
// bayeux.js's bridge to the page's getToken (see tokenAsks). It resolves
// when the client is connected and rejects when the server refused the
// handshake or could not be reached; the client is then stopped and
// forgotten.
func (a *API) connect(args []any) (any, error) {
	raw, ok := arg(args, 0).(json.RawMessage)
	if !ok && arg(args, 0) != nil {
		return nil, errors.New("bayeux: connect takes an object {url, user, password, token, getToken, ext, webSocket}")
	}
	o, err := ParseConnectOptions(raw)
	if err != nil {
		return nil, err
	}
	ask, ok := arg(args, 1).(Func)
	if !ok && arg(args, 1) != nil {
		return nil, errors.New("bayeux: connect: getToken must be a function")
	}
	if ask != nil && o.User != "" {
		return nil, errors.New("bayeux: connect: give a user and password, or a token, not both")
	}
	opts := o.clientOptions()
	if o.Token != "" || ask != nil {
		opts.Token = a.tokenFunc(o.Token, ask)
	}
	return nil, a.open(o.URL, opts)
}

// open connects a new client with o. The first failure to reach the
// server ends the attempt (a page wants to know now, not after the
// client's retries); later ones are retried by the client.
func (a *API) open(url string, opts wasmclient.Options) error {
	a.mu.Lock()
	if a.client != nil {
		a.mu.Unlock()
		return ErrAlreadyConnected
	}
	c := wasmclient.New(url, opts)
	a.client = c
	a.mu.Unlock()
	c.OnState(a.notify)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failed := make(chan error, 1)
	remove := c.OnState(func(info wasmclient.StateInfo) {
		if info.State != wasmclient.Reconnecting {
			return
		}
		err := info.LastError
		if err == nil {
			err = errors.New("bayeux: cannot reach the server")
		}
		select {
		case failed <- err:
		default:
		}
		cancel()
	})
	err := c.Connect(ctx)
	remove()
	if err == nil {
		return nil
	}
	select {
	case e := <-failed:
		err = e
	default:
	}
	a.drop(c)
	return err
}

// drop stops c and forgets it and its subscriptions.
func (a *API) drop(c *wasmclient.Client) {
	a.mu.Lock()
	if a.client == c {
		a.client = nil
		clear(a.subs)
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}

func (a *API) current() *wasmclient.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// subscribe: (channel, callback) → id. The callback gets (data, message).
func (a *API) subscribe(args []any) (any, error) {
	channel, ok := arg(args, 0).(string)
	if !ok {
		return nil, errors.New("bayeux: subscribe needs a channel name (a string)")
	}
	cb, ok := arg(args, 1).(Func)
	if !ok {
		return nil, errors.New("bayeux: subscribe needs a callback function")
	}
	c := a.current()
	if c == nil {
		return nil, ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	sub, err := c.Subscribe(ctx, channel, func(m *protocol.Message) {
		cb(Delivery{Channel: m.Channel, Data: m.Data})
	})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != c { // disconnected meanwhile
		return nil, ErrNotConnected
	}
	a.nextSub++
	a.subs[a.nextSub] = sub
	return a.nextSub, nil
}

// unsubscribe: (id). An id that is not (or no longer) known does nothing.
func (a *API) unsubscribe(args []any) (any, error) {
	f, ok := arg(args, 0).(float64)
	if !ok || f != math.Trunc(f) {
		return nil, errors.New("bayeux: unsubscribe needs the id that subscribe gave")
	}
	c := a.current()
	if c == nil {
		return nil, ErrNotConnected
	}
	a.mu.Lock()
	id := int(f)
	sub := a.subs[id]
	delete(a.subs, id)
	a.mu.Unlock()
	if sub == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	return nil, c.Unsubscribe(ctx, sub)
}

// publish: (channel, data).
func (a *API) publish(args []any) (any, error) {
	c, channel, data, err := a.channelAndData(args, "publish needs a channel name")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	return nil, c.Publish(ctx, channel, data)
}

// call: (service, data) → the reply's data (null when it has none).
func (a *API) call(args []any) (any, error) {
	c, service, data, err := a.channelAndData(args, "call needs a service name")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	m, err := c.Call(ctx, service, data)
	if err != nil {
		return nil, err
	}
	if len(m.Data) == 0 {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(m.Data), nil
}

// channelAndData reads the (channel, data) arguments of publish and call
// and returns them with the current client; missing says what a
// non-string channel lacks.
func (a *API) channelAndData(args []any, missing string) (*wasmclient.Client, string, json.RawMessage, error) {
	channel, ok := arg(args, 0).(string)
	if !ok {
		return nil, "", nil, errors.New("bayeux: " + missing + " (a string)")
	}
	data, err := toJSON(arg(args, 1))
	if err != nil {
		return nil, "", nil, err
	}
	c := a.current()
	if c == nil {
		return nil, "", nil, ErrNotConnected
	}
	return c, channel, data, nil
}

// disconnect: (). It stops the client, if there is one.
func (a *API) disconnect([]any) (any, error) {
	if c := a.current(); c != nil {
		a.drop(c)
	}
	return nil, nil
}

// onState: (listener) → remove. The listener hears the state changes of
// this and later connections.
func (a *API) onState(args []any) (any, error) {
	cb, ok := arg(args, 0).(Func)
	if !ok {
		return nil, errors.New("bayeux: onState needs a listener function")
	}
	a.mu.Lock()
	a.nextLis++
	id := a.nextLis
	a.listeners[id] = cb
	a.mu.Unlock()
	return Remover(func() {
		a.mu.Lock()
		delete(a.listeners, id)
		a.mu.Unlock()
	}), nil
}

// clientId: () → the session id, "" without one.
func (a *API) clientID([]any) (any, error) {
	if c := a.current(); c != nil {
		return c.ClientID(), nil
	}
	return "", nil
}

// notify tells the state listeners, outside the lock.
func (a *API) notify(info wasmclient.StateInfo) {
	s := State{State: info.State.String()}
	if info.LastError != nil {
		s.Error = info.LastError.Error()
	}
	a.mu.Lock()
	cbs := make([]Func, 0, len(a.listeners))
	for _, cb := range a.listeners {
		cbs = append(cbs, cb)
	}
	a.mu.Unlock()
	for _, cb := range cbs {
		cb(s)
	}
}

func arg(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}

var errEncode = errors.New("bayeux: data cannot be encoded as JSON")

// toJSON encodes an argument as the data of a message: nil (undefined,
// null) is null.
func toJSON(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if !json.Valid(v) {
			return nil, errEncode
		}
		return v, nil
	case string, bool:
		return json.Marshal(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errEncode
		}
		return json.Marshal(v)
	case Func:
		return nil, errors.New("bayeux: data cannot be a function")
	}
	return nil, errEncode
}
