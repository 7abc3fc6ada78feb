// Package wasmclient is a Bayeux 1.0 (CometD) client over HTTP long-polling
// and, optionally (Options.WebSocket), CometD's websocket transport with
// long-polling as fallback. It runs natively and in the browser (GOOS=js
// GOARCH=wasm): the HTTP requests go through a Transport, which is
// net/http with a cookie jar natively (HTTPTransport) and the browser's
// fetch in WebAssembly (FetchTransport), so that the wasm build does not
// link net/http; the WebSocketTransport is github.com/coder/websocket
// natively and the browser's WebSocket in WebAssembly, for the same reason.
//
// A Client handshakes, then keeps one /meta/connect outstanding in a
// background goroutine, driven by the server's advice: it waits
// advice.interval between connects, gives a held connect advice.timeout
// plus Options.MaxNetworkDelay before giving up, re-handshakes when told
// reconnect:"handshake" (re-subscribing every active subscription by
// itself) and stops when told reconnect:"none". Transport failures are
// retried with a linear backoff with jitter, so that clients of a
// restarted server do not come back in lock-step.
//
// Other messages (subscribe, unsubscribe, publish, service calls) travel on
// a second request, never together with the held connect, so a client has
// at most two requests in flight, as the Bayeux specification asks (over
// a WebSocket: two frames waiting for their answer, on one socket). They
// are queued while the client has no session (before Connect, while
// handshaking, while reconnecting) and sent in order, several per request
// when they pile up; Batch sends a group in one request on purpose.
//
// # Concurrency
//
// All methods of Client and Subscription are safe for concurrent use.
// Messages are delivered to listeners, and state changes to OnState
// callbacks, on one goroutine at a time, in the order they arrived; a
// listener that blocks delays every later delivery, so listeners must
// return quickly (hand long work to another goroutine). Listeners may call
// the Client's methods, but must not wait for the reply of a Publish,
// Subscribe or Call from inside a listener for longer than they can afford
// to stall deliveries. A Message passed to a listener is shared by every
// listener that receives it and must not be modified.
//
// Sessions are bound to the server's BAYEUX_BROWSER cookie, so a native
// Transport must keep cookies: DefaultTransport and NewHTTPTransport do, and
// the default WebSocketTransport shares the cookie jar of an HTTPTransport.
package wasmclient
