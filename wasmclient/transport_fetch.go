//go:build js && wasm

package wasmclient

import (
	"context"
	"errors"
	"strconv"
	"syscall/js"
)

// FetchTransport is the browser Transport, on the fetch API. It does not
// use net/http, which would add megabytes to a wasm binary. Cookies are
// the browser's: the BAYEUX_BROWSER cookie travels with every request
// (credentials "include" by default, which cross-origin needs the server's
// CORS permission for). A request is cancelled with an AbortController
// when its context ends.
//
// A FetchTransport is safe for concurrent use; do not change its fields
// after first use.
type FetchTransport struct {
	// Credentials is fetch's credentials mode: "include" (default),
	// "same-origin" or "omit".
	Credentials string
	// Header holds extra request headers.
	Header map[string]string
}

// DefaultTransport returns the platform's Transport: natively a new
// HTTPTransport with its own cookie jar, in the browser a FetchTransport.
func DefaultTransport() Transport { return &FetchTransport{} }

// Send implements Transport.
func (t *FetchTransport) Send(ctx context.Context, url string, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	global := js.Global()
	fetch := global.Get("fetch")
	if fetch.Type() != js.TypeFunction {
		return nil, errors.New("wasmclient: fetch is not available")
	}
	headers := map[string]any{"Content-Type": "application/json;charset=UTF-8"}
	for k, v := range t.Header {
		headers[k] = v
	}
	cred := t.Credentials
	if cred == "" {
		cred = "include"
	}
	init := map[string]any{
		"method":      "POST",
		"body":        string(body),
		"headers":     headers,
		"credentials": cred,
		"cache":       "no-store",
	}
	if ac := global.Get("AbortController"); ac.Type() == js.TypeFunction {
		ctrl := ac.New()
		init["signal"] = ctrl.Get("signal")
		stop := context.AfterFunc(ctx, func() { ctrl.Call("abort") })
		defer stop()
	}
	resp, err := await(fetch.Invoke(url, init))
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	status := resp.Get("status").Int()
	if status != 200 {
		e := &HTTPError{StatusCode: status, Status: strconv.Itoa(status) + " " + resp.Get("statusText").String()}
		if txt, err := await(resp.Call("text")); err == nil {
			e.Body = txt.String()
			if len(e.Body) > maxErrorBody {
				e.Body = e.Body[:maxErrorBody]
			}
		}
		return nil, e
	}
	buf, err := await(resp.Call("arrayBuffer"))
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	u8 := global.Get("Uint8Array").New(buf)
	b := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(b, u8)
	return b, nil
}

// await waits for a promise to settle. It does not give up on its own:
// callers abort the fetch, which rejects the promise, so the callbacks
// are never called after they are released.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{v: v}
		return nil
	})
	defer then.Release()
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "promise rejected"
		if len(args) > 0 {
			if m := args[0].Get("message"); m.Type() == js.TypeString {
				msg = m.String()
			} else {
				msg = args[0].Call("toString").String()
			}
		}
		ch <- result{err: errors.New("wasmclient: fetch: " + msg)}
		return nil
	})
	defer catch.Release()
	p.Call("then", then, catch)
	r := <-ch
	return r.v, r.err
}

// ctxErr prefers the context's error: an aborted fetch says only "aborted".
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
