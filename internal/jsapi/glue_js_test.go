//go:build js && wasm

package jsapi

import (
	"errors"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/wasmclient"
)

// These tests run the glue under Node.js (see TestGlueInNode): the
// conversions between JavaScript and Go values, promises, and callbacks
// that throw. They need no server.

// await waits for a Promise and returns its value, or the message of the
// Error it rejected with.
func await(t *testing.T, p js.Value) (js.Value, string) {
	t.Helper()
	if p.Type() != js.TypeObject || p.Get("then").Type() != js.TypeFunction {
		t.Fatalf("not a Promise: %v", p)
	}
	type result struct {
		v   js.Value
		err string
	}
	done := make(chan result, 1)
	var ok, fail js.Func
	ok = js.FuncOf(func(_ js.Value, args []js.Value) any { done <- result{v: args[0]}; return nil })
	fail = js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{err: args[0].Get("message").String()}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	p.Call("then", ok, fail)
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("the Promise did not settle")
	}
	return js.Undefined(), ""
}

func TestGlue(t *testing.T) {
	js.Global().Set("__bayeuxGoReady", js.FuncOf(func(_ js.Value, args []js.Value) any {
		js.Global().Set("readyGot", args[0])
		return nil
	}))
	api := Install(New())
	if !js.Global().Get("__bayeuxGo").Equal(api) || !js.Global().Get("readyGot").Equal(api) {
		t.Fatal("Install did not publish the object")
	}
	for _, name := range []string{"connect", "subscribe", "unsubscribe", "publish", "call", "disconnect", "onState", "clientId"} {
		if api.Get(name).Type() != js.TypeFunction {
			t.Errorf("no function %s", name)
		}
	}

	// Synchronous results come back as values, failures as rejected
	// promises.
	if id := api.Call("clientId"); id.Type() != js.TypeString || id.String() != "" {
		t.Errorf("clientId() = %v", id)
	}
	if _, err := await(t, api.Call("onState", 42)); !strings.Contains(err, "listener function") {
		t.Errorf("onState(42) rejected with %q", err)
	}

	// Arguments are converted: a number is not a channel name, a cyclic
	// object cannot be sent, undefined options are missing options.
	cyclic := js.Global().Get("Object").New()
	cyclic.Set("self", cyclic)
	for _, tc := range []struct {
		method string
		args   []any
		want   string
	}{
		{"subscribe", []any{42, js.FuncOf(func(js.Value, []js.Value) any { return nil })}, "channel name"},
		{"publish", []any{"/x", cyclic}, "cannot be encoded"},
		{"publish", []any{"/x", js.Global().Get("BigInt").Invoke(1)}, "cannot be sent"},
		{"publish", []any{"/x", js.Global().Get("Symbol").Invoke("s")}, "cannot be sent"},
		{"connect", []any{}, "needs {url}"},
		{"connect", []any{map[string]any{"url": "/relative"}}, "absolute http(s) URL"},
		{"unsubscribe", []any{"1"}, "the id that subscribe gave"},
		{"call", []any{"echo", nil}, "not connected"},
	} {
		if _, err := await(t, api.Call(tc.method, tc.args...)); !strings.Contains(err, tc.want) {
			t.Errorf("%s%v rejected with %q, want %q", tc.method, tc.args, err, tc.want)
		}
	}
	if v, err := await(t, api.Call("disconnect")); err != "" || !v.IsUndefined() {
		t.Errorf("disconnect() = %v, %q", v, err)
	}

	// A listener that throws does not stop the others; the remover is a
	// function, and calling it twice is harmless.
	a := New()
	var heard []string
	throwing := js.Global().Get("Function").New("s", "throw new Error('listener bug')")
	keep := js.FuncOf(func(_ js.Value, args []js.Value) any {
		heard = append(heard, args[0].Get("state").String()+" "+args[0].Get("error").String())
		return nil
	})
	defer keep.Release()
	for _, m := range a.Methods() {
		if m.Name == "onState" {
			for _, fn := range []js.Value{throwing, keep.Value} {
				in, _ := goValues([]js.Value{fn})
				v, err := m.Fn(in)
				if err != nil {
					t.Fatal(err)
				}
				remove := jsValue(v).(js.Func)
				defer func() {
					remove.Invoke()
					remove.Invoke() // released: only logged by Go
				}()
			}
		}
	}
	a.notify(wasmclient.StateInfo{State: wasmclient.Reconnecting, LastError: errors.New("boom")})
	if len(heard) != 1 || heard[0] != "reconnecting boom" {
		t.Errorf("the kept listener heard %q", heard)
	}
}
