package jsapi

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func nan() float64 { return math.NaN() }

func TestParseConnectOptions(t *testing.T) {
	type testCase struct {
		name    string
		raw     string // "" for a missing argument
		want    ConnectOptions
		wantErr string // part of the error; "" for none
	}
	for _, tc := range []testCase{
		{name: "url only", raw: `{"url":"https://chat.example/cometd"}`,
			want: ConnectOptions{URL: "https://chat.example/cometd", WebSocket: true}},
		{name: "uppercase scheme", raw: `{"url":"HTTP://127.0.0.1:8080/cometd"}`,
			want: ConnectOptions{URL: "HTTP://127.0.0.1:8080/cometd", WebSocket: true}},
		{name: "everything", raw: `{"url":"http://h/cometd","user":"alice","password":"pw","ext":{"k":[1]},"webSocket":false,"other":1}`,
			want: ConnectOptions{URL: "http://h/cometd", User: "alice", Password: "pw", Ext: map[string]json.RawMessage{"k": json.RawMessage(`[1]`)}}},
		{name: "nulls are defaults", raw: `{"url":"http://h/cometd","user":null,"ext":null,"webSocket":null}`,
			want: ConnectOptions{URL: "http://h/cometd", WebSocket: true}},
		{name: "missing argument", raw: "", wantErr: "needs {url}"},
		{name: "null argument", raw: "null", wantErr: "needs {url}"},
		{name: "empty object", raw: `{}`, wantErr: "needs {url}"},
		{name: "not an object", raw: `"http://h/cometd"`, wantErr: "takes an object"},
		{name: "array", raw: `[1]`, wantErr: "takes an object"},
		{name: "url not a string", raw: `{"url":42}`, wantErr: "url must be a string"},
		{name: "relative url", raw: `{"url":"/cometd"}`, wantErr: "absolute http(s) URL"},
		{name: "javascript url", raw: `{"url":"javascript:alert(1)"}`, wantErr: "absolute http(s) URL"},
		{name: "websocket url", raw: `{"url":"wss://h/cometd"}`, wantErr: "absolute http(s) URL"},
		{name: "webSocket not a boolean", raw: `{"url":"http://h/cometd","webSocket":"yes"}`, wantErr: "webSocket must be true or false"},
		{name: "ext not an object", raw: `{"url":"http://h/cometd","ext":[1]}`, wantErr: "ext must be an object"},
		{name: "user not a string", raw: `{"url":"http://h/cometd","user":{}}`, wantErr: "user must be a string"},
		{name: "password without user", raw: `{"url":"http://h/cometd","password":"pw"}`, wantErr: "needs a user"},
		{name: "token", raw: `{"url":"http://h/cometd","token":"a.b.c"}`,
			want: ConnectOptions{URL: "http://h/cometd", Token: "a.b.c", WebSocket: true}},
		{name: "token not a string", raw: `{"url":"http://h/cometd","token":1}`, wantErr: "token must be a string"},
		{name: "user and token", raw: `{"url":"http://h/cometd","user":"alice","token":"a.b.c"}`, wantErr: "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw json.RawMessage
			if tc.raw != "" {
				raw = json.RawMessage(tc.raw)
			}
			got, err := ParseConnectOptions(raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClientOptions(t *testing.T) {
	type testCase struct {
		name    string
		in      ConnectOptions
		wantExt string // JSON of Options.Ext; "null" for none
		wantWS  bool
	}
	for _, tc := range []testCase{
		{name: "anonymous", in: ConnectOptions{URL: "http://h", WebSocket: true}, wantExt: "null", wantWS: true},
		{name: "long-polling", in: ConnectOptions{URL: "http://h"}, wantExt: "null"},
		{name: "user", in: ConnectOptions{URL: "http://h", User: "alice", Password: "pw"},
			wantExt: `{"auth":{"password":"pw","user":"alice"}}`},
		{name: "user replaces ext.auth", in: ConnectOptions{URL: "http://h", User: "alice", Ext: map[string]json.RawMessage{
			"auth": json.RawMessage(`{"token":"x"}`), "other": json.RawMessage(`1`)}},
			wantExt: `{"auth":{"password":"","user":"alice"},"other":1}`},
		{name: "ext kept", in: ConnectOptions{URL: "http://h", Ext: map[string]json.RawMessage{"auth": json.RawMessage(`{"token":"x"}`)}},
			wantExt: `{"auth":{"token":"x"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.in.clientOptions()
			b, err := json.Marshal(opts.Ext)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.wantExt || opts.WebSocket != tc.wantWS {
				t.Errorf("Ext %s WebSocket %v, want %s %v", b, opts.WebSocket, tc.wantExt, tc.wantWS)
			}
		})
	}
}

func TestToJSON(t *testing.T) {
	type testCase struct {
		name    string
		in      any
		want    string
		wantErr bool
	}
	for _, tc := range []testCase{
		{name: "undefined", in: nil, want: "null"},
		{name: "object", in: json.RawMessage(`{"chat":"hi"}`), want: `{"chat":"hi"}`},
		{name: "string", in: "a \"quoted\" <b>", want: `"a \"quoted\" \u003cb\u003e"`},
		{name: "number", in: 1.5, want: "1.5"},
		{name: "boolean", in: true, want: "true"},
		{name: "NaN", in: nan(), wantErr: true},
		{name: "function", in: Func(func(...any) {}), wantErr: true},
		{name: "invalid raw JSON", in: json.RawMessage(`{`), wantErr: true},
		{name: "other Go type", in: 3, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := toJSON(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}
