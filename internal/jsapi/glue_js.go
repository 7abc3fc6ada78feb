//go:build js && wasm

package jsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall/js"
)

// Install sets window.__bayeuxGo to an object with a's Methods, which
// bayeux.js wraps as window.Bayeux, and calls window.__bayeuxGoReady with
// it when the loader set that. It returns the object.
func Install(a *API) js.Value {
	obj := js.Global().Get("Object").New()
	for _, m := range a.Methods() {
		obj.Set(m.Name, js.FuncOf(func(_ js.Value, args []js.Value) any { return invokeMethod(m, args) }))
	}
	js.Global().Set("__bayeuxGo", obj)
	if ready := js.Global().Get("__bayeuxGoReady"); ready.Type() == js.TypeFunction {
		ready.Invoke(obj)
	}
	return obj
}

// invokeMethod converts args, runs m and converts its result (see Method).
func invokeMethod(m Method, args []js.Value) any {
	in, err := goValues(args)
	if !m.Async {
		var v any
		if err == nil {
			v, err = m.Fn(in)
		}
		if err != nil {
			return js.Global().Get("Promise").Call("reject", jsError(err))
		}
		return jsValue(v)
	}
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, pargs []js.Value) any {
		resolve, reject := pargs[0], pargs[1]
		executor.Release()
		go func() {
			var v any
			err := err
			if err == nil {
				v, err = m.Fn(in)
			}
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(jsValue(v))
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

func jsError(err error) js.Value { return js.Global().Get("Error").New(err.Error()) }

// goValues converts arguments from JavaScript (see Method).
func goValues(args []js.Value) ([]any, error) {
	out := make([]any, len(args))
	for i, v := range args {
		typ, ok := typeOf(v)
		if !ok {
			return nil, fmt.Errorf("bayeux: argument %d: a value of this type (a BigInt?) cannot be sent", i+1)
		}
		switch typ {
		case js.TypeUndefined, js.TypeNull:
		case js.TypeString:
			out[i] = v.String()
		case js.TypeNumber:
			out[i] = v.Float()
		case js.TypeBoolean:
			out[i] = v.Bool()
		case js.TypeFunction:
			fn := v
			out[i] = Func(func(args ...any) { callFunction(fn, args) })
		case js.TypeObject:
			raw, err := stringify(v)
			if err != nil {
				return nil, err
			}
			out[i] = raw
		default:
			return nil, fmt.Errorf("bayeux: argument %d: a %s cannot be sent", i+1, v.Type())
		}
	}
	return out, nil
}

// typeOf is v.Type(), which panics for a type syscall/js does not know
// (a BigInt).
func typeOf(v js.Value) (t js.Type, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return v.Type(), true
}

// stringify is JSON.stringify, which throws on cycles and BigInts.
func stringify(v js.Value) (raw json.RawMessage, err error) {
	defer func() {
		if recover() != nil {
			raw, err = nil, errEncode
		}
	}()
	s := js.Global().Get("JSON").Call("stringify", v)
	if s.Type() != js.TypeString {
		return nil, errEncode
	}
	return json.RawMessage(s.String()), nil
}

// jsValue converts a result for JavaScript (see Method).
func jsValue(v any) any {
	switch v := v.(type) {
	case nil:
		return js.Undefined()
	case json.RawMessage:
		return parse(v)
	case State:
		o := js.Global().Get("Object").New()
		o.Set("state", v.State)
		if v.Error != "" {
			o.Set("error", v.Error)
		}
		return o
	case Remover:
		var f js.Func
		f = js.FuncOf(func(js.Value, []js.Value) any {
			v()
			f.Release()
			return nil
		})
		return f
	case string, int, float64, bool:
		return v
	}
	panic(errors.New("jsapi: no JavaScript value for a " + fmt.Sprintf("%T", v)))
}

func parse(b json.RawMessage) js.Value {
	if len(b) == 0 {
		return js.Null()
	}
	return js.Global().Get("JSON").Call("parse", string(b))
}

// callFunction calls a page's function; what it throws is logged, so a
// faulty callback cannot stop the client.
func callFunction(fn js.Value, args []any) {
	defer func() {
		if r := recover(); r != nil {
			js.Global().Get("console").Call("error", "bayeux: a callback threw:", fmt.Sprint(r))
		}
	}()
	out := make([]any, 0, len(args)+1)
	for _, a := range args {
		if d, ok := a.(Delivery); ok {
			data := parse(d.Data)
			msg := js.Global().Get("Object").New()
			msg.Set("channel", d.Channel)
			msg.Set("data", data)
			out = append(out, data, msg)
			continue
		}
		out = append(out, jsValue(a))
	}
	fn.Invoke(out...)
}
